"""Base class for Celery tasks: every job runs inside its own audit context and database scope."""

from contextlib import nullcontext
from typing import Any

from celery import Task

from audit.context import audit_context
from cot.database.scope import cross_tenant


class AuditedTask(Task):
    """Entries written by the job name it (``job tenants.tasks.x``) as their actor.

    A task sees no tenant's rows unless it says which: ``cross_tenant_path`` (a path of
    ``cot.database.scope.CROSS_TENANT_PATHS``) for periodic jobs that find their work in
    every tenant, or a ``tenant_scope`` of its own once it knows the tenant.
    """

    cross_tenant_path: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        scope = cross_tenant(self.cross_tenant_path) if self.cross_tenant_path else nullcontext()
        with audit_context(job=self.name), scope:
            return super().__call__(*args, **kwargs)

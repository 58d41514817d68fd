"""Base class for Celery tasks: every job runs inside its own audit context."""

from typing import Any

from celery import Task

from audit.context import audit_context


class AuditedTask(Task):
    """Entries written by the job name it (``job tenants.tasks.x``) as their actor."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with audit_context(job=self.name):
            return super().__call__(*args, **kwargs)

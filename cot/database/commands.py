"""Management commands that work across tenants (operators' tools), in a listed cross-tenant path."""

from typing import Any

from django.core.management.base import BaseCommand

from cot.database.scope import cross_tenant


class CrossTenantCommand(BaseCommand):
    """A command whose statements see every tenant's rows (``cross_tenant_path``, ``cot.database.scope``)."""

    cross_tenant_path = "commands"

    def execute(self, *args: Any, **options: Any) -> Any:
        with cross_tenant(self.cross_tenant_path):
            return super().execute(*args, **options)

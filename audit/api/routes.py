"""The audit app's ``/api/v1/`` endpoint, registered from ``AuditConfig.ready()``."""

from audit.api.views import AuditEntryViewSet
from cot.api.routes import register


def register_routes() -> None:
    """The audit trail (read-only) and its export."""
    register("audit", AuditEntryViewSet, basename="auditentry")

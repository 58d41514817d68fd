"""The audit app's ``/api/v1/`` endpoint, registered from ``AuditConfig.ready()``."""

from audit.api.views import AuditEntryViewSet
from cot.api.routes import router


def register_routes() -> None:
    """The audit trail (read-only) and its export."""
    router.register("audit", AuditEntryViewSet, basename="auditentry")

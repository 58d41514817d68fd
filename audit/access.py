"""Access rule of the audit trail, registered with ``tenants.access``.

The tenant's administrators (and support engineers inside a grant, whose own actions
are in it) read their tenant's trail; nobody creates, changes or deletes an entry
through the access layer: entries are written by ``audit.record`` alone.
"""

from tenants.access import admin_view_only, register


def register_rules() -> None:
    """The audit app's model (called from ``AuditConfig.ready``)."""
    register("audit.AuditEntry", admin_view_only)

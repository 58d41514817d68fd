"""Access rule of the audit trail, registered with ``tenants.access``.

The tenant's administrators (and support engineers inside a grant, whose own actions
are in it; under a grant limited to device groups, only those) read their tenant's
trail; nobody creates, changes or deletes an entry through the access layer: entries
are written by ``audit.record`` alone.
"""

from typing import Any

from django.db.models import QuerySet

from tenants.access import Caller, admin_view_only, register


def audit_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Administrators (and support inside a grant) read the trail; under a grant limited to groups, its own entries.

    The trail names every device of the tenant; an engineer kept to some device groups
    reads what they did under the grant, and nothing else.
    """
    qs = admin_view_only(qs, caller, action)
    if caller.device_group_limit is not None and caller.support_grant is not None:
        return qs.filter(support_grant_id=caller.support_grant.pk)
    return qs


def register_rules() -> None:
    """The audit app's model (called from ``AuditConfig.ready``)."""
    register("audit.AuditEntry", audit_rule)

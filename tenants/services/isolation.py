"""Running the isolation checks as the platform: the audited result and the operators' alert."""

from __future__ import annotations

from functools import partial

from django.core.mail import send_mail
from django.db import transaction

import audit
from tenants.isolation import LIMIT, Result, find_cross_tenant_rows
from tenants.models import Role, Tenant, User

#: the audit event of every run, in the platform's own chain
ISOLATION_CHECK_EVENT = "isolation.check"


def do_check_isolation() -> Result:
    """Look for rows that tie tenants together; record the result, and alert the operators if any were found.

    Every run leaves one audit entry in the platform's chain (no tenant): how many checks
    ran, whether the data was clean and the rows found, each named by table, id and the
    two tenants (the first ``LIMIT`` of them). A run that finds rows also mails the
    provider's operators. Reads only otherwise, so it is safe to run at any time, from
    the beat job or ``manage.py check_isolation``.
    """
    result = find_cross_tenant_rows()
    data = {
        "checks": result.checks,
        "clean": result.clean,
        "found": len(result.findings),
        "rows": [finding.as_dict() for finding in result.findings[:LIMIT]],
        "truncated": result.truncated,
    }
    with transaction.atomic():
        audit.record(ISOLATION_CHECK_EVENT, tenant=None, data=data)
        if not result.clean:
            _alert_operators(result)
    return result


def _alert_operators(result: Result) -> None:
    recipients = list(
        User.objects.filter(
            tenant__kind=Tenant.Kind.PROVIDER, role__kind=Role.Kind.OPERATOR, is_active=True
        ).values_list("email", flat=True)
    )
    if not recipients:
        return
    tenants = sorted({t for finding in result.findings for t in (finding.tenant, finding.other_tenant) if t})
    lines = "\n".join(f"- {finding}" for finding in result.findings[:50])
    more = len(result.findings) - 50
    subject = f"cot: {len(result.findings)} row(s) tie tenants together"
    body = (
        f"The isolation check found rows of one tenant pointing at another's (tenants {tenants}):\n\n"
        f"{lines}\n"
        + (f"… and {more} more.\n" if more > 0 else "")
        + "\nRun `manage.py check_isolation` for the full list; the platform's audit trail has this run's entry."
    )
    transaction.on_commit(partial(send_mail, subject, body, None, recipients), robust=True)

"""Writes to support grants: a customer's consent, its one-time link, revocation and expiry.

Kept apart from the other subjects because it is the one place a provider's engineer enters a
customer tenant; every write that opens or ends that access is in this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from cot.database.scope import cross_tenant, tenant_scope
from tenants import access
from tenants.grant_scopes import device_group_choices
from tenants.models import Action, Role, SupportGrant, User
from tenants.tokens import new_secret, secret_digest

SUPPORT_LINK_PREFIX = "cot_sgl_"


def support_link(secret: str) -> str:
    """The URL a customer administrator hands to platform support.

    The secret is the fragment: browsers never send it, so it stays out of access logs;
    the page posts it (``tenants.views.support``).
    """
    return f"{settings.SITE_URL.rstrip('/')}/support/enter/#{secret}"


@transaction.atomic
def do_create_support_grant(
    *,
    actor: User,
    reason: str,
    duration_hours: int,
    scope: str = "read",
    engineer_email: str = "",
    device_groups: Iterable[int] = (),
) -> tuple[SupportGrant, str]:
    """Consent to support access for at most 24 hours; returns the grant and its link (shown once).

    The duration has no default: the customer chooses how long, and least is best.
    ``device_groups`` limits the grant to the devices of these groups and their data (the
    groups the administrator sees; none: the whole tenant).
    """
    tenant = access.tenant_for_add(actor, SupportGrant, None)
    if not 1 <= duration_hours <= SupportGrant.MAX_HOURS:
        raise ValidationError({"duration_hours": f"Support access lasts 1 to {SupportGrant.MAX_HOURS} hours."})
    if scope not in SupportGrant.Scope.values:
        raise ValidationError({"scope": f"Scope must be one of: {', '.join(SupportGrant.Scope.values)}."})
    if not reason.strip():
        raise ValidationError({"reason": "Give a reason or ticket reference."})
    groups = _chosen_groups(actor, device_groups)
    secret = new_secret(SUPPORT_LINK_PREFIX)
    now = timezone.now()
    grant = SupportGrant(
        tenant=tenant,
        created_by=actor,
        created_at=now,
        duration_hours=duration_hours,
        expires_at=now + timedelta(hours=duration_hours),
        scope=scope,
        reason=reason.strip(),
        engineer_email=engineer_email.strip().lower(),
        device_groups=groups,
        link_digest=secret_digest(secret),
    )
    grant.full_clean(exclude=["link_digest", "expires_at"])
    grant.save()
    audit.record(
        "support_grant.create",
        tenant=tenant,
        target=grant,
        data={
            "scope": scope,
            "expires_at": grant.expires_at.isoformat(),
            "engineer": grant.engineer_email or None,
            "device_groups": groups or None,
        },
        actor=actor,
    )
    return grant, support_link(secret)


def _chosen_groups(actor: User, chosen: Iterable[int]) -> list[int]:
    """The distinct group ids, every one a group ``actor`` sees; the same refusal for missing and not theirs."""
    try:
        ids = sorted({int(pk) for pk in chosen})
    except (TypeError, ValueError):
        raise ValidationError({"device_groups": "Device groups are given by their ids."}) from None
    visible = {pk for pk, _name in device_group_choices(actor)}
    unknown = [pk for pk in ids if pk not in visible]
    if unknown:
        raise ValidationError({"device_groups": f"No such device group: {', '.join(map(str, unknown))}."})
    return ids


def _end_support_sessions(grant: SupportGrant) -> int:
    from django.contrib.sessions.models import Session

    keys = list(grant.sessions.values_list("session_key", flat=True))
    deleted, _ = Session.objects.filter(session_key__in=keys).delete()
    grant.sessions.all().delete()
    return deleted


@transaction.atomic
def do_revoke_support_grant(grant: SupportGrant, *, actor: User) -> SupportGrant:
    """Revoke at once; the engineer's next request is refused."""
    grant = access.access_by_id(actor, SupportGrant, grant.pk, Action.CHANGE)
    now = timezone.now()
    if SupportGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(revoked_at=now, revoked_by=actor):
        grant.revoked_at, grant.revoked_by = now, actor
        ended = _end_support_sessions(grant)
        audit.record(
            "support_grant.revoke", tenant=grant.tenant_id, target=grant, data={"sessions_ended": ended}, actor=actor
        )
    return grant


class SupportLinkRefused(Exception):
    """The link cannot be used by this engineer (unknown, used by another, expired, revoked)."""


@audit.atomic_keeping_refusals
def do_open_support_grant(secret: str, *, engineer: User, session_key: str) -> SupportGrant:
    """Bind the grant to the engineer on first use and register the session opened through it.

    Every refusal looks the same to the caller, so a link cannot be probed; a refusal of
    a real grant's link (another engineer's, expired, revoked) stays in the customer's trail.
    """
    with cross_tenant("support.link"):
        grant = (
            SupportGrant.objects.select_for_update()
            .select_related("tenant")
            .filter(link_digest=secret_digest(secret))
            .first()
        )
    role = engineer.role
    now = timezone.now()
    refused = (
        grant is None
        or role is None
        or role.kind != Role.Kind.SUPPORT
        or not engineer.tenant.is_provider
        or grant.revoked_at is not None
        or now >= grant.expires_at
        or (grant.engineer_id is not None and grant.engineer_id != engineer.pk)
        or (grant.engineer_email and grant.engineer_email != engineer.email.lower())
    )
    if refused:
        error = SupportLinkRefused("This support link is not valid for you.")
        if grant is None:
            raise error
        raise audit.Refusal(
            error,
            "support_grant.refused",
            tenant=grant.tenant_id,
            target=grant,
            data={"engineer": engineer.email},
            actor=engineer,
        )
    assert grant is not None
    with tenant_scope(grant.tenant_id):  # the grant and its sessions are the customer's rows
        if grant.engineer_id is None:
            grant.engineer, grant.bound_at = engineer, now
            SupportGrant.objects.filter(pk=grant.pk).update(engineer=engineer, bound_at=now)
        grant.sessions.create(session_key=session_key)
    access.enter_support_grant(engineer, grant)  # the opening itself is the grant's first activity
    audit.record(
        "support_grant.open", tenant=grant.tenant_id, target=grant, data={"engineer": engineer.email}, actor=engineer
    )
    return grant


def do_expire_support_grants() -> int:
    """Mark grants past their expiry, end their sessions, audit and tell the administrators.

    Access already stopped at expiry (the access layer checks every request); this job
    only records it and cleans up. Idempotent: each grant is processed once.
    """
    from django.core.mail import send_mail

    processed = 0
    now = timezone.now()
    for grant_id in SupportGrant.objects.due_for_expiry(now).values_list("pk", flat=True):
        with transaction.atomic():
            grant = SupportGrant.objects.select_for_update(skip_locked=True).filter(pk=grant_id).first()
            if grant is None or grant.expiry_processed_at is not None:
                continue
            SupportGrant.objects.filter(pk=grant.pk).update(expiry_processed_at=now)
            ended = _end_support_sessions(grant)
            audit.record("support_grant.expire", tenant=grant.tenant_id, target=grant, data={"sessions_ended": ended})
            recipients = list(
                User.objects.filter(
                    tenant=grant.tenant_id, role__kind=Role.Kind.ADMINISTRATOR, is_active=True
                ).values_list("email", flat=True)
            )
            subject = f"cot: support access ended ({grant.reason})"
            body = (
                f"The support access you granted on {grant.created_at:%Y-%m-%d %H:%M} UTC "
                f"({grant.scope}, reason: {grant.reason}) expired at {grant.expires_at:%Y-%m-%d %H:%M} UTC.\n"
                "Its activity stays visible in the cockpit under Support grants."
            )
            transaction.on_commit(partial(send_mail, subject, body, None, recipients))
            processed += 1
    return processed

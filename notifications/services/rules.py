"""Writing notification rules: create, change, rotate a webhook's secret, delete; each checked and audited."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from cot.text import text_problem
from cot.updates import save_changes
from notifications import batching, signing, webhooks
from notifications.models import EVENTS, SEVERITIES, Delivery, NotificationRule
from tenants import access
from tenants.grant_scopes import device_group_choices
from tenants.models import Action, Role, User

EDITABLE = (
    "name",
    "enabled",
    "severities",
    "alarm_types",
    "device_groups",
    "events",
    "recipient_users",
    "recipient_roles",
    "webhook_url",
    "quiet_from",
    "quiet_until",
    "quiet_timezone",
    "critical_breaks_quiet",
    "digest_minutes",
)
RECIPIENT_ROLES = (Role.Kind.ADMINISTRATOR, Role.Kind.STANDARD, Role.Kind.BUSINESS)
TIMING = ("quiet_from", "quiet_until", "quiet_timezone", "critical_breaks_quiet", "digest_minutes")


def _distinct(values: Iterable[Any], field: str, allowed: Iterable[Any] | None = None) -> list[Any]:
    chosen = sorted(set(values))
    if allowed is not None:
        unknown = [value for value in chosen if value not in set(allowed)]
        if unknown:
            raise ValidationError({field: f"Not one to choose from: {', '.join(map(str, unknown))}."})
    return chosen


def _cleaned(actor: User, values: Mapping[str, Any], channel: str) -> dict[str, Any]:
    """The rule's fields, checked as a whole: what it listens to, and where it sends."""
    cleaned: dict[str, Any] = {
        "name": str(values.get("name", "")).strip(),
        "enabled": bool(values.get("enabled", True)),
        "severities": _distinct(values.get("severities", ()), "severities", SEVERITIES),
        "alarm_types": _distinct((str(v).strip() for v in values.get("alarm_types", ())), "alarm_types"),
        "device_groups": _distinct(
            values.get("device_groups", ()), "device_groups", [pk for pk, _ in device_group_choices(actor)]
        ),
        "events": _distinct(values.get("events", ()), "events", EVENTS),
        "recipient_users": [],
        "recipient_roles": [],
        "webhook_url": "",
    }
    if not cleaned["name"]:
        raise ValidationError({"name": "Name the rule."})
    for kind in cleaned["alarm_types"]:
        # Alarm types end up in mail subjects and chat messages: the same text rule as names.
        problem = text_problem(kind) or ("Alarm types are at most 64 characters." if len(kind) > 64 else None)
        if problem is not None or not kind:
            raise ValidationError({"alarm_types": problem or "An alarm type cannot be empty."})
    if not cleaned["severities"] and not cleaned["events"]:
        raise ValidationError({"severities": "Choose alarm severities or events to notify about (or both)."})
    cleaned.update(_timing(values))
    if channel == NotificationRule.Channel.WEBHOOK:
        url = str(values.get("webhook_url", "")).strip()
        problem = "Give the webhook's URL." if not url else webhooks.target_problem(url)
        if problem is not None:
            raise ValidationError({"webhook_url": problem})
        cleaned["webhook_url"] = url
    elif channel == NotificationRule.Channel.EMAIL:
        tenant_users = User.objects.restrict(actor, Action.VIEW).values_list("pk", flat=True)
        cleaned["recipient_users"] = _distinct(values.get("recipient_users", ()), "recipient_users", tenant_users)
        cleaned["recipient_roles"] = _distinct(values.get("recipient_roles", ()), "recipient_roles", RECIPIENT_ROLES)
        if not cleaned["recipient_users"] and not cleaned["recipient_roles"]:
            raise ValidationError({"recipient_users": "Choose the users or roles to e-mail."})
    else:
        raise ValidationError({"channel": f"The channel is one of: {', '.join(NotificationRule.Channel.values)}."})
    return cleaned


def _time(value: Any, field: str) -> time | None:
    if value in (None, ""):
        return None
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValidationError({field: "A time of day such as 22:00."}) from None


def _timing(values: Mapping[str, Any]) -> dict[str, Any]:
    """Quiet hours and digest (``notifications.batching``), checked together."""
    quiet_from, quiet_until = (
        _time(values.get("quiet_from"), "quiet_from"),
        _time(values.get("quiet_until"), "quiet_until"),
    )
    if (quiet_from is None) != (quiet_until is None):
        raise ValidationError({"quiet_until": "Give both ends of the quiet hours, or neither."})
    if quiet_from is not None and quiet_from == quiet_until:
        raise ValidationError({"quiet_until": "Quiet hours end at another time than they start."})
    zone = str(values.get("quiet_timezone") or "UTC").strip()
    problem = batching.timezone_problem(zone)
    if problem is not None:
        raise ValidationError({"quiet_timezone": problem})
    try:
        digest = int(values.get("digest_minutes") or 0)
    except (TypeError, ValueError):
        digest = -1
    if digest not in batching.DIGEST_MINUTES:
        choices = ", ".join(map(str, batching.DIGEST_MINUTES))
        raise ValidationError({"digest_minutes": f"A digest comes every {choices} minutes (0: none)."})
    return {
        "quiet_from": quiet_from,
        "quiet_until": quiet_until,
        "quiet_timezone": zone,
        "critical_breaks_quiet": bool(values.get("critical_breaks_quiet", True)),
        "digest_minutes": digest,
    }


@transaction.atomic
def do_create_notification_rule(*, actor: User, channel: str, **values: Any) -> tuple[NotificationRule, str | None]:
    """A new rule; for a webhook also its signing secret, shown only in this answer."""
    tenant = access.tenant_for_add(actor, NotificationRule, None)
    access.require_secret_keeper(actor, "notification rules")
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
    rule = NotificationRule(tenant=tenant, channel=channel, **_cleaned(actor, values, channel))
    secret = None
    if channel == NotificationRule.Channel.WEBHOOK:
        rule.secret_salt, rule.secret_rotated_at = signing.new_salt(), timezone.now()
        secret = signing.secret_for(rule.secret_salt)
    rule.full_clean(exclude=["secret_salt"])
    rule.save()
    audit.record("notification_rule.create", tenant=tenant, target=rule, data=_described(rule), actor=actor)
    return rule, secret


@transaction.atomic
def do_update_notification_rule(rule: NotificationRule, changes: Mapping[str, Any], *, actor: User) -> NotificationRule:
    """Change what a rule listens to or where it sends (its channel stays: make a new rule for another)."""
    rule = access.access_by_id(actor, NotificationRule, rule.pk, Action.CHANGE)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError(dict.fromkeys(sorted(unknown), "Unknown field."))
    merged = {name: getattr(rule, name) for name in EDITABLE} | dict(changes)
    cleaned = _cleaned(actor, merged, rule.channel)
    timing_before = [getattr(rule, name) for name in TIMING]
    rule = save_changes(rule, cleaned, audit_event="notification_rule.update", tenant=rule.tenant_id, actor=actor)
    if [getattr(rule, name) for name in TIMING] != timing_before:
        _reschedule_held(rule)
    return rule


def _reschedule_held(rule: NotificationRule) -> None:
    """Held deliveries follow the rule's new quiet hours or digest (one statement): without
    either, they go out together with the beat job's next round."""
    now = timezone.now()
    due = batching.batch_time(rule, now, critical=False) or now
    held = Delivery.objects.filter(rule=rule, status=Delivery.Status.PENDING, batch_at__isnull=False)
    held.update(batch_at=due, next_attempt_at=due)


@transaction.atomic
def do_rotate_webhook_secret(rule: NotificationRule, *, actor: User) -> tuple[NotificationRule, str]:
    """A new signing secret for a webhook rule (shown once); the old one stops signing at once."""
    rule = access.access_by_id(actor, NotificationRule, rule.pk, Action.CHANGE)
    access.require_secret_keeper(actor, "a webhook's signing secret")
    if rule.channel != NotificationRule.Channel.WEBHOOK:
        raise ValidationError({"channel": "Only webhook rules have a signing secret."})
    rule.secret_salt, rule.secret_rotated_at = signing.new_salt(), timezone.now()
    rule.save(update_fields=["secret_salt", "secret_rotated_at"])
    audit.record("notification_rule.rotate_secret", tenant=rule.tenant_id, target=rule, actor=actor)
    return rule, signing.secret_for(rule.secret_salt)


@transaction.atomic
def do_delete_notification_rule(rule: NotificationRule, *, actor: User) -> None:
    """Delete a rule and its delivery record."""
    rule = access.access_by_id(actor, NotificationRule, rule.pk, Action.DELETE)
    audit.record("notification_rule.delete", tenant=rule.tenant_id, target=rule, data=_described(rule), actor=actor)
    rule.delete()


def _described(rule: NotificationRule) -> dict[str, Any]:
    return {
        "channel": rule.channel,
        "severities": rule.severities,
        "events": rule.events,
        "device_groups": rule.device_groups or None,
        "webhook_url": rule.webhook_url or None,
        "quiet_hours": f"{rule.quiet_from:%H:%M}-{rule.quiet_until:%H:%M} {rule.quiet_timezone}"
        if rule.quiet_from
        else None,
        "digest_minutes": rule.digest_minutes or None,
    }

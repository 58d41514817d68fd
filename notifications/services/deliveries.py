"""Deliveries: one per matching rule and subject, sent by a job, retried with backoff, recorded.

A new alarm or an audited event finds the tenant's enabled rules that ask for it (one
query on the rules' arrays), and each gets one ``Delivery`` keyed by its subject
(``alarm:17``, ``audit:4711``): a unique key per rule, so a subject never notifies a rule
twice. The job (``notifications.tasks.deliver_notification``) sends it after the commit;
a failed webhook is tried again after 30 s, 1, 2, 4 … minutes, ``COT_WEBHOOK_ATTEMPTS``
times in all; a refused target (a private address) is not retried.
"""

from __future__ import annotations

import json
import time as clock
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cot.database.scope import cross_tenant, tenant_scope
from devices.models import Device
from notifications import signing, webhooks
from notifications.models import EVENT_OF_AUDIT, Delivery, NotificationRule
from tenants.access import caller_for
from tenants.models import Action, User

ALARM_FIELDS = ("tenant_id", "device_id", "alarm_id", "type", "severity", "text", "time")
RETRY_BASE_SECONDS = 30
USER_AGENT = "cot-webhooks/1"


def notify_alarm(
    *,
    tenant_id: int,
    device_id: int,
    alarm_id: int,
    type: str,
    severity: str,
    text: str,
    time: datetime,
    escalated_from: str | None = None,
) -> list[int]:
    """Deliveries of a new alarm to the rules that ask for its severity, type and device group.

    An open alarm whose severity rose (``escalated_from``) is news to the rules that ask for
    its new severity: keyed by alarm and severity, each rule hears of each level once.
    """
    with tenant_scope(tenant_id):
        device = Device.objects.filter(pk=device_id).values("external_id", "name", "group_id").first()
        if device is None:
            return []
        groups = Q(device_groups=[])
        if device["group_id"] is not None:
            groups |= Q(device_groups__contains=[device["group_id"]])
        rules = NotificationRule.objects.filter(tenant=tenant_id, enabled=True, severities__contains=[severity])
        rules = rules.filter(Q(alarm_types=[]) | Q(alarm_types__contains=[type])).filter(groups)
        alarm = {"id": alarm_id, "type": type, "severity": severity, "text": text, "time": _iso(time)}
        if escalated_from:
            alarm["escalated_from"] = escalated_from
        payload = {
            "event": "alarm",
            "alarm": alarm,
            "device": {"id": device_id, "external_id": device["external_id"], "name": device["name"]},
        }
        key = f"alarm:{alarm_id}:{severity}" if escalated_from else f"alarm:{alarm_id}"
        return _enqueue(tenant_id, rules, key, "alarm", payload)


def notify_event(entry: Any) -> list[int]:
    """Deliveries of an audited event (rollout paused, grant opened, …) to the rules that name it."""
    event = EVENT_OF_AUDIT.get(entry.event)
    if event is None or entry.tenant_id is None:
        return []
    with tenant_scope(entry.tenant_id):
        rules = NotificationRule.objects.filter(tenant=entry.tenant_id, enabled=True, events__contains=[event])
        payload = {
            "event": event,
            "object": entry.object_repr,
            "actor": entry.actor_label,
            "time": _iso(entry.timestamp),
            "audit_entry": entry.pk,
            "data": entry.additional_data or {},
        }
        return _enqueue(entry.tenant_id, rules, f"audit:{entry.pk}", event, payload)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _enqueue(
    tenant_id: int, rules: Iterable[NotificationRule], key: str, event: str, payload: dict[str, Any]
) -> list[int]:
    from notifications.tasks import deliver_notification

    created = []
    with transaction.atomic():
        for rule in rules:
            delivery, new = Delivery.objects.get_or_create(
                rule=rule,
                key=key,
                defaults={
                    "tenant_id": tenant_id,
                    "event": event,
                    "payload": payload,
                    "next_attempt_at": timezone.now(),
                },
            )
            if new:
                created.append(delivery.pk)
        for pk in created:
            transaction.on_commit(partial(deliver_notification.delay, pk))
    return created


# --- sending ------------------------------------------------------------------------------------


def deliver(delivery_id: int) -> str:
    """Send one pending delivery (idempotent: anything but a pending, due delivery is left alone)."""
    with cross_tenant("jobs.task"):
        tenant_id = Delivery.objects.filter(pk=delivery_id).values_list("tenant_id", flat=True).first()
    if tenant_id is None:
        return "missing"
    with tenant_scope(tenant_id), transaction.atomic():
        # Locked while it is sent: a second worker with the same message skips it.
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("rule")
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .first()
        )
        if delivery is None or (delivery.next_attempt_at is not None and delivery.next_attempt_at > timezone.now()):
            return "not due"
        outcome = _send(delivery)
        delivery.save()
        if delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at is not None:
            countdown = max(0.0, (delivery.next_attempt_at - timezone.now()).total_seconds())
            transaction.on_commit(partial(_retry_later, delivery.pk, countdown))
        return outcome


def _retry_later(delivery_id: int, countdown: float) -> None:
    from notifications.tasks import deliver_notification

    deliver_notification.apply_async((delivery_id,), countdown=countdown)


def _send(delivery: Delivery) -> str:
    """One attempt; records its outcome on ``delivery`` (not saved)."""
    now = timezone.now()
    delivery.attempts += 1
    rule = delivery.rule
    try:
        if rule.channel == NotificationRule.Channel.WEBHOOK:
            delivery.response_code = _post(delivery)
            succeeded = 200 <= delivery.response_code < 300
            delivery.error = "" if succeeded else f"The receiver answered {delivery.response_code}."
        else:
            succeeded = _mail(delivery)
    except webhooks.WebhookRefused as refused:
        delivery.status, delivery.error, delivery.finished_at = Delivery.Status.FAILED, str(refused)[:500], now
        delivery.next_attempt_at = None
        return "refused"
    except Exception as error:  # any failure is an attempt: counted, retried, then failed
        succeeded, delivery.response_code = False, None
        delivery.error = (str(error) or type(error).__name__)[:500]
    if succeeded:
        delivery.status, delivery.finished_at, delivery.next_attempt_at = Delivery.Status.SUCCEEDED, now, None
        return "sent"
    if delivery.attempts >= settings.COT_WEBHOOK_ATTEMPTS:
        delivery.status, delivery.finished_at, delivery.next_attempt_at = Delivery.Status.FAILED, now, None
        return "failed"
    delivery.next_attempt_at = now + timedelta(seconds=RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1))
    return "retrying"


def _post(delivery: Delivery) -> int:
    body = json.dumps({**delivery.payload, "delivery": delivery.pk}, sort_keys=True).encode()
    timestamp = int(clock.time())
    secret = signing.secret_for(delivery.rule.secret_salt)
    headers = {
        "User-Agent": USER_AGENT,
        "X-Cot-Event": delivery.event,
        "X-Cot-Delivery": str(delivery.pk),
        signing.TIMESTAMP_HEADER: str(timestamp),
        signing.SIGNATURE_HEADER: signing.signature(secret, timestamp, body),
    }
    return webhooks.post(delivery.rule.webhook_url, body, headers, settings.COT_WEBHOOK_TIMEOUT_SECONDS)


def mail_recipients(delivery: Delivery) -> list[str]:
    """The addresses of the rule's recipients who may read what the delivery tells.

    An alarm goes to those who may see its device (a Standard user named by their role
    hears of their groups' devices only); an event, which comes from the audit trail, to
    the tenant's administrators only, who alone read that trail. Decided when sending,
    so a right withdrawn after the rule was made is respected.
    """
    rule = delivery.rule
    candidates = (
        User.objects.filter(tenant=delivery.tenant_id, is_active=True)
        .filter(Q(pk__in=rule.recipient_users) | Q(role__kind__in=rule.recipient_roles))
        .select_related("tenant", "role")
        .distinct()
        .order_by("email")
    )
    device_id = (delivery.payload.get("device") or {}).get("id") if delivery.event == "alarm" else None
    allowed = []
    # One check per recipient: a rule names a handful of people, never thousands.
    for user in candidates:
        caller = caller_for(user)
        if caller is None:
            continue
        if device_id is None:
            if caller.is_admin:
                allowed.append(user.email)
        elif Device.objects.restrict(user, Action.VIEW).filter(pk=device_id).exists():
            allowed.append(user.email)
    return allowed


def _mail(delivery: Delivery) -> bool:
    recipients = mail_recipients(delivery)
    if not recipients:
        delivery.error = "No active recipient may read this notification."
        return False
    payload = delivery.payload
    subject = f"[cot] {delivery.rule.name}: {payload.get('event')}"
    body = json.dumps(payload, indent=2, sort_keys=True)
    # One message each: recipients do not learn who else is told.
    messages = [EmailMessage(subject, body, None, [address]) for address in recipients]
    with get_connection() as connection:
        connection.send_messages(messages)
    return True


def due_deliveries(now: datetime) -> list[int]:
    """Pending deliveries a minute past due (their job message was lost), every tenant's: for the beat job."""
    rows = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now - timedelta(minutes=1))
    return list(rows.values_list("pk", flat=True)[:1000])

"""Deliveries: one per matching rule and subject, sent by a job, retried with backoff, recorded.

A new alarm or an audited event finds the tenant's enabled rules that ask for it (one
query on the rules' arrays), and each gets one ``Delivery`` keyed by its subject
(``alarm:17``, ``audit:4711``): a unique key per rule, so a subject never notifies a rule
twice. The job (``notifications.tasks.deliver_notification``) sends it after the commit;
a failed webhook is tried again after 30 s, 1, 2, 4 … minutes, ``COT_WEBHOOK_ATTEMPTS``
times in all; a refused target (a private address) is not retried.

A rule's quiet hours or digest hold a delivery until its ``batch_at``
(``notifications.batching``); the beat job then sends every due held delivery of the rule
as one *digest* message, and records the outcome on each.
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
from notifications import batching, signing, webhooks
from notifications.models import EVENT_OF_AUDIT, Delivery, NotificationRule
from tenants.access import caller_for
from tenants.models import Action, User

ALARM_FIELDS = ("tenant_id", "device_id", "alarm_id", "type", "severity", "text", "time")
# Held deliveries sent in one digest message at most; more wait for the next beat.
DIGEST_MAX = 200
RETRY_BASE_SECONDS = 30
# How long past the send's deadline a claimed delivery stays leased to its worker.
LEASE_MARGIN_SECONDS = 30
USER_AGENT = "cot-webhooks/1"
NO_READER = "No active recipient may read this notification."


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

    created, now = [], timezone.now()
    critical = event == "alarm" and payload["alarm"]["severity"] == "CRITICAL"
    with transaction.atomic():
        for rule in rules:
            batch_at = batching.batch_time(rule, now, critical=critical)
            delivery, new = Delivery.objects.get_or_create(
                rule=rule,
                key=key,
                defaults={
                    "tenant_id": tenant_id,
                    "event": event,
                    "payload": payload,
                    "next_attempt_at": batch_at or now,
                    "batch_at": batch_at,
                },
            )
            if new:
                created.append(delivery.pk)
                if batch_at is None:  # held ones go with the beat job when their digest is due
                    transaction.on_commit(partial(deliver_notification.delay, delivery.pk))
    return created


# --- sending ------------------------------------------------------------------------------------


def deliver(delivery_id: int) -> str:
    """Send one pending delivery (idempotent: anything but a pending, due delivery is left alone).

    Three steps, so no transaction or row lock is held while a receiver takes its time:
    claim the delivery (and a held one's batch) in a short transaction by moving its next
    attempt past the send's deadline (a *lease*: no other worker or beat finds it due),
    send, then record the outcome on the rows still holding that lease. A worker that dies
    while sending leaves the lease to expire, and the beat job sends again: at least once,
    with the same ``X-Cot-Delivery`` for the receiver to drop duplicates.
    """
    with cross_tenant("jobs.task"):
        tenant_id = Delivery.objects.filter(pk=delivery_id).values_list("tenant_id", flat=True).first()
    if tenant_id is None:
        return "missing"
    with tenant_scope(tenant_id):
        claimed = _claim(delivery_id)
        if claimed is None:
            return "not due"
        batch, lease = claimed
        lead = batch[0]
        if not lead.rule.enabled:
            for item in batch:
                item.status, item.finished_at, item.next_attempt_at = Delivery.Status.FAILED, timezone.now(), None
                item.error = "The rule was switched off before this was sent."
            outcome = "switched off"
        else:
            outcome = _send(batch, digest=lead.batch_at is not None)
        kept = _record(batch, lease)
    # A held batch is retried by the beat job with the rule's other due deliveries; a lost
    # lease means another worker has taken over and schedules its own retry.
    if kept and lead.batch_at is None and lead.status == Delivery.Status.PENDING and lead.next_attempt_at:
        _retry_later(lead.pk, max(0.0, (lead.next_attempt_at - timezone.now()).total_seconds()))
    return outcome


def _claim(delivery_id: int) -> tuple[list[Delivery], datetime] | None:
    """Lock the due delivery (and its held batch), lease them past the send's deadline, commit."""
    with transaction.atomic():
        # skip_locked: a second worker with the same message skips it.
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("rule")
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .first()
        )
        now = timezone.now()
        if delivery is None or (delivery.next_attempt_at is not None and delivery.next_attempt_at > now):
            return None
        batch = _due_batch(delivery) if delivery.batch_at is not None else [delivery]
        lease = now + timedelta(seconds=_lease_seconds(delivery.rule))
        Delivery.objects.filter(pk__in=[item.pk for item in batch]).update(next_attempt_at=lease)
    return batch, lease


def _lease_seconds(rule: NotificationRule) -> float:
    """How long a send may take before another worker may try: one webhook exchange, or a mail
    per recipient (each SMTP step bounded by ``EMAIL_TIMEOUT``), plus a margin."""
    if rule.channel == NotificationRule.Channel.WEBHOOK:
        return settings.COT_WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS
    recipients = len(rule.recipient_users) + 20 * len(rule.recipient_roles)  # a role: assume a few dozen people
    return LEASE_MARGIN_SECONDS + float(settings.EMAIL_TIMEOUT or 10) * max(1, recipients)


def _record(batch: list[Delivery], lease: datetime) -> bool:
    """Save each delivery's outcome, unless its lease ran out and another worker took it over.

    Whether the first (the job's own) delivery was still this worker's.
    """
    with transaction.atomic():
        still_ours = set(
            Delivery.objects.select_for_update()
            .filter(pk__in=[item.pk for item in batch], status=Delivery.Status.PENDING, next_attempt_at=lease)
            .values_list("pk", flat=True)
        )
        Delivery.objects.bulk_update(
            [item for item in batch if item.pk in still_ours],
            ["status", "attempts", "response_code", "error", "next_attempt_at", "finished_at"],
        )
    return batch[0].pk in still_ours


def _due_batch(lead: Delivery) -> list[Delivery]:
    """``lead`` and the other held deliveries of its rule that are due, locked, oldest first."""
    others = (
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(rule=lead.rule_id, status=Delivery.Status.PENDING, batch_at__isnull=False)
        .filter(next_attempt_at__lte=timezone.now())
        .exclude(pk=lead.pk)
        .order_by("id")[: DIGEST_MAX - 1]
    )
    batch = [lead, *others]
    for item in batch:
        item.rule = lead.rule  # one rule object: the send reads it once
    return batch


def _retry_later(delivery_id: int, countdown: float) -> None:
    from notifications.tasks import deliver_notification

    deliver_notification.apply_async((delivery_id,), countdown=countdown)


def _send(batch: list[Delivery], *, digest: bool) -> str:
    """One attempt for ``batch`` (one delivery, or a rule's held ones as a digest); records it on each (not saved)."""
    lead, now = batch[0], timezone.now()
    code: int | None = None
    unread: set[int] = set()
    try:
        if lead.rule.channel == NotificationRule.Channel.WEBHOOK:
            code = _post(batch, digest=digest)
            succeeded = 200 <= code < 300
            error = "" if succeeded else f"The receiver answered {code}."
        else:
            unread = _mail(batch, digest=digest)
            succeeded, error = True, ""
    except webhooks.WebhookRefused as refused:
        for item in batch:
            item.attempts += 1
            item.status, item.error, item.finished_at = Delivery.Status.FAILED, str(refused)[:500], now
            item.next_attempt_at = None
        return "refused"
    except Exception as failure:  # any failure is an attempt: counted, retried, then failed
        succeeded, error = False, (str(failure) or type(failure).__name__)[:500]
    for item in batch:
        _record_attempt(item, succeeded, code, error, now)
        if item.pk in unread:  # nobody may read it: failed, not retried (nobody would be told later either)
            item.status, item.finished_at, item.next_attempt_at = Delivery.Status.FAILED, now, None
            item.error = NO_READER
    outcomes: dict[str, str] = {Delivery.Status.SUCCEEDED: "sent", Delivery.Status.FAILED: "failed"}
    return outcomes.get(lead.status, "retrying")


def _record_attempt(item: Delivery, succeeded: bool, code: int | None, error: str, now: datetime) -> None:
    item.attempts += 1
    item.response_code, item.error = code, error
    if succeeded:
        item.status, item.finished_at, item.next_attempt_at = Delivery.Status.SUCCEEDED, now, None
    elif item.attempts >= settings.COT_WEBHOOK_ATTEMPTS:
        item.status, item.finished_at, item.next_attempt_at = Delivery.Status.FAILED, now, None
    else:
        item.next_attempt_at = now + timedelta(seconds=RETRY_BASE_SECONDS * 2 ** (item.attempts - 1))


def _digest_payload(items: list[Delivery], lead: Delivery) -> dict[str, Any]:
    notifications = [{**item.payload, "delivery": item.pk} for item in items]
    return {"event": "digest", "count": len(items), "notifications": notifications, "delivery": lead.pk}


def _post(batch: list[Delivery], *, digest: bool) -> int:
    lead = batch[0]
    content = _digest_payload(batch, lead) if digest else {**lead.payload, "delivery": lead.pk}
    body = json.dumps(content, sort_keys=True).encode()
    timestamp = int(clock.time())
    secret = signing.secret_for(lead.rule.secret_salt)
    headers = {
        "User-Agent": USER_AGENT,
        "X-Cot-Event": "digest" if digest else lead.event,
        "X-Cot-Delivery": str(lead.pk),
        signing.TIMESTAMP_HEADER: str(timestamp),
        signing.SIGNATURE_HEADER: signing.signature(secret, timestamp, body),
    }
    return webhooks.post(lead.rule.webhook_url, body, headers, settings.COT_WEBHOOK_TIMEOUT_SECONDS)


def _readable(user: User, caller: Any, items: list[Delivery]) -> list[Delivery]:
    """The items ``user`` may read: alarms of devices they see; events (audit) for administrators."""
    device_ids = {item.payload["device"]["id"] for item in items if item.event == "alarm"}
    seen = (
        set(Device.objects.restrict(user, Action.VIEW).filter(pk__in=device_ids).values_list("pk", flat=True))
        if device_ids
        else set()
    )
    return [
        item for item in items if (item.payload["device"]["id"] in seen if item.event == "alarm" else caller.is_admin)
    ]


def mail_messages(batch: list[Delivery], *, digest: bool) -> tuple[list[EmailMessage], set[int]]:
    """One message per recipient of the rule, holding what that recipient may read.

    An alarm goes to those who may see its device (a Standard user named by their role
    hears of their groups' devices only); an event, which comes from the audit trail, to
    the tenant's administrators only, who alone read that trail. Decided when sending, so
    a right withdrawn after the rule was made is respected. One check per recipient: a rule
    names a handful of people, never thousands.
    """
    rule = batch[0].rule
    candidates = (
        User.objects.filter(tenant=batch[0].tenant_id, is_active=True)
        .filter(Q(pk__in=rule.recipient_users) | Q(role__kind__in=rule.recipient_roles))
        .select_related("tenant", "role")
        .distinct()
        .order_by("email")
    )
    messages: list[EmailMessage] = []
    told: set[int] = set()
    for user in candidates:
        caller = caller_for(user)
        items = _readable(user, caller, batch) if caller is not None else []
        if not items:
            continue
        if digest:
            subject = f"[cot] {rule.name}: {len(items)} notification{'s' if len(items) != 1 else ''}"
            body = json.dumps(_digest_payload(items, batch[0]), indent=2, sort_keys=True)
        else:
            subject = f"[cot] {rule.name}: {items[0].payload.get('event')}"
            body = json.dumps(items[0].payload, indent=2, sort_keys=True)
        messages.append(EmailMessage(subject, body, None, [user.email]))
        told.update(item.pk for item in items)
    return messages, told


def _mail(batch: list[Delivery], *, digest: bool) -> set[int]:
    """Send the batch's messages; the ids of the deliveries no recipient may read (told nobody)."""
    messages, told = mail_messages(batch, digest=digest)
    if messages:
        # One message each: recipients do not learn who else is told.
        with get_connection() as connection:
            connection.send_messages(messages)
    return {item.pk for item in batch} - told


def due_deliveries(now: datetime) -> list[int]:
    """For the beat job, every tenant's: pending deliveries a minute past due (their job message
    was lost), and one held delivery of each rule whose digest is due (it takes the others along)."""
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
    lost = pending.filter(batch_at__isnull=True, next_attempt_at__lte=now - timedelta(minutes=1))
    held = pending.filter(batch_at__isnull=False, next_attempt_at__lte=now).order_by("rule_id", "id")
    leads = held.distinct("rule_id").values_list("pk", flat=True)[:1000]
    return [*lost.values_list("pk", flat=True)[:1000], *leads]

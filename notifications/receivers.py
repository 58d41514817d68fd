"""Turns new alarms and audited events into deliveries (connected in ``NotificationsConfig.ready``).

The senders' work is committed when these run (a device's alarm, a person's action), so a
failure here is logged and never turned into an error for them.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from audit.signals import recorded
from devices.signals import alarm_raised
from notifications.services import deliveries

log = logging.getLogger(__name__)


@receiver(alarm_raised, dispatch_uid="notifications.alarm")
def _on_alarm(sender: Any, **alarm: Any) -> None:
    try:
        deliveries.notify_alarm(
            **{name: alarm[name] for name in deliveries.ALARM_FIELDS}, escalated_from=alarm.get("escalated_from")
        )
    except Exception:
        log.exception("Notifications for alarm %s failed", alarm.get("alarm_id"))


@receiver(recorded, dispatch_uid="notifications.audit")
def _on_audit_entry(sender: Any, entry: Any, **kwargs: Any) -> None:
    try:
        deliveries.notify_event(entry)
    except Exception:
        log.exception("Notifications for audit entry %s failed", entry.pk)

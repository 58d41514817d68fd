"""What the devices app tells the apps above it, which it cannot import."""

from django.dispatch import Signal

#: A device raised a new alarm, or raised the severity of an open one (a repeat of an open
#: alarm at the same or a lower severity only counts it up and is not sent). Sent once the
#: alarm is committed, with ``tenant_id``, ``device_id``, ``alarm_id``, ``type``,
#: ``severity``, ``text``, ``time`` and, for an escalation, ``escalated_from``.
alarm_raised = Signal()

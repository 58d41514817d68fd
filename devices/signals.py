"""What the devices app tells the apps above it, which it cannot import."""

from django.dispatch import Signal

#: A device raised a new alarm (a repeat of an open alarm of the same type only counts it up
#: and is not sent). Sent once the alarm is committed, with ``tenant_id``, ``device_id``,
#: ``alarm_id``, ``type``, ``severity``, ``text`` and ``time``.
alarm_raised = Signal()

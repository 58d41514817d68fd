"""Every write to the device registry and payload data, as ``do_*`` functions.

Split by subject: ``groups`` (device groups and rights), ``registry`` (types, devices,
credentials, decommissioning, operations, alarms) and ``registration``.
"""

from devices.services.groups import (
    deletion_conflict,
    do_create_device_group,
    do_delete_device_group,
    do_set_device_group_rights,
    do_update_device_group,
    rights_on,
)

__all__ = [
    "deletion_conflict",
    "do_create_device_group",
    "do_delete_device_group",
    "do_set_device_group_rights",
    "do_update_device_group",
    "rights_on",
]

"""Writes to device types, devices, their credentials, operations and alarms."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

import audit
from cot.db_routers import TELEMETRY_ALIAS
from cot.exceptions import Conflict
from cot.prepared import execute_prepared
from cot.updates import save_changes
from devices.access import reaches_every_group
from devices.device_api.validation import attributes_problem
from devices.models import Alarm, Device, DeviceGroup, DeviceType, Operation
from tenants.access import access_by_id, caller_for, require_caller, require_secret_keeper, tenant_for_add
from tenants.models import Action, Tenant, User
from tenants.tokens import new_secret, secret_digest, shown_prefix

# --- device types ------------------------------------------------------------------------


@transaction.atomic
def do_create_device_type(
    *,
    manufacturer: str,
    model: str,
    certified: bool = False,
    certification_notes: str = "",
    heartbeat_interval: int = 300,
    actor: User | None,
    tenant: Tenant | None = None,
) -> DeviceType:
    """Create a device type in the actor's tenant."""
    tenant = tenant_for_add(actor, DeviceType, tenant)
    if DeviceType.objects.filter(tenant=tenant, manufacturer=manufacturer, model=model).exists():
        raise ValidationError({"model": f"Device type '{manufacturer} {model}' already exists."})
    device_type = DeviceType(
        tenant=tenant,
        manufacturer=manufacturer,
        model=model,
        certified=certified,
        certification_notes=certification_notes,
        heartbeat_interval=heartbeat_interval,
    )
    device_type.full_clean()
    device_type.save()
    return device_type


# --- credentials -------------------------------------------------------------------------


def issue_device_credential(device: Device) -> str:
    """Give ``device`` a new credential (replacing any old one); returns the secret, shown once."""
    secret = new_secret(settings.DEVICE_CREDENTIAL_PREFIX)
    device.credential_digest = secret_digest(secret)
    device.credential_prefix = shown_prefix(secret)
    device.credential_issued_at = timezone.now()
    Device.objects.filter(pk=device.pk).update(
        credential_digest=device.credential_digest,
        credential_prefix=device.credential_prefix,
        credential_issued_at=device.credential_issued_at,
    )
    return secret


@transaction.atomic
def do_rotate_device_credential(device: Device, *, actor: User | None) -> str:
    """Replace a device's credential; the old one stops working at once.

    ``actor=None`` means the device itself rotates, authenticated by its current credential.
    """
    if actor is not None:
        device = access_by_id(actor, Device, device.pk, Action.CHANGE)
        require_secret_keeper(actor, "issue device credentials")
    if device.status == Device.Status.DECOMMISSIONED:
        raise ValidationError("A decommissioned device gets no new credential.")
    secret = issue_device_credential(device)
    audit.record("device.credential_rotate", tenant=device.tenant_id, target=device, actor=actor)
    return secret


@transaction.atomic
def do_revoke_device_credential(device: Device, *, actor: User | None) -> Device:
    """Remove a device's credential: its next request gets 401."""
    if actor is not None:
        device = access_by_id(actor, Device, device.pk, Action.CHANGE)
    # Guarded, so revoking twice (or concurrently) records one revocation.
    if Device.objects.filter(pk=device.pk, credential_digest__isnull=False).update(credential_digest=None):
        audit.record("device.credential_revoke", tenant=device.tenant_id, target=device, actor=actor)
    device.credential_digest = None
    return device


# --- devices -----------------------------------------------------------------------------

DEVICE_FIELDS = ("name", "type", "group", "firmware_version", "attributes", "certificate_fingerprint")


@transaction.atomic
def do_update_device(device: Device, changes: dict[str, Any], *, actor: User | None) -> Device:
    """Change a device's descriptive fields (auditlog records the diff)."""
    if actor is not None:
        device = access_by_id(actor, Device, device.pk, Action.CHANGE)
    unknown = set(changes) - set(DEVICE_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown device fields: {', '.join(sorted(unknown))}.")
    for related in ("type", "group"):
        value = changes.get(related)
        if value is not None and value.tenant_id != device.tenant_id:
            raise ValidationError({related: "Unknown value."})
    if "attributes" in changes and (problem := attributes_problem(changes["attributes"])) is not None:
        raise ValidationError({"attributes": problem})
    if "group" in changes and actor is not None and not _may_place_in(actor, changes["group"]):
        raise ValidationError({"group": "You may not move devices into that group."})
    # Saves only the changed columns: a full-row save would write back the status and
    # credential read a moment ago, undoing a concurrent block, decommissioning or rotation.
    return save_changes(device, changes, validate_constraints=False)


def record_firmware_version(device: Device, version: str) -> bool:
    """Record the firmware version ``device`` itself reports running; True if it changed.

    For the device API (a successful firmware update, a poll naming the running version):
    the device is the authority on what it runs, so no user's access is checked. One
    UPDATE of one column, none when nothing changed; the firmware app audits the update
    that caused it, so no per-report history is written here.
    """
    params = [version, device.pk, version]
    rows = execute_prepared(connection, "cot_record_firmware_version", _RECORD_FIRMWARE_VERSION, params)
    device.firmware_version = version
    return bool(rows)


# A prepared statement: a firmware update's success report runs it, many a second in a rollout.
_RECORD_FIRMWARE_VERSION = f"""
    UPDATE {connection.ops.quote_name(Device._meta.db_table)} SET firmware_version = %s::varchar
    WHERE id = %s AND firmware_version IS DISTINCT FROM %s::varchar RETURNING 1
"""  # noqa: S608 (the table name comes from the model; values are parameters)


def _may_place_in(actor: User, group: DeviceGroup | None) -> bool:
    caller = caller_for(actor)
    if caller is None:
        return False
    if reaches_every_group(caller):
        return True
    return group is not None and DeviceGroup.objects.restrict(actor, Action.CHANGE).filter(pk=group.pk).exists()


def _bulk_targets(actor: User, device_ids: list[int], action: str) -> Any:
    reachable = Device.objects.restrict(actor, action).filter(pk__in=device_ids)
    if reachable.count() != len(set(device_ids)):
        raise ValidationError({"devices": "Some devices do not exist."})
    return reachable


@transaction.atomic
def do_move_devices(device_ids: list[int], group: DeviceGroup | None, *, actor: User) -> int:
    """Move devices into ``group`` in one statement; all or none."""
    if not _may_place_in(actor, group):
        # Only administrators take devices out of every group (and so out of others' reach).
        raise ValidationError({"group": "You may not move devices into that group."})
    tenant = require_caller(actor).tenant
    if group is not None and group.tenant_id != tenant.pk:
        raise ValidationError({"group": "Unknown group."})
    moved = _bulk_targets(actor, device_ids, Action.CHANGE).update(group=group)
    audit.record(
        "device.move",
        tenant=tenant,
        data={"devices": sorted(set(device_ids)), "group": group.pk if group else None},
        actor=actor,
    )
    return moved


@transaction.atomic
def do_block_devices(device_ids: list[int], *, actor: User) -> int:
    """Block devices: their credentials stop working until unblocked (all or none)."""
    blocked = (
        _bulk_targets(actor, device_ids, Action.CHANGE)
        .exclude(status=Device.Status.DECOMMISSIONED)
        .update(status=Device.Status.BLOCKED)
    )
    audit.record(
        "device.block", tenant=require_caller(actor).tenant, data={"devices": sorted(set(device_ids))}, actor=actor
    )
    return blocked


@transaction.atomic
def do_unblock_device(device: Device, *, actor: User) -> Device:
    """Let a blocked device talk again: its credential works again, so administrators only."""
    device = access_by_id(actor, Device, device.pk, Action.CHANGE)
    require_secret_keeper(actor, "unblock devices")
    # The state check is in the UPDATE itself, so a decommissioning at the same moment wins.
    if not Device.objects.filter(pk=device.pk, status=Device.Status.BLOCKED).update(status=Device.Status.ACTIVE):
        raise Conflict({"status": "Only blocked devices can be unblocked."})
    device.status = Device.Status.ACTIVE
    audit.record("device.unblock", tenant=device.tenant_id, target=device, actor=actor)
    return device


@transaction.atomic
def do_decommission_devices(device_ids: list[int], *, purge: bool = False, actor: User | None) -> list[int]:
    """Decommission devices: revoke credentials, cancel pending operations, mark them, audit.

    Set-based, all or none. With ``purge``, a background job deletes their payload data
    afterwards (``devices.tasks.purge_device_payload``), reporting progress as it goes.
    Their external ids can then be registered again as new devices.
    """
    if actor is not None:
        targets = _bulk_targets(actor, device_ids, Action.DELETE)
    else:
        targets = Device.objects.filter(pk__in=device_ids)
    rows = list(targets.exclude(status=Device.Status.DECOMMISSIONED).values_list("pk", "tenant_id"))
    ids = [pk for pk, _ in rows]
    now = timezone.now()
    Device.objects.filter(pk__in=ids).exclude(status=Device.Status.DECOMMISSIONED).update(
        status=Device.Status.DECOMMISSIONED, credential_digest=None, decommissioned_at=now
    )
    Operation.objects.filter(device__in=ids, status=Operation.Status.PENDING).update(
        status=Operation.Status.CANCELLED, failure_reason="Device decommissioned."
    )
    from devices.tasks import start_payload_purge

    for tenant_id in {t for _, t in rows}:
        decommissioned = sorted(pk for pk, t in rows if t == tenant_id)
        audit.record(
            "device.decommission", tenant=tenant_id, data={"devices": decommissioned, "purge": purge}, actor=actor
        )
        if purge:
            start_payload_purge(tenant_id, decommissioned, actor=actor)
    return ids


# --- operations --------------------------------------------------------------------------


@transaction.atomic
def do_create_operation(device: Device, *, kind: str, parameters: dict[str, Any], actor: User) -> Operation:
    """Queue a command for a device; needs ``change`` on it. The device fetches it when it polls."""
    device = access_by_id(actor, Device, device.pk, Action.CHANGE)
    if device.status != Device.Status.ACTIVE:
        raise ValidationError({"device": f"The device is {device.status}; operations need an active device."})
    if not kind.strip():
        raise ValidationError({"kind": "Name the operation (for example 'restart')."})
    operation = Operation.objects.create(
        tenant_id=device.tenant_id, device=device, kind=kind.strip(), parameters=parameters, created_by=actor
    )
    audit.record("operation.create", tenant=device.tenant_id, target=operation, data={"kind": kind}, actor=actor)
    return operation


@transaction.atomic
def do_cancel_operation(operation: Operation, *, actor: User) -> Operation:
    """Cancel an operation the device has not started."""
    operation = access_by_id(actor, Operation, operation.pk, Action.CHANGE)
    # Guarded in the UPDATE: a device reporting the operation started or done at the same
    # moment keeps its report, and the cancellation is refused.
    pending = Operation.objects.filter(pk=operation.pk, status=Operation.Status.PENDING)
    if not pending.update(status=Operation.Status.CANCELLED):
        raise Conflict({"status": "Only pending operations can be cancelled."})
    operation.status = Operation.Status.CANCELLED
    audit.record("operation.cancel", tenant=operation.tenant_id, target=operation, actor=actor)
    return operation


# --- alarms ------------------------------------------------------------------------------

ALARM_TRANSITIONS: dict[str, set[str]] = {
    Alarm.Status.ACKNOWLEDGED: {Alarm.Status.ACTIVE},
    Alarm.Status.CLEARED: {Alarm.Status.ACTIVE, Alarm.Status.ACKNOWLEDGED},
}


def do_set_alarm_status(alarm_id: int, status: str, *, actor: User) -> Alarm:
    """Acknowledge or clear an alarm of a device the actor may change."""
    (alarm,) = do_set_alarms_status([alarm_id], status, actor=actor)
    return alarm


@transaction.atomic
def do_set_alarms_status(alarm_ids: list[int], status: str, *, actor: User) -> list[Alarm]:
    """Acknowledge or clear alarms of devices the actor may change: all of them or none.

    One restricted read and one UPDATE however many alarms; one audit entry per alarm.
    """
    if status not in ALARM_TRANSITIONS:
        raise ValidationError({"status": "Set ACKNOWLEDGED or CLEARED."})
    with transaction.atomic(using=TELEMETRY_ALIAS):
        alarms = list(Alarm.objects.restrict(actor, Action.CHANGE).filter(pk__in=alarm_ids).order_by("pk"))
        if len(alarms) != len(set(alarm_ids)):
            raise Http404("No alarm matches the given query.")
        for alarm in alarms:
            if alarm.status not in ALARM_TRANSITIONS[status]:
                raise Conflict({"status": f"A {alarm.status} alarm cannot become {status}."})
        # The allowed previous states are part of the UPDATE: an alarm cleared meanwhile (and
        # perhaps raised again as a new open alarm) is not reopened behind the device's back.
        changed = Alarm.objects.filter(
            pk__in=[alarm.pk for alarm in alarms], status__in=ALARM_TRANSITIONS[status]
        ).update(status=status, updated_at=timezone.now())
        if changed != len(alarms):
            raise Conflict({"status": "Some alarms changed meanwhile; nothing was changed. Reload and try again."})
    for alarm in alarms:
        alarm.status = status
        audit.record(
            f"alarm.{status.lower()}",
            tenant=alarm.tenant_id,
            data={"alarm": alarm.pk, "device": alarm.device_id, "type": alarm.type},
            actor=actor,
        )
    return alarms

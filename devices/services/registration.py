"""Device registration: administrators expect external ids, devices collect their credential once."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from devices.models import Device, DeviceGroup, DeviceRegistration, DeviceType
from devices.services.registry import issue_device_credential
from tenants.models import Action, Tenant, User
from tenants.services import access_by_id, tenant_for_add
from tenants.tokens import secret_digest

MAX_CSV_ROWS = 10_000
CSV_COLUMNS = ("external_id", "registration_token", "type", "group")


class RegistrationRefused(Exception):
    """Unknown id, wrong token, blocked or finished registration: one answer for all."""


@dataclass(frozen=True)
class RegistrationAnswer:
    """What the device hears: still pending, or its id and credential (exactly once)."""

    pending: bool
    device: Device | None = None
    credential: str | None = None


@dataclass(frozen=True)
class _Known:
    """External ids of ``tenant`` already taken by a live device or expected by a registration."""

    registered: set[str]
    expected: set[str]

    @classmethod
    def among(cls, tenant: Tenant, external_ids: list[str]) -> _Known:
        # Two set-based queries for a whole CSV file, not two per line.
        ids = [external_id.strip() for external_id in external_ids]
        devices = Device.objects.filter(tenant=tenant, external_id__in=ids).exclude(status="decommissioned")
        registrations = DeviceRegistration.objects.filter(
            tenant=tenant, external_id__in=ids, status__in=["pending", "accepted"]
        )
        return cls(
            set(devices.values_list("external_id", flat=True)),
            set(registrations.values_list("external_id", flat=True)),
        )


def _check_expected(tenant: Tenant, external_id: str, device_type: DeviceType | None, known: _Known) -> None:
    external_id = external_id.strip()
    if not external_id or len(external_id) > 64:
        raise ValidationError({"external_id": "An external id has 1 to 64 characters."})
    if external_id in known.registered:
        raise ValidationError({"external_id": f"A device '{external_id}' is already registered."})
    if external_id in known.expected:
        raise ValidationError({"external_id": f"'{external_id}' is already expected."})
    if tenant.certified_devices_only and (device_type is None or not device_type.certified):
        raise ValidationError({"type": "This tenant registers devices of certified types only."})


def _new_registration(
    tenant: Tenant,
    external_id: str,
    token: str | None,
    device_type: DeviceType | None,
    group: DeviceGroup | None,
    known: _Known,
) -> DeviceRegistration:
    for name, related in (("type", device_type), ("group", group)):
        if related is not None and related.tenant_id != tenant.pk:
            raise ValidationError({name: "Unknown value."})
    _check_expected(tenant, external_id, device_type, known)
    return DeviceRegistration(
        tenant=tenant,
        external_id=external_id.strip(),
        token_digest=secret_digest(token) if token else "",
        type=device_type,
        group=group,
    )


@transaction.atomic
def do_create_registration(
    *,
    external_id: str,
    registration_token: str | None = None,
    type: DeviceType | None = None,
    group: DeviceGroup | None = None,
    actor: User | None,
    tenant: Tenant | None = None,
) -> DeviceRegistration:
    """Expect one device by its external id (and, optionally, a registration token)."""
    tenant = tenant_for_add(actor, DeviceRegistration, tenant)
    known = _Known.among(tenant, [external_id])
    registration = _new_registration(tenant, external_id, registration_token, type, group, known)
    registration.save()
    audit.record("registration.create", tenant=tenant, target=registration, actor=actor)
    return registration


@transaction.atomic
def do_bulk_register(csv_text: str, *, actor: User | None, tenant: Tenant | None = None) -> list[DeviceRegistration]:
    """Expect many devices from CSV (header ``external_id[,registration_token,type,group]``).

    All rows or none: any bad row rejects the file, with an error per row. ``type`` is a
    device type id, ``group`` a device group id, both of the same tenant.
    """
    tenant = tenant_for_add(actor, DeviceRegistration, tenant)
    reader = csv.DictReader(io.StringIO(csv_text))
    if reader.fieldnames is None or "external_id" not in reader.fieldnames:
        raise ValidationError({"file": "The first line must name the columns, including 'external_id'."})
    unknown = set(reader.fieldnames) - set(CSV_COLUMNS)
    if unknown:
        raise ValidationError({"file": f"Unknown columns: {', '.join(sorted(unknown))}."})
    types = {str(t.pk): t for t in DeviceType.objects.filter(tenant=tenant)}
    groups = {str(g.pk): g for g in DeviceGroup.objects.filter(tenant=tenant)}
    rows = list(itertools.islice(reader, MAX_CSV_ROWS + 1))
    if len(rows) > MAX_CSV_ROWS:
        raise ValidationError({"file": f"At most {MAX_CSV_ROWS} devices per file."})
    known = _Known.among(tenant, [row.get("external_id") or "" for row in rows])
    registrations, errors, seen = [], {}, set()
    for line, row in enumerate(rows, start=2):
        try:
            external_id = (row.get("external_id") or "").strip()
            if external_id in seen:
                raise ValidationError({"external_id": f"'{external_id}' appears twice in the file."})
            seen.add(external_id)
            device_type = _lookup(types, row.get("type"), "type")
            group = _lookup(groups, row.get("group"), "group")
            registrations.append(
                _new_registration(tenant, external_id, row.get("registration_token") or None, device_type, group, known)
            )
        except ValidationError as exc:
            errors[f"line {line}"] = exc.messages
    if errors:
        raise ValidationError(errors)
    if not registrations:
        raise ValidationError({"file": "The file lists no devices."})
    created = DeviceRegistration.objects.bulk_create(registrations)
    audit.record("registration.bulk_create", tenant=tenant, data={"count": len(created)}, actor=actor)
    return created


def _lookup(choices: dict[str, Any], key: str | None, name: str) -> Any:
    if not key:
        return None
    if key.strip() not in choices:
        raise ValidationError({name: f"Unknown {name} '{key}'."})
    return choices[key.strip()]


@transaction.atomic
def do_accept_registrations(registration_ids: list[int], *, actor: User | None) -> int:
    """Accept pending registrations; each device collects its credential on its next call."""
    qs = DeviceRegistration.objects.filter(pk__in=registration_ids, status=DeviceRegistration.Status.PENDING)
    if actor is not None:
        qs = qs.restrict(actor, Action.CHANGE)
    rows = list(qs.values_list("pk", "tenant_id"))
    _accept(rows, actor)
    return len(rows)


def _accept(rows: list[tuple[int, int]], actor: User | None) -> datetime:
    """Mark these pending ``(id, tenant id)`` registrations accepted and audit it per tenant; when."""
    now = timezone.now()
    DeviceRegistration.objects.filter(pk__in=[pk for pk, _ in rows]).update(
        status=DeviceRegistration.Status.ACCEPTED, accepted_at=now
    )
    for tenant_id in {t for _, t in rows}:
        audit.record(
            "registration.accept",
            tenant=tenant_id,
            data={"registrations": sorted(pk for pk, t in rows if t == tenant_id)},
            actor=actor,
        )
    return now


@transaction.atomic
def do_accept_registration(registration: DeviceRegistration, *, actor: User) -> DeviceRegistration:
    """Accept one registration (404 outside reach, 400 unless pending)."""
    registration = access_by_id(actor, DeviceRegistration, registration.pk, Action.CHANGE)
    if registration.status != DeviceRegistration.Status.PENDING:
        raise ValidationError({"status": f"The registration is {registration.status}, not pending."})
    registration.accepted_at = _accept([(registration.pk, registration.tenant_id)], actor)
    registration.status = DeviceRegistration.Status.ACCEPTED
    return registration


def device_register(*, tenant_slug: str, external_id: str, registration_token: str | None) -> RegistrationAnswer:
    """The device's side: pending, or its new id and credential exactly once.

    Unknown tenants, unknown ids, wrong tokens, blocked and finished registrations all
    raise the same ``RegistrationRefused``, so nothing can be learnt by probing. Wrong
    tokens count (and that count commits even though the call is refused); at
    ``MAX_FAILED_ATTEMPTS`` the registration is blocked.
    """
    with transaction.atomic():
        registration = (
            DeviceRegistration.objects.select_for_update(of=("self",))
            .select_related("tenant")
            .filter(tenant__slug=tenant_slug, tenant__status=Tenant.Status.ACTIVE, external_id=external_id)
            .filter(status__in=[DeviceRegistration.Status.PENDING, DeviceRegistration.Status.ACCEPTED])
            .first()
        )
        if registration is not None:
            if registration.token_digest and secret_digest(registration_token or "") != registration.token_digest:
                _count_failure(registration)
            else:
                return _complete(registration)
    raise RegistrationRefused


def _complete(registration: DeviceRegistration) -> RegistrationAnswer:
    tenant = registration.tenant
    if registration.status == DeviceRegistration.Status.PENDING:
        if not tenant.auto_accept_registrations:
            return RegistrationAnswer(pending=True)
        registration.status, registration.accepted_at = DeviceRegistration.Status.ACCEPTED, timezone.now()
        audit.record("registration.auto_accept", tenant=tenant, target=registration)
    device = Device.objects.create(
        tenant=tenant,
        external_id=registration.external_id,
        name=registration.external_id,
        type=registration.type,
        group=registration.group,
        status=Device.Status.ACTIVE,
    )
    credential = issue_device_credential(device)
    registration.status, registration.device = DeviceRegistration.Status.COMPLETED, device
    registration.save(update_fields=["status", "device", "accepted_at"])
    audit.record("device.credential_issue", tenant=tenant, target=device, data={"registration": registration.pk})
    return RegistrationAnswer(pending=False, device=device, credential=credential)


def _count_failure(registration: DeviceRegistration) -> None:
    registration.failed_attempts += 1
    blocked = registration.failed_attempts >= DeviceRegistration.MAX_FAILED_ATTEMPTS
    if blocked:
        registration.status = DeviceRegistration.Status.BLOCKED
    registration.save(update_fields=["failed_attempts", "status"])
    audit.record(
        "registration.blocked" if blocked else "registration.wrong_token",
        tenant=registration.tenant_id,
        target=registration,
        data={"failed_attempts": registration.failed_attempts},
    )

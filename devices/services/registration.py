"""Device registration: administrators expect external ids, devices collect their credential once.

Every registration has a secret, the registration token: supplied by the administrator
or generated here and shown once. The device presents it with its external id; the
tenant slug and the external id alone (printed on labels) prove nothing.

Wrong guesses never block a registration (that would let anyone who reads a label lock
the rightful device out). They are throttled instead:
- per source address: a few wrong tokens per window, whichever ids they name; the call's
  token is reserved from the address's budget before it is compared (and given back when
  it was right), so concurrent calls cannot overdraw it;
- per tenant and external id, expected or not (so the throttle reveals nothing): once an
  id has drawn too many wrong tokens, an address that already sent one for it is refused
  before comparing, while an address that never did still gets its token compared. A
  guesser with many addresses gets one guess per address, and the rightful device, which
  never sent a wrong token, still gets in.
The administrators are alerted (audit entries, a cockpit notice).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

import audit
from audit.context import ActorKind
from cot import ratelimit
from cot.database.scope import cross_tenant, enter_tenant
from cot.exceptions import Conflict
from cot.spreadsheet import FORMULA_STARTS
from devices.models import Device, DeviceGroup, DeviceRegistration, DeviceType
from devices.services.registry import issue_device_credential
from tenants.access import access_by_id, require_secret_keeper, tenant_for_add
from tenants.models import Action, Tenant, User
from tenants.tokens import new_secret, secret_digest

MAX_CSV_ROWS = 10_000
CSV_COLUMNS = ("external_id", "registration_token", "type", "group")
MIN_TOKEN_LENGTH, MAX_TOKEN_LENGTH = 12, 200
# How long wrong tokens keep a registration on the cockpit's notice list.
GUESS_NOTICE_WINDOW = timedelta(hours=24)


class RegistrationRefused(Exception):
    """Unknown id, wrong or missing token, finished registration: one answer for all."""


class RegistrationPaused(Exception):
    """The tenant is in maintenance: a device that proved its token may try again later (nothing was written)."""


class RegistrationThrottled(Exception):
    """Too many wrong tokens from this address or for this external id; try again later."""

    def __init__(self, refusal: ratelimit.Refusal) -> None:
        super().__init__(refusal.message)
        self.retry_after = refusal.retry_after


@dataclass(frozen=True)
class RegistrationAnswer:
    """What the device hears: still pending, or its id and credential (exactly once)."""

    pending: bool
    device: Device | None = None
    credential: str | None = None


@dataclass(frozen=True)
class IssuedRegistration:
    """A new registration and its token, which is shown this once and never stored in the clear."""

    registration: DeviceRegistration
    token: str
    generated: bool


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
            tenant=tenant, external_id__in=ids, status__in=DeviceRegistration.OPEN
        )
        return cls(
            set(devices.values_list("external_id", flat=True)),
            set(registrations.values_list("external_id", flat=True)),
        )


def _printable_cell(value: str) -> bool:
    # Shown in CSV downloads: a leading = + - @ would be neutralised there (cot.spreadsheet),
    # and a device provisioned from the file would then present a different value.
    return value.isprintable() and not value.startswith(FORMULA_STARTS)


def _check_expected(tenant: Tenant, external_id: str, device_type: DeviceType | None, known: _Known) -> None:
    external_id = external_id.strip()
    if not external_id or len(external_id) > 64:
        raise ValidationError({"external_id": "An external id has 1 to 64 characters."})
    if not _printable_cell(external_id):
        raise ValidationError(
            {"external_id": "An external id has printable characters only and does not start with = + - or @."}
        )
    if external_id in known.registered:
        raise ValidationError({"external_id": f"A device '{external_id}' is already registered."})
    if external_id in known.expected:
        raise ValidationError({"external_id": f"'{external_id}' is already expected."})
    if tenant.certified_devices_only and (device_type is None or not device_type.certified):
        raise ValidationError({"type": "This tenant registers devices of certified types only."})


def _token_or_new(token: str | None) -> tuple[str, bool]:
    """The administrator's token after checking it, or a generated one; and whether it was generated."""
    if not token:
        return new_secret(settings.DEVICE_REGISTRATION_TOKEN_PREFIX), True
    if not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH or not _printable_cell(token) or token != token.strip():
        raise ValidationError(
            {
                "registration_token": f"A registration token has {MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} printable "
                "characters, no surrounding spaces, and does not start with = + - or @; leave it empty to have "
                "one generated."
            }
        )
    return token, False


def _new_registration(
    tenant: Tenant,
    external_id: str,
    token: str | None,
    device_type: DeviceType | None,
    group: DeviceGroup | None,
    known: _Known,
) -> IssuedRegistration:
    for name, related in (("type", device_type), ("group", group)):
        if related is not None and related.tenant_id != tenant.pk:
            raise ValidationError({name: "Unknown value."})
    _check_expected(tenant, external_id, device_type, known)
    secret, generated = _token_or_new(token)
    registration = DeviceRegistration(
        tenant=tenant,
        external_id=external_id.strip(),
        token_digest=secret_digest(secret),
        type=device_type,
        group=group,
    )
    return IssuedRegistration(registration, secret, generated)


@transaction.atomic
def do_create_registration(
    *,
    external_id: str,
    registration_token: str | None = None,
    type: DeviceType | None = None,
    group: DeviceGroup | None = None,
    actor: User | None,
    tenant: Tenant | None = None,
) -> IssuedRegistration:
    """Expect one device by its external id; its token is ``registration_token`` or a generated one."""
    tenant = tenant_for_add(actor, DeviceRegistration, tenant)
    known = _Known.among(tenant, [external_id])
    issued = _new_registration(tenant, external_id, registration_token, type, group, known)
    issued.registration.save()
    audit.record(
        "registration.create", tenant=tenant, target=issued.registration, data={"token_generated": issued.generated}
    )
    return issued


@transaction.atomic
def do_bulk_register(
    lines: Iterable[str], *, actor: User | None, tenant: Tenant | None = None, source: str = "file"
) -> list[IssuedRegistration]:
    """Expect many devices from CSV (header ``external_id[,registration_token,type,group]``).

    ``lines`` is read as a stream (an open upload, or ``text.splitlines()``), at most
    ``MAX_CSV_ROWS`` devices. All rows or none: any bad row rejects the file, with an
    error per row (file-level errors under ``source``, the field the CSV came in). ``type``
    is a device type id, ``group`` a device group id, both of the same tenant. Rows without
    a token get a generated one.
    """
    tenant = tenant_for_add(actor, DeviceRegistration, tenant)
    reader = csv.DictReader(lines, strict=True)
    try:
        if reader.fieldnames is None or "external_id" not in reader.fieldnames:
            raise ValidationError({source: "The first line must name the columns, including 'external_id'."})
        unknown = set(reader.fieldnames) - set(CSV_COLUMNS)
        if unknown:
            raise ValidationError({source: f"Unknown columns: {', '.join(sorted(unknown))}."})
        rows = list(itertools.islice(reader, MAX_CSV_ROWS + 1))
    except csv.Error as exc:
        raise ValidationError({source: f"The file cannot be read as CSV (line {reader.line_num}: {exc})."}) from None
    if len(rows) > MAX_CSV_ROWS:
        raise ValidationError({source: f"At most {MAX_CSV_ROWS} devices per file."})
    types = {str(t.pk): t for t in DeviceType.objects.filter(tenant=tenant)}
    groups = {str(g.pk): g for g in DeviceGroup.objects.filter(tenant=tenant)}
    known = _Known.among(tenant, [row.get("external_id") or "" for row in rows])
    issued, errors, seen = [], {}, set()
    for line, row in enumerate(rows, start=2):
        try:
            external_id = (row.get("external_id") or "").strip()
            if external_id in seen:
                raise ValidationError({"external_id": f"'{external_id}' appears twice in the file."})
            seen.add(external_id)
            device_type = _lookup(types, row.get("type"), "type")
            group = _lookup(groups, row.get("group"), "group")
            token = row.get("registration_token") or None
            issued.append(_new_registration(tenant, external_id, token, device_type, group, known))
        except ValidationError as exc:
            errors[f"line {line}"] = exc.messages
    if errors:
        raise ValidationError(errors)
    if not issued:
        raise ValidationError({source: "The file lists no devices."})
    DeviceRegistration.objects.bulk_create([one.registration for one in issued])
    generated = sum(one.generated for one in issued)
    audit.record("registration.bulk_create", tenant=tenant, data={"count": len(issued), "tokens_generated": generated})
    return issued


def _lookup(choices: dict[str, Any], key: str | None, name: str) -> Any:
    if not key:
        return None
    if key.strip() not in choices:
        raise ValidationError({name: f"Unknown {name} '{key}'."})
    return choices[key.strip()]


def _accept(pending: QuerySet[DeviceRegistration], actor: User | None) -> list[tuple[int, int]]:
    """Accept the still-pending rows of ``pending``; their ``(id, tenant id)``, audited per tenant.

    The rows are locked first and the UPDATE repeats the status guard, so a device
    completing its registration at the same moment is never flipped back to accepted.
    """
    rows = list(
        pending.filter(status=DeviceRegistration.Status.PENDING).select_for_update().values_list("pk", "tenant_id")
    )
    now = timezone.now()
    updated = DeviceRegistration.objects.filter(
        pk__in=[pk for pk, _ in rows], status=DeviceRegistration.Status.PENDING
    ).update(status=DeviceRegistration.Status.ACCEPTED, accepted_at=now)
    if updated != len(rows):  # pragma: no cover - the rows are locked above
        raise Conflict("Registrations changed while being accepted; nothing was accepted.")
    for tenant_id in {t for _, t in rows}:
        audit.record(
            "registration.accept",
            tenant=tenant_id,
            data={"registrations": sorted(pk for pk, t in rows if t == tenant_id)},
            actor=actor,
        )
    return rows


@transaction.atomic
def do_accept_registrations(registration_ids: list[int], *, actor: User | None) -> int:
    """Accept pending registrations; each device collects its credential on its next call."""
    qs = DeviceRegistration.objects.filter(pk__in=registration_ids)
    if actor is not None:
        require_secret_keeper(actor, "accept registrations")
        qs = qs.restrict(actor, Action.CHANGE)
    return len(_accept(qs, actor))


@transaction.atomic
def do_accept_registration(registration: DeviceRegistration, *, actor: User) -> DeviceRegistration:
    """Accept one registration (404 outside reach, 403 for anyone but administrators, 409 unless pending)."""
    registration = access_by_id(actor, DeviceRegistration, registration.pk, Action.VIEW)
    require_secret_keeper(actor, "accept registrations")
    if not _accept(DeviceRegistration.objects.filter(pk=registration.pk), actor):
        registration.refresh_from_db(fields=["status"])
        raise Conflict({"status": f"The registration is {registration.status}, not pending."})
    registration.refresh_from_db(fields=["status", "accepted_at"])
    return registration


@dataclass(frozen=True)
class _Guessing:
    """The wrong-token budgets one registration call is measured against."""

    address: list[ratelimit.Limit]
    subject: list[ratelimit.Limit]
    # Set for an address that sent a wrong token for this id within the id's window.
    suspect_key: str

    @classmethod
    def of(cls, tenant_slug: str, external_id: str, source: str) -> _Guessing:
        # Hashed: keys must not carry (or grow with) what an anonymous caller sends.
        subject = hashlib.sha256(f"{tenant_slug}\x00{external_id}".encode()).hexdigest()[:32]
        address = hashlib.sha256(source.encode()).hexdigest()[:32]
        return cls(
            ratelimit.limits_for(
                "registration_guess_address", address, settings.RATE_LIMITS["registration_guess_address"]
            ),
            ratelimit.limits_for("registration_guess", subject, settings.RATE_LIMITS["registration_guess"]),
            f"registration-guesser:{subject}:{address}",
        )

    def spent(self) -> ratelimit.Refusal | None:
        """Whether the id's budget of wrong tokens is spent (and until when)."""
        return ratelimit.peek(self.subject)

    def guessed_here(self) -> bool:
        """Whether this address sent a wrong token for the id within the id's window."""
        return bool(cache.get(self.suspect_key))

    def wrong(self) -> bool:
        """Record a wrong token from this address; whether it spent the id's budget."""
        emptied = ratelimit.charge(self.subject)
        cache.set(self.suspect_key, 1, timeout=int(self.subject[0].period))
        return emptied is not None


def device_register(
    *, tenant_slug: str, external_id: str, registration_token: str | None, source: str = "unknown"
) -> RegistrationAnswer:
    """The device's side: pending, or its new id and credential exactly once.

    Unknown tenants, unknown ids, missing and wrong tokens and finished registrations
    all raise the same ``RegistrationRefused``, so nothing can be learnt by probing.
    ``RegistrationThrottled`` (before the token is compared) when ``source`` has spent
    its wrong-token budget, or when the id has and ``source`` already guessed it (see
    the module docstring). A wrong token for an expected device is counted on the
    registration and audited (that commits although the call is refused).
    """
    guessing = _Guessing.of(tenant_slug, external_id, source)
    refusal = ratelimit.check(guessing.address)  # reserved now, given back if the token is right
    if refusal is not None:
        raise RegistrationThrottled(refusal)
    with transaction.atomic():
        # The row lock makes concurrent calls for one registration take turns.
        with cross_tenant("device.registration"):
            registration = (
                DeviceRegistration.objects.select_for_update(of=("self",))
                .select_related("tenant")
                .filter(tenant__slug=tenant_slug, tenant__status=Tenant.Status.ACTIVE, external_id=external_id)
                .filter(status__in=DeviceRegistration.OPEN)
                .first()
            )
        if registration is not None:
            enter_tenant(registration.tenant_id)
        spent = guessing.spent()
        if spent is not None and guessing.guessed_here():
            ratelimit.refund(guessing.address)
            raise RegistrationThrottled(spent)
        if registration is not None and secret_digest(registration_token or "") == registration.token_digest:
            ratelimit.refund(guessing.address)
            if registration.tenant.maintenance:
                # Only now, after the token: an unproven caller learns nothing about the tenant.
                raise RegistrationPaused
            return _complete(registration)
        newly_spent = guessing.wrong() and spent is None
        if registration is not None:
            _count_failure(registration, source, throttled=newly_spent)
    raise RegistrationRefused


def _complete(registration: DeviceRegistration) -> RegistrationAnswer:
    tenant = registration.tenant
    if registration.status == DeviceRegistration.Status.PENDING:
        if not tenant.auto_accept_registrations:
            return RegistrationAnswer(pending=True)
        registration.status, registration.accepted_at = DeviceRegistration.Status.ACCEPTED, timezone.now()
        audit.record(
            "registration.auto_accept",
            tenant=tenant,
            target=registration,
            actor_kind=ActorKind.SYSTEM,
            actor_label="system (the tenant's auto-accept policy)",
        )
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
    audit.record(
        "device.credential_issue",
        tenant=tenant,
        target=device,
        data={"registration": registration.pk},
        **_registering(registration),
    )
    return RegistrationAnswer(pending=False, device=device, credential=credential)


def _count_failure(registration: DeviceRegistration, source: str, *, throttled: bool) -> None:
    registration.failed_attempts += 1
    registration.last_failed_at = timezone.now()
    registration.save(update_fields=["failed_attempts", "last_failed_at"])
    data = {"failed_attempts": registration.failed_attempts, "source": source}
    # Whoever sent it is unknown; it claimed to be this device.
    claimed = {"actor_kind": ActorKind.ANONYMOUS, "actor_label": f"unknown caller claiming {registration.external_id}"}
    audit.record("registration.wrong_token", tenant=registration.tenant_id, target=registration, data=data, **claimed)
    if throttled:
        # Once per exhausted window: the calls refused while throttled are not each recorded.
        audit.record("registration.throttled", tenant=registration.tenant_id, target=registration, data=data, **claimed)


def _registering(registration: DeviceRegistration) -> dict[str, str]:
    """The audit actor of a registration call: the device, named by the id it proved with its token."""
    return {"actor_kind": ActorKind.DEVICE, "actor_label": f"device {registration.external_id} (registering)"}


def registrations_under_guessing(user: Any) -> QuerySet[DeviceRegistration]:
    """Open registrations the caller administers that received wrong tokens lately (a cockpit notice)."""
    since = timezone.now() - GUESS_NOTICE_WINDOW
    return (
        DeviceRegistration.objects.restrict(user, Action.CHANGE)
        .filter(status__in=DeviceRegistration.OPEN, last_failed_at__gte=since)
        .order_by("-last_failed_at")
    )

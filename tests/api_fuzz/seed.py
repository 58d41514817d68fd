"""A populated tenant for the schemathesis passes, made through the real services.

Every API operation needs rows to act on, or the fuzzer only ever sees 404s and the
happy paths stay untested: groups in a tree with rights granted, types, devices with
measurements, events and alarms sent through the device API, operations, pending and
accepted registrations, a custom role, users of each built-in kind, tokens and a support
grant. The tenant's rate limits are far above what a few minutes of fuzzing reach, so
the fuzzer is not throttled while the limiter still runs on every request.

Every name carries the tenant's slug, so a human reading a failure sees at once whose
row it is; the isolation check itself goes by ids (see ``hooks.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEntry
from devices.models import Alarm, DeviceRegistration, Event, Measurement
from devices.services import do_create_device_group
from devices.services.registration import do_create_registration
from devices.services.registry import do_create_device_type, do_create_operation, do_update_device
from firmware import selectors, signing
from firmware.models import FirmwareImage, Rollout, SigningKey
from firmware.services import (
    do_add_signing_key,
    do_create_rollout,
    do_plan_rollout,
    do_release_firmware_image,
    do_upload_firmware_image,
)
from firmware.services.rollouts import run_planning
from notifications.services import do_create_notification_rule
from tenants.models import ApiToken, Role, Tenant, User
from tenants.services import (
    builtin_role,
    do_create_api_token,
    do_create_role,
    do_create_support_grant,
    do_create_user,
    do_update_tenant_policy,
)
from tests.factories import device_client, grant, make_device, make_group, make_tenant

# Far above what one fuzz pass sends (a few thousand requests in a few minutes), so no
# request is refused for its rate, while the limiter still runs as in production.
UNLIMITED = {"second": "100000000/s", "minute": "6000000000/min"}
FUZZ_RATE_LIMITS = dict.fromkeys(("device", "tenant_devices", "token", "tenant_api"), UNLIMITED)


@dataclass
class SeededTenant:
    """What a fuzz pass needs to know about a seeded tenant."""

    slug: str
    #: the administrator's write token, the one the fuzzer sends
    token: str
    token_id: int
    #: ids of the tenant's rows, by the API collection that serves them (``devices``, ``users``…)
    ids: dict[str, list[int]] = field(default_factory=dict)
    #: the credential of a device with a pending operation, for the device API's pass
    device_credential: str = ""


def _user(tenant: Tenant, role: Role, email: str) -> User:
    """A user without a password: API tokens need none, and hashing one costs most of a second."""
    return do_create_user(email=email, role=role, actor=None, tenant=tenant)


def _send(credential: str, path: str, payload: Any) -> None:
    """One device message through the real device API (validation, storage, alarm logic)."""
    response = device_client(credential).post(
        f"/api/device/v1/{path}", json.dumps(payload), content_type="application/json"
    )
    assert response.status_code == 201, response.content


def seed_tenant(slug: str) -> SeededTenant:
    """A customer tenant with some of everything the user API serves; see the module docstring."""
    prefix = slug.upper()
    tenant = make_tenant(slug)
    tenant = do_update_tenant_policy(tenant, {"rate_limits": FUZZ_RATE_LIMITS})
    admin = _user(tenant, builtin_role(tenant, Role.Kind.ADMINISTRATOR), f"admin@{slug}.test")
    token, secret = do_create_api_token(user=admin, name=f"{prefix} fuzz token", scope=ApiToken.Scope.WRITE, actor=None)

    site = make_group(tenant, f"{prefix} site")
    # A tree, so the parent field and its checks have something to show.
    plant = do_create_device_group(name=f"{prefix} plant", parent=site, actor=None, tenant=tenant)
    lab = make_group(tenant, f"{prefix} lab")
    sensor = do_create_device_type(manufacturer=f"{prefix} Sensors", model="T-100", actor=None, tenant=tenant)
    gateway = do_create_device_type(
        manufacturer=f"{prefix} Gateways", model="G-7", certified=True, actor=None, tenant=tenant
    )

    custom = do_create_role(name=f"{prefix} field service", rights=["view", "change"], actor=None, tenant=tenant)
    standard = _user(tenant, builtin_role(tenant, Role.Kind.STANDARD), f"standard@{slug}.test")
    _user(tenant, builtin_role(tenant, Role.Kind.BUSINESS), f"business@{slug}.test")
    _user(tenant, custom, f"technician@{slug}.test")
    grant(site, ["view", "change"], user=standard)
    grant(plant, ["view"], role=custom)
    do_create_api_token(user=standard, name=f"{prefix} standard token", actor=None)

    devices, credentials = [], []
    for n, (group, device_type) in enumerate([(site, sensor), (plant, sensor), (lab, gateway), (None, None)]):
        device, credential = make_device(tenant, group=group, external_id=f"{prefix}-SN-{n:04d}")
        credentials.append(credential)
        if device_type is not None:
            device = do_update_device(device, {"type": device_type, "name": f"{prefix} device {n}"}, actor=None)
        _send(credential, "measurements", {"type": f"{prefix}_Temperature", "series": "T", "value": 20.5 + n})
        _send(credential, "events", {"type": f"{prefix}_boot", "text": f"{prefix} started"})
        _send(credential, "alarms", {"type": f"{prefix}_overheat", "severity": "MAJOR", "text": f"{prefix} hot"})
        devices.append(device)
    operations = [
        do_create_operation(devices[0], kind="restart", parameters={}, actor=admin),
        do_create_operation(devices[1], kind="configure", parameters={"interval": 60}, actor=admin),
    ]
    for n in range(2):  # pending, next to the accepted ones of the devices above
        do_create_registration(external_id=f"{prefix}-EXP-{n}", group=lab, actor=None, tenant=tenant)
    _seed_firmware(tenant, prefix, [sensor, gateway])
    support, _link = do_create_support_grant(
        duration_hours=24, actor=admin, reason=f"{prefix}-TICKET-1 gateway offline", scope="read"
    )
    rule, _secret = do_create_notification_rule(
        actor=admin, channel="email", name=f"{prefix} on call", severities=["MAJOR"], recipient_roles=["administrator"]
    )

    # Every row of the tenant, by the API collection that serves it: the other pass's
    # isolation check knows a leak by these ids (sequences are per table, shared by all
    # tenants, so another tenant's row never has one of them).
    return SeededTenant(
        slug=slug,
        token=secret,
        token_id=token.pk,
        device_credential=credentials[0],
        ids={
            "users": _ids(User.objects.filter(tenant=tenant)),
            "roles": _ids(Role.objects.filter(tenant=tenant)),
            "tokens": _ids(ApiToken.objects.filter(user__tenant=tenant)),
            "device-groups": [site.pk, plant.pk, lab.pk],
            "device-types": [sensor.pk, gateway.pk],
            "devices": [device.pk for device in devices],
            "registrations": _ids(DeviceRegistration.objects.filter(tenant=tenant)),  # pending and accepted
            "alarms": _ids(Alarm.objects.filter(tenant_id=tenant.pk)),
            "operations": [operation.pk for operation in operations],
            "support-grants": [support.pk],
            "notification-rules": [rule.pk],
            "measurements": _ids(Measurement.objects.filter(tenant_id=tenant.pk)),
            "events": _ids(Event.objects.filter(tenant_id=tenant.pk)),
            "audit": _ids(AuditEntry.objects.filter(tenant=tenant)),
            "firmware": _ids(FirmwareImage.objects.filter(tenant=tenant)),
            "firmware-keys": _ids(SigningKey.objects.filter(tenant=tenant)),
            "rollouts": _ids(Rollout.objects.filter(tenant=tenant)),
        },
    )


def _seed_firmware(tenant: Tenant, prefix: str, device_types: list[Any]) -> None:
    """A signing key, a draft and a released image signed by that key; a draft and a planned rollout of it."""
    private, public = signing.generate_key()
    key = do_add_signing_key(name=f"{prefix} release key", public_key=public, actor=None, tenant=tenant)
    images = []
    for version in ("1.0.0", "1.1.0"):
        content = f"{prefix} firmware {version}".encode()
        images.append(
            do_upload_firmware_image(
                file=SimpleUploadedFile("fw.bin", content),
                sha256=hashlib.sha256(content).hexdigest(),
                version=version,
                device_types=device_types,
                actor=None,
                tenant=tenant,
            )
        )
    signature = signing.sign(private, selectors.manifest_for(images[1]))
    released = do_release_firmware_image(images[1], signature=signature, key_id=key.key_id, actor=None)
    for name in ("draft", "planned"):
        rollout = do_create_rollout(
            image=released,
            name=f"{prefix} {name} rollout",
            waves=[{"percent": 50}, {}],
            actor=None,
            tenant=tenant,
        )
        if name == "planned":
            do_plan_rollout(rollout, actor=None)
            run_planning(rollout.pk)  # the job's work, synchronously


def _ids(queryset: Any) -> list[int]:
    return sorted(queryset.values_list("pk", flat=True))

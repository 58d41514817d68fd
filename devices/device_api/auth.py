"""Device authentication: the credential names the device; nothing in the body can."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.db import connections, router
from django.http import HttpRequest

from audit.request_meta import is_trusted_proxy
from cot.database.scope import cross_tenant, enter_tenant
from cot.prepared import execute_prepared
from devices.models import Device
from tenants.models import Tenant
from tenants.tokens import secret_digest


class DeviceAuthError(Exception):
    """A refused device request: 401 for bad credentials, 403 for a known but barred device."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def authenticate_device(request: HttpRequest) -> Device:
    """The device whose credential the request carries; at most one indexed lookup."""
    keyword, _, secret = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    secret = secret.strip()
    if keyword != "Bearer" or not secret:
        raise DeviceAuthError("A device credential is required: 'Authorization: Bearer cot_dev_…'.")
    if not secret.startswith(settings.DEVICE_CREDENTIAL_PREFIX):
        # User tokens and anything else are refused before touching the database.
        raise DeviceAuthError("Invalid device credential.")
    with cross_tenant("device.credential"):
        device = device_by_digest(secret_digest(secret))
    if device is None:
        raise DeviceAuthError("Invalid device credential.")
    enter_tenant(device.tenant_id)
    if device.status != Device.Status.ACTIVE:
        raise DeviceAuthError(f"This device is {device.status}.", 403)
    if not device.tenant.is_active:
        raise DeviceAuthError("The device's organisation is suspended.", 403)
    if device.tenant.maintenance == Tenant.Maintenance.CLOSED:
        # Temporary: the device keeps its data and sends it again after Retry-After.
        raise DeviceAuthError("The device's organisation is closed for maintenance; try again later.", 503)
    if device.certificate_fingerprint:
        _check_certificate(request, device)
    return device


def _check_certificate(request: HttpRequest, device: Device) -> None:
    # The TLS terminator verifies the client certificate and forwards it (deploy/nginx.conf), always
    # overwriting whatever the client sent in that header; only a configured proxy is believed, or
    # anyone could present any certificate. The pinned fingerprint is public, so the certificate
    # itself is hashed here rather than trusting a fingerprint header.
    presented = None
    if is_trusted_proxy(request.META.get("REMOTE_ADDR", "")):
        presented = certificate_sha256(request.META.get(settings.DEVICE_CERT_HEADER, ""))
    if presented is None or presented != device.certificate_fingerprint.replace(":", "").strip().lower():
        raise DeviceAuthError("The client certificate does not match this device.")


_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"


def certificate_sha256(header: str) -> str | None:
    """The SHA-256 (lowercase hex) of the certificate in a proxy's client-certificate header, or None.

    The value is one URL-encoded PEM certificate, as nginx's ``$ssl_client_escaped_cert``. Anything
    else (empty, truncated, not base64, several certificates) is None, so it simply matches nothing.
    """
    # Plain unquote, not unquote_plus: a "+" is base64, never an encoded space.
    lines = [line.strip() for line in unquote(header).strip().splitlines()]
    if len(lines) < 3 or lines[0] != _PEM_BEGIN or lines[-1] != _PEM_END:
        return None
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None
    if not der:
        return None
    return hashlib.sha256(der).hexdigest()


# The columns the device API uses; anything else a view touches loads on access, as with
# ``.only()``. Fewer columns also spare decoding the device's free attributes (JSON) per request.
DEVICE_COLUMNS = (
    "id",
    "tenant_id",
    "external_id",
    "type_id",
    "group_id",  # the firmware poll checks the device is still in its rollout's groups
    "status",
    "last_seen_at",
    "certificate_fingerprint",
    "firmware_version",  # the firmware poll records a changed version without another query
)
TENANT_COLUMNS = ("id", "slug", "status", "rate_limits", "maintenance")


@dataclass(frozen=True)
class _Lookup:
    """The device-with-tenant query, as SQL plus what turns its row into model instances."""

    sql: str
    device_fields: list[str]
    tenant_fields: list[str]
    # Per column: the converters the ORM would apply (e.g. JSON decoding), and their expression.
    converters: list[tuple[list[Callable[..., Any]], Any]]


@lru_cache(maxsize=4)
def _lookup(alias: str) -> _Lookup:
    """``Device.objects.select_related("tenant").only(…).filter(credential_digest=…)``, compiled once per process.

    Compiling that queryset costs more CPU than everything else a small device request
    does, and its SQL never changes; so the statement is built once from the models'
    metadata, and each row is made into ``Device`` and ``Tenant`` exactly as the ORM does.
    """
    connection = connections[alias]
    quote = connection.ops.quote_name
    columns, converters, names = [], [], {}
    for model, table, wanted in ((Device, "d", DEVICE_COLUMNS), (Tenant, "t", TENANT_COLUMNS)):
        # Model field order, as Model.from_db expects for a subset of fields.
        fields = [field for field in model._meta.concrete_fields if field.attname in wanted]
        names[model] = [field.attname for field in fields]
        for field in fields:
            columns.append(f"{table}.{quote(field.column)}")
            col = field.get_col(table)
            converters.append((connection.ops.get_db_converters(col) + col.get_db_converters(connection), col))
    tenant_fk = Device._meta.get_field("tenant").column
    digest = Device._meta.get_field("credential_digest").column
    # Only quoted identifiers from model metadata go into the text; the digest is a parameter.
    join = f"t.{quote(Tenant._meta.pk.column)} = d.{quote(tenant_fk)}"
    tables = f"{quote(Device._meta.db_table)} d INNER JOIN {quote(Tenant._meta.db_table)} t ON {join}"
    sql = f"SELECT {', '.join(columns)} FROM {tables} WHERE d.{quote(digest)} = %s"  # noqa: S608
    return _Lookup(sql=sql, device_fields=names[Device], tenant_fields=names[Tenant], converters=converters)


def device_by_digest(digest: str) -> Device | None:
    """The device (with its tenant loaded) whose credential has this digest: one indexed query."""
    alias = router.db_for_read(Device)
    lookup = _lookup(alias)
    connection = connections[alias]
    rows = execute_prepared(connection, "cot_device_by_digest", lookup.sql, [digest])
    if not rows:
        return None
    (row,) = rows
    values = []
    for value, (functions, expression) in zip(row, lookup.converters, strict=True):
        for convert in functions:
            value = convert(value, expression, connection)
        values.append(value)
    split = len(lookup.device_fields)
    device = Device.from_db(alias, lookup.device_fields, values[:split])
    device.tenant = Tenant.from_db(alias, lookup.tenant_fields, values[split:])
    return device

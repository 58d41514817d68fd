"""Saving a set of field changes on a model instance, the one way every ``do_update_*`` does it.

The services that change a row's fields from a ``changes`` dict used to repeat one recipe
(diff, setattr, full_clean, save, audit), and one detail of it is a race fix that must not
get lost in a copy: the save names only the changed columns. A full-row save writes back
every column read a moment ago, so it would undo a concurrent write to a column the update
never touched: a tenant's suspension, a device's block, decommissioning or credential rotation.

Framework code: it may use ``tenants`` and ``audit``, never ``devices`` or ``firmware``, which
call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

import audit

if TYPE_CHECKING:
    from tenants.models import Tenant, User

M = TypeVar("M", bound=models.Model)


def changed_fields(instance: models.Model, changes: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for each change that alters ``instance``: the audit trail's diff.

    Read before the changes are applied; a change to the value a field already has is no
    change. Values are as the trail stores them (JSON): rows by primary key, times and
    decimals as text.
    """
    return {k: [_as_json(getattr(instance, k)), _as_json(v)] for k, v in changes.items() if getattr(instance, k) != v}


def _as_json(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _as_json(item) for key, item in value.items()}
    return _ENCODER.default(value)  # datetimes, dates, decimals, UUIDs; anything else raises


_ENCODER = DjangoJSONEncoder()


def save_changes(
    instance: M,
    changes: Mapping[str, Any],
    *,
    audit_event: str | None = None,
    tenant: Tenant | int | None = None,
    actor: User | None = None,
    validate_constraints: bool = True,
) -> M:
    """Apply ``changes`` to ``instance``, validate it, save only those columns; audit what changed.

    The caller has already done what differs between services: checked access, fetched (or
    locked) ``instance`` in the current transaction, refused fields it does not accept and
    normalised values. With ``audit_event``, the fields that really changed are recorded as
    that event in ``tenant``'s trail, and nothing is recorded when nothing changed. Without
    it the model's auditlog history keeps the diff, and no comparison is made (on a foreign
    key each one would cost a query). ``validate_constraints`` passes through to ``full_clean``
    for a caller that leaves the model's constraints to the database.
    """
    diff = changed_fields(instance, changes) if audit_event is not None else {}
    for key, value in changes.items():
        setattr(instance, key, value)
    instance.full_clean(validate_constraints=validate_constraints)
    # Only the changed columns: see the module docstring.
    instance.save(update_fields=list(changes))
    if audit_event is not None and diff:
        audit.record(audit_event, tenant=tenant, target=instance, changes=diff, actor=actor)
    return instance

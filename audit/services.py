"""Writing security events into the trail."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from audit.context import ActorKind
from audit.models import AuditEntry
from audit.signals import recorded


def record(
    event: str,
    *,
    tenant: Any,
    target: Any = None,
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    actor: Any = None,
    actor_label: str = "",
    actor_kind: str = "",
) -> AuditEntry:
    """Append one security event (``auth.login``, ``token.create``, …) to a tenant's trail.

    ``tenant`` is a ``Tenant``, its id, or ``None`` for platform events that belong to no
    tenant (a failed login for an unknown e-mail). The actor, source address and request
    id come from the audit context unless given. Call it inside the transaction of the
    change it describes, so both commit or neither does.
    """
    entry = AuditEntry(
        tenant_id=getattr(tenant, "pk", tenant),
        event=event,
        changes=changes,
        additional_data=data,
        actor=actor,
        actor_label=actor_label,
        actor_kind=actor_kind or ActorKind.SYSTEM,
    )
    if target is not None:
        entry.content_type = ContentType.objects.get_for_model(target)
        entry.object_pk = target.pk
        entry.object_id = target.pk if isinstance(target.pk, int) else None
        entry.object_repr = str(target)
    entry.save()
    if entry.tenant_id is not None:
        transaction.on_commit(partial(recorded.send, sender=AuditEntry, entry=entry))
    return entry

"""The audit trail: one tenant-scoped, append-only, hash-chained table.

It is django-auditlog's log entry model (``AUDITLOG_LOGENTRY_MODEL``), so model changes
and security events (``audit.record``) share one trail, one chain and one view.
"""

from __future__ import annotations

from typing import Any

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction

from audit.chain import GENESIS_HASH, entry_digest, lock_chain
from audit.context import ActorKind, current_actor, current_context
from cot.database.scope import cross_tenant, tenant_scope
from cot.prepared import execute_prepared
from tenants.querysets import TenantQuerySet


def tenant_id_of(instance: Any) -> int | None:
    """The tenant a model instance belongs to, following the model's ``tenant_lookup``."""
    from tenants.models import Tenant

    if isinstance(instance, Tenant):
        return instance.pk
    lookup = getattr(type(instance), "tenant_lookup", "tenant")
    *hops, last = lookup.split("__")
    obj = instance
    for hop in hops:
        obj = getattr(obj, hop, None)
    return getattr(obj, f"{last}_id", None) if obj is not None else None


MODEL_EVENTS = {
    AbstractLogEntry.Action.CREATE: "model.create",
    AbstractLogEntry.Action.UPDATE: "model.update",
    AbstractLogEntry.Action.DELETE: "model.delete",
    AbstractLogEntry.Action.ACCESS: "model.access",
}


class AuditEntryManager(LogEntryManager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    """auditlog's manager, with the tenant taken from the changed object."""

    def log_create(self, instance: Any, force_log: bool = False, **kwargs: Any) -> Any:
        if kwargs.get("action") == AbstractLogEntry.Action.CREATE and hasattr(type(instance), "audit_creation_event"):
            return None  # the service records the creation as its own event (e.g. "user.create")
        kwargs.setdefault("tenant_id", tenant_id_of(instance))
        kwargs.setdefault("event", MODEL_EVENTS.get(kwargs.get("action"), "model.change"))
        return super().log_create(instance, force_log=force_log, **kwargs)


class AuditEntry(AbstractLogEntry):
    """One audit event. Rows are never updated or deleted (a database trigger refuses it).

    ``entry_hash`` is an HMAC over this entry's content and the previous entry's hash in
    the same tenant's chain, so ``verify_audit`` finds any row changed, inserted or
    removed behind the application's back.
    """

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    event = models.CharField(max_length=64, db_index=True)
    actor_kind = models.CharField(max_length=16, default=ActorKind.SYSTEM)
    actor_label = models.CharField(max_length=255, blank=True)
    # Overrides of auditlog's fields: security events need no object, and the trail must
    # never lose a row because an actor or content type went away.
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    action = models.PositiveSmallIntegerField(
        choices=AbstractLogEntry.Action.choices, null=True, blank=True, db_index=True
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    support_grant_id = models.BigIntegerField(null=True, blank=True, db_index=True, editable=False)
    seq = models.BigIntegerField(editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    entry_hash = models.CharField(max_length=64, editable=False)

    objects = AuditEntryManager()

    class Meta(AbstractLogEntry.Meta):
        ordering = ["-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="audit_chain_position", nulls_distinct=False),
        ]
        indexes = [models.Index(fields=["tenant", "-timestamp"], name="audit_tenant_time")]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.event} {self.object_repr}".strip()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Audit entries are append-only.")
        self._fill_from_context()
        self.object_pk = str(self.object_pk)  # auditlog passes ints; the database returns text
        # No savepoint: an entry that cannot be written must undo the change it describes,
        # so its error ends the caller's transaction too (and two round trips are saved).
        # The entry goes to its tenant's chain whoever writes it (an operator, a support
        # engineer, a job): the append runs in that chain's scope, the platform's on its path.
        with chain_scope(self.tenant_id), transaction.atomic(savepoint=False):
            lock_chain(self.tenant_id)
            self.seq, self.prev_hash = _chain_head(self.tenant_id)
            self.entry_hash = entry_digest(self)
            super().save(*args, **kwargs)

    def _fill_from_context(self) -> None:
        actor = current_actor()
        if self.actor_id is None and actor.user is not None:
            self.actor = actor.user
        if not self.actor_label:
            if self.actor is not None and (actor.user is None or actor.user.pk != self.actor.pk):
                # Someone other than the request's caller is named as actor explicitly.
                self.actor_kind, self.actor_label = ActorKind.USER, self.actor.email
            else:
                self.actor_kind, self.actor_label = actor.kind, actor.label
                if actor.support_grant_tenant_id == self.tenant_id:
                    # An engineer's own events (logout, password) go to the provider's chain,
                    # which must not name a customer's grant (check_isolation would rightly flag it).
                    self.support_grant_id = actor.support_grant_id
        if self.actor is not None:
            self.actor_email = self.actor.email
        ctx = current_context()
        if ctx is not None:
            self.remote_addr = self.remote_addr or ctx.source
            self.cid = self.cid or ctx.request_id


def chain_scope(tenant_id: int | None) -> Any:
    """The scope that reads and appends ``tenant_id``'s chain (the platform's: every tenant's path)."""
    return cross_tenant("audit.platform_chain") if tenant_id is None else tenant_scope(tenant_id)


_TABLE = connection.ops.quote_name(AuditEntry._meta.db_table)
# Both index columns in the ORDER BY: after "tenant_id IS NULL" (the platform chain)
# PostgreSQL would otherwise sort the whole chain instead of reading the index backwards.
_HEAD = "SELECT seq, entry_hash FROM {table} WHERE {chain} ORDER BY tenant_id DESC, seq DESC LIMIT 1"
_TENANT_HEAD = _HEAD.format(table=_TABLE, chain="tenant_id = %s")
_PLATFORM_HEAD = _HEAD.format(table=_TABLE, chain="tenant_id IS NULL")


def _chain_head(tenant_id: int | None) -> tuple[int, str]:
    """The next entry's position in the tenant's chain and the hash it links to.

    A prepared statement: the table's many indexes make planning this one-row read cost
    more than running it, on every entry appended.
    """
    if tenant_id is None:
        rows = execute_prepared(connection, "cot_audit_platform_head", _PLATFORM_HEAD, [])
    else:
        rows = execute_prepared(connection, "cot_audit_tenant_head", _TENANT_HEAD, [tenant_id])
    if not rows:
        return 1, GENESIS_HASH
    seq, entry_hash = rows[0]
    return seq + 1, entry_hash

"""Finding rows that tie one tenant to another (``manage.py check_isolation``, a beat job).

The access layer keeps tenants apart on every path the code has; this looks for what got
past it anyway (a raw write, a bug, a half-applied migration): a row of one tenant that
points at another tenant's row. Two kinds of checks:

- **derived from the models**: every foreign key from a tenant-scoped model (one with its
  own ``tenant`` column) to another tenant-scoped model must stay inside the row's tenant.
  One exception: a reference to a user of the provider tenant (platform support and
  operators act inside customer tenants through grants, and the trail names them);
- **registered by apps** (``register`` / ``register_finder``, from ``ready()``) for ties the
  models do not state: guardian's permission tables, role memberships, payload rows in the
  telemetry database, grant ids stored as plain numbers.

Each check is one set-based query (the telemetry one a few, in batches); each returns at
most ``limit`` rows, so a flood of findings stays readable and bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from itertools import islice
from typing import Any

from django.apps import apps
from django.db import connections
from django.db.models import Model

#: findings reported per check at most; a check that finds more says so (``Result.truncated``)
LIMIT = 1000


@dataclass(frozen=True)
class Finding:
    """One row of ``tenant`` that points at ``other_tenant``'s data."""

    check: str
    table: str
    row: str
    tenant: int | None
    other_tenant: int | None

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON-safe values (for the audit entry and ``--json``)."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.table} row {self.row} (tenant {self.tenant}) points at tenant {self.other_tenant} [{self.check}]"


@dataclass(frozen=True)
class Check:
    """A query returning ``(row id, tenant id, other tenant id)`` for each tie across tenants."""

    name: str
    table: str
    sql: str
    alias: str = "default"
    #: for a check derived from a foreign key: its column and the table it references
    column: str = ""
    references: str = ""

    def run(self, limit: int) -> list[Finding]:
        """At most ``limit`` findings of this check."""
        with connections[self.alias].cursor() as cursor:
            cursor.execute(f"{self.sql} ORDER BY 1 LIMIT %s", [limit])
            return [Finding(self.name, self.table, str(row), tenant, other) for row, tenant, other in cursor.fetchall()]


#: a finder yields findings by other means than one query (across databases); the runner reads it up to its limit
Finder = Callable[[], Iterable[Finding]]
_CHECKS: dict[str, Check] = {}
_FINDERS: dict[str, Finder] = {}


def register(check: Check) -> None:
    """Add an app's own check (idempotent for the same check; a different one under a taken name is refused)."""
    if _CHECKS.get(check.name, check) != check:
        raise ValueError(f"Another isolation check is registered as {check.name!r}.")
    _CHECKS[check.name] = check


def register_finder(name: str, finder: Finder) -> None:
    """Add a finder, for ties that one query cannot see (e.g. across the two databases)."""
    if _FINDERS.get(name, finder) is not finder:
        raise ValueError(f"Another isolation finder is registered as {name!r}.")
    _FINDERS[name] = finder


def _tenant_scoped(model: type[Model]) -> bool:
    field = next((f for f in model._meta.concrete_fields if f.name == "tenant"), None)
    target = field.related_model if field is not None else None
    return isinstance(target, type) and target._meta.label == "tenants.Tenant"


# A row whose referenced row is another tenant's (names from the models, quoted).
_DERIVED = (
    "SELECT child.{pk}, child.tenant_id, parent.tenant_id FROM {child} AS child JOIN {parent} AS parent "
    "ON parent.{parent_pk} = child.{column} WHERE parent.tenant_id IS DISTINCT FROM child.tenant_id"
)


def derived_checks() -> list[Check]:
    """One check per foreign key between two tenant-scoped models, from the installed models."""
    user = apps.get_model("tenants", "User")
    tenant_table = apps.get_model("tenants", "Tenant")._meta.db_table
    quote = connections["default"].ops.quote_name
    checks = []
    for model in apps.get_models():
        if not _tenant_scoped(model):
            continue
        for field in model._meta.concrete_fields:
            target = field.related_model if field.many_to_one or field.one_to_one else None
            if field.name == "tenant" or not isinstance(target, type) or not _tenant_scoped(target):
                continue
            sql = _DERIVED.format(
                pk=quote(model._meta.pk.column),
                child=quote(model._meta.db_table),
                parent=quote(target._meta.db_table),
                parent_pk=quote(target._meta.pk.column),
                column=quote(field.column),
            )
            if target is user:
                sql += (
                    f" AND NOT EXISTS (SELECT FROM {quote(tenant_table)} AS staff"
                    " WHERE staff.id = parent.tenant_id AND staff.kind = 'provider')"
                )
            table = model._meta.db_table
            checks.append(
                Check(f"{table}.{field.name}", table, sql, column=field.column, references=target._meta.db_table)
            )
    return checks


def all_checks() -> list[Check]:
    """The derived checks and the registered ones, by name."""
    return sorted([*derived_checks(), *_CHECKS.values()], key=lambda check: check.name)


@dataclass(frozen=True)
class Result:
    """What one run found: the findings (at most ``LIMIT`` per check) and which checks had more."""

    findings: list[Finding]
    truncated: list[str]
    checks: int

    @property
    def clean(self) -> bool:
        """No tie across tenants was found."""
        return not self.findings


def find_cross_tenant_rows(limit: int = LIMIT) -> Result:
    """Run every check and finder; reads only."""
    runs: list[tuple[str, Callable[[], Iterable[Finding]]]] = [
        *((check.name, partial(check.run, limit + 1)) for check in all_checks()),
        *sorted(_FINDERS.items()),
    ]
    findings: list[Finding] = []
    truncated: list[str] = []
    for name, run in runs:
        found = list(islice(run(), limit + 1))
        findings += found[:limit]
        if len(found) > limit:
            truncated.append(name)
    return Result(findings, truncated, len(runs))


def register_tenants_checks() -> None:
    """The tenants app's ties the models do not state (called from ``TenantsConfig.ready``)."""
    register(
        Check(
            "tenants_user_groups.role",
            "tenants_user_groups",
            # A user's role membership is mirrored in a Django group; the group's role is another tenant's.
            "SELECT membership.id, member.tenant_id, role.tenant_id FROM tenants_user_groups AS membership "
            "JOIN tenants_user AS member ON member.id = membership.user_id "
            "JOIN tenants_role AS role ON role.group_id = membership.group_id "
            "WHERE role.tenant_id <> member.tenant_id",
        )
    )
    register(
        Check(
            "audit_auditentry.support_grant",
            "audit_auditentry",
            # Entries name the grant they were made under by id; it must be the entry's tenant's grant.
            "SELECT entry.id, entry.tenant_id, grant_.tenant_id FROM audit_auditentry AS entry "
            "JOIN tenants_supportgrant AS grant_ ON grant_.id = entry.support_grant_id "
            "WHERE grant_.tenant_id IS DISTINCT FROM entry.tenant_id",
        )
    )

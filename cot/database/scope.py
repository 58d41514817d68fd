"""Which tenant's rows a statement may see: the input of PostgreSQL's row-level security.

Every tenant table carries a policy (``cot.database.rls``) that lets a statement see and
write only rows whose tenant is the one in the transaction-local setting
``cot.tenant_id``; with no tenant set it sees no rows at all. The application decides the
tenant where it becomes known (``enter_tenant``: the session's user, the API token, the
device credential, the support grant) and every statement sent on either database carries
it: ``ScopedCursor`` prefixes the statement with ``SET LOCAL cot.tenant_id = '…';`` in the
same round trip. ``SET LOCAL`` lasts until the end of the
transaction, which for an autocommit statement is the statement itself, so nothing
survives into the next request on a persistent (or pooled) connection, and inside
``transaction.atomic`` every statement sets the value again.

Why a contextvar and a cursor, not middleware issuing ``SET``: middleware runs outside any
transaction (cot has no ``ATOMIC_REQUESTS``, see docs/security.md), so a ``SET LOCAL``
there would end with its own statement, and a session-wide ``SET`` would outlive a request
that fails before its ``RESET``.

Code that must span tenants (authentication lookups before the tenant is known, operators'
tenant list, beat jobs, the audit checkpoint) says so with ``cross_tenant(path)``; the
paths are listed in ``CROSS_TENANT_PATHS`` below, the one place to review them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from psycopg2.extensions import cursor as _DriverCursor

# "" = no tenant (no rows), "<id>" = that tenant, "*" = every tenant (a cross-tenant path),
# "<id>+tenants" = that tenant, and every tenant's own row in tenants_tenant (operators).
ALL_TENANTS = "*"
_OPERATOR_SUFFIX = "+tenants"
_SCOPE: ContextVar[str] = ContextVar("cot_tenant_scope", default="")
_IN_REQUEST: ContextVar[bool] = ContextVar("cot_in_request", default=False)

# Every code path that reads or writes more than one tenant's rows, and why it must.
CROSS_TENANT_PATHS: dict[str, str] = {
    "auth.login": "The e-mail of a login names the user, and so the tenant (tenants/auth_backends.py).",
    "auth.session": "A session names its user by id; the user's row names the tenant.",
    "auth.failed_login": "A failed login is audited in the tenant of the e-mail it named, if any.",
    "auth.pending_login": "The second login step reads the user of the first by id.",
    "api.token": "An API token is looked up by its digest; its user names the tenant.",
    "device.credential": "A device request names its device by credential digest only.",
    "device.registration": "A registration names its tenant by slug; the row is read before the tenant is set.",
    "support.link": "A support engineer opens a customer's grant by its link (tenants/services/support.py).",
    "support.session": "An engineer's session names the grant (in the customer's tenant) by id.",
    "users.email_taken": "E-mail addresses are unique across tenants (logins name no tenant).",
    "firmware.blob_in_use": "Firmware bytes are stored once per hash, shared by tenants that upload the same image.",
    "jobs.beat": "Periodic jobs find their work in every tenant (docs/operations.md, 'Periodic jobs').",
    "jobs.task": "A queued task names its row by id; the row names the tenant.",
    "audit.platform_chain": (
        "Events of no tenant (logins of unknown e-mails, isolation checks) form the platform chain;"
        " operators read its newest isolation check."
    ),
    "audit.verify": "Checkpoints and verification read every tenant's chain.",
    "isolation.check": "The isolation check looks for rows that tie two tenants together.",
    "commands": "Operators' management commands (create_tenant, create_user, bootstrap_demo, …).",
}


class ScopeError(RuntimeError):
    """A cross-tenant path that is not listed, or a tenant that is no id."""


def current_scope() -> str:
    """The setting statements carry now ("" when no tenant is set)."""
    return _SCOPE.get()


def _tenant_value(tenant_id: int, operator: bool = False) -> str:
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, int) or tenant_id <= 0:
        raise ScopeError(f"Not a tenant id: {tenant_id!r}")
    return f"{tenant_id}{_OPERATOR_SUFFIX}" if operator else str(tenant_id)


def enter_tenant(tenant_id: int, *, operator: bool = False) -> None:
    """From here to the end of the request (``request_scope``), statements see ``tenant_id``'s rows only.

    ``operator``: the provider's operators also see every tenant's own row (the tenant
    list), and nothing else of other tenants. Outside a request (jobs, commands, a test's
    own code) this does nothing: there the scope is a block (``tenant_scope``).
    """
    value = _tenant_value(tenant_id, operator)
    if _IN_REQUEST.get():
        _SCOPE.set(value)


@contextmanager
def tenant_scope(tenant_id: int) -> Iterator[None]:
    """Statements inside the block see ``tenant_id``'s rows only."""
    token = _SCOPE.set(_tenant_value(tenant_id))
    try:
        yield
    finally:
        _SCOPE.reset(token)


@contextmanager
def cross_tenant(path: str) -> Iterator[None]:
    """Statements inside the block see every tenant's rows: only for a path in ``CROSS_TENANT_PATHS``."""
    if path not in CROSS_TENANT_PATHS:
        raise ScopeError(f"{path!r} is not a listed cross-tenant path (cot/database/scope.py).")
    token = _SCOPE.set(ALL_TENANTS)
    try:
        yield
    finally:
        _SCOPE.reset(token)


@contextmanager
def request_scope() -> Iterator[None]:
    """A request starts with no tenant; whatever it entered ends with it (``enter_tenant``)."""
    token, in_request = _SCOPE.set(""), _IN_REQUEST.set(True)
    try:
        yield
    finally:
        _IN_REQUEST.reset(in_request)
        _SCOPE.reset(token)


def run_in_scope(scope: str, function: Any, *args: Any) -> Any:
    """Call ``function`` with the scope ``scope`` (a value of ``current_scope()``, e.g. taken into a generator)."""
    if not _SCOPE_VALUE.fullmatch(scope):
        raise ScopeError(f"Not a scope: {scope!r}")
    token = _SCOPE.set(scope)
    try:
        return function(*args)
    finally:
        _SCOPE.reset(token)


# Every statement carries the scope, except those that touch no rows and must go alone:
# transaction control (a failed transaction accepts nothing but its ROLLBACK, so a
# prefixed one would fail again), settings, and statements PostgreSQL refuses inside a
# transaction block, which two statements in one message are (VACUUM, CREATE DATABASE,
# CREATE INDEX CONCURRENTLY, …). Leading comments are skipped first; anything not listed
# (a new kind of statement included) gets the scope, so a mistake here fails closed.
_COMMENTS = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_ALONE = re.compile(
    r"(?:BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION|SET|RESET"
    r"|DISCARD|VACUUM|CHECKPOINT|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|(?:CREATE|DROP)\s+TABLESPACE)\b"
    r"|(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX|REFRESH\s+MATERIALIZED\s+VIEW)\b[^;]*\bCONCURRENTLY\b",
    re.IGNORECASE,
)
_SCOPE_VALUE = re.compile(r"(?:\*|[1-9][0-9]*(?:\+tenants)?)?")


def _alone(text: str) -> bool:
    return _ALONE.match(text, _COMMENTS.match(text).end()) is not None  # type: ignore[union-attr]


_PREFIX = re.compile(r"^SET LOCAL cot\.tenant_id = '[^']*'; ")


def statement_of(sql: str) -> str:
    """``sql`` as the application wrote it, without the scope sent in front (for query logs and tests)."""
    return _PREFIX.sub("", sql, count=1)


def _prefix(scope: str) -> str:
    # The value is an int, "*" or "<int>+tenants" (checked on entry): safe to inline, and
    # inlining keeps the statement free of driver parameters (a literal % stays literal).
    # SET LOCAL, not SELECT set_config(…, true): the same, without a planned query and a
    # result row (a third of the cost on the device hot path's single-row statements).
    return f"SET LOCAL cot.tenant_id = '{scope}'; "


class ScopedCursor(_DriverCursor):
    """psycopg2's cursor, sending the current scope with every statement (both databases' ``cursor_factory``).

    Server-side (named) cursors and ``COPY`` send their statement alone, with the scope set
    for the session and reset right after; a holdable cursor (autocommit, Django's
    ``.iterator()`` outside ``atomic``) is filled when its statement commits. Inside a
    transaction a named cursor's rows are read at each ``FETCH``, so every fetch sets the
    scope of its ``DECLARE`` again first (statements in between may have set another).
    """

    def execute(self, query: Any, vars: Any = None) -> Any:
        text = _text(query, self)
        if _alone(text):
            return super().execute(query, vars)
        if self.name is None:
            return super().execute(_prefix(_SCOPE.get()) + text, vars)
        self._declared_scope = _SCOPE.get()
        return _with_session_scope(self.connection, partial(super().execute, query, vars))

    def _scope_for_fetch(self) -> None:
        if self.name is not None and not self.connection.autocommit:
            _set(self.connection, getattr(self, "_declared_scope", ""), local=True)

    def fetchone(self) -> Any:
        self._scope_for_fetch()
        return super().fetchone()

    def fetchmany(self, size: int | None = None) -> Any:
        self._scope_for_fetch()
        return super().fetchmany(self.arraysize if size is None else size)

    def fetchall(self) -> Any:
        self._scope_for_fetch()
        return super().fetchall()

    def __iter__(self) -> Iterator[Any]:
        if self.name is None:
            yield from super().__iter__()
            return
        while rows := self.fetchmany(self.itersize):
            yield from rows

    def executemany(self, query: Any, vars_list: Any) -> Any:
        return super().executemany(_prefix(_SCOPE.get()) + _text(query, self), vars_list)

    def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> Any:
        return _with_session_scope(self.connection, partial(super().copy_expert, sql, file, size))

    def copy_from(self, *args: Any, **kwargs: Any) -> Any:
        return _with_session_scope(self.connection, partial(super().copy_from, *args, **kwargs))

    def copy_to(self, *args: Any, **kwargs: Any) -> Any:
        return _with_session_scope(self.connection, partial(super().copy_to, *args, **kwargs))


def _text(query: Any, cursor: Any) -> str:
    if isinstance(query, bytes):
        return query.decode()
    if isinstance(query, str):
        return query
    return str(query.as_string(cursor))  # psycopg2.sql.Composable


def _with_session_scope(connection: Any, run: Callable[[], Any]) -> Any:
    """``run`` a statement that cannot carry the prefix, with the scope set around it.

    In a transaction the setting is transaction-local (the next statements set their own);
    in autocommit it is set for the session and reset at once, whatever happens.
    """
    autocommit = connection.autocommit
    _set(connection, _SCOPE.get(), local=not autocommit)
    try:
        return run()
    finally:
        if autocommit:
            _set(connection, "", local=False)


def _set(connection: Any, scope: str, *, local: bool) -> None:
    with _DriverCursor(connection) as setter:
        setter.execute("SELECT set_config('cot.tenant_id', %s, %s)", [scope, local])

"""The platform's own checks: deployment settings (``check --deploy``) and the startup checks.

Startup checks (tag ``STARTUP``) read the database; ``refuse_to_start_on_errors`` runs them
when a web or worker process starts, and ``manage.py check --tag startup --database
default --database telemetry`` runs them by hand. Apps register their own with the same tag.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor


@checks.register(checks.Tags.security, deploy=True)
def trusted_proxies_named(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Behind a reverse proxy, every client would otherwise share the proxy's address."""
    if settings.TRUSTED_PROXIES:
        return []
    return [
        checks.Warning(
            "COT_TRUSTED_PROXIES is empty: behind nginx (or any reverse proxy) every request seems to come from "
            "the proxy, so per-address limits (logins, device registration) apply to all clients at once and the "
            "audit trail records the proxy's address.",
            hint="Set COT_TRUSTED_PROXIES to the proxy's address, or silence cot.W001 if clients reach gunicorn "
            "directly.",
            id="cot.W001",
        )
    ]


#: checks that read the database and must pass before a web or worker process serves anything
STARTUP = "startup"
_MIGRATING: ContextVar[bool] = ContextVar("cot_migrating", default=False)


@contextmanager
def startup_checks_skipped() -> Iterator[None]:
    """Inside the block the startup checks pass: ``migrate`` runs the checks first, and must fix what they report."""
    token = _MIGRATING.set(True)
    try:
        yield
    finally:
        _MIGRATING.reset(token)


def startup_checks_apply(databases: Any) -> bool:
    """Whether a startup check should look: databases were named, and no migration is running."""
    return bool(databases) and not _MIGRATING.get()


@checks.register(STARTUP, checks.Tags.database)
def migrations_complete(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every migration of the code has run on each database: a half-migrated schema is no state to serve from."""
    problems: list[checks.CheckMessage] = []
    if not startup_checks_apply(databases):
        return problems
    for alias in databases:
        try:
            executor = MigrationExecutor(connections[alias])
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            problems.append(checks.Error(f"Cannot read the migrations of {alias!r}: {exc}", id="cot.E005"))
            continue
        if pending:
            names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in pending[:5])
            problems.append(
                checks.Error(
                    f"{len(pending)} migration(s) have not run on {alias!r} ({names}).",
                    hint=f"Run manage.py migrate{'' if alias == DEFAULT_DB_ALIAS else f' --database {alias}'} first.",
                    id="cot.E005",
                )
            )
    return problems


def refuse_to_start_on_errors() -> None:
    """Run the startup checks against both databases; raise ``ImproperlyConfigured`` naming every error.

    Called once by gunicorn's master before it starts workers (``on_starting`` in
    deploy/gunicorn.conf.py) and by each Celery worker as it starts (``cot/celery.py``):
    a server that would serve from a half-applied change stops instead.
    """
    messages = checks.run_checks(tags=[STARTUP], databases=list(settings.DATABASES))
    errors = [message for message in messages if message.is_serious()]
    if errors:
        raise ImproperlyConfigured(
            "cot refuses to start: "
            + " ".join(f"[{error.id}] {error.msg} {error.hint or ''}".strip() for error in errors)
        )

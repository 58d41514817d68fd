"""Shared fixtures: real PostgreSQL (both aliases) and real Redis, cleaned between tests."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections, transaction
from django.test import override_settings

from cot.database import scope
from cot.database.roles import CREDENTIALS, grant_to_application, owner_settings
from tests.factories import make_tenant, make_user
from tests.support.admin_isolation import applies

# Credentials per database alias: the application's (set aside while the test databases are
# created as the owner) and the owner's (set aside while the tests run).
_APPLICATION: dict[str, dict[str, Any]] = {}
_OWNER: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Create and migrate the test databases as the owner role, as deployments do (cot/database/roles.py).

    The tests themselves then connect as the application's role (``django_db_setup``),
    so they meet the same privileges as the running system.
    """
    for alias in connections:
        owner = owner_settings(alias)
        if owner is not None:
            settings_dict = connections[alias].settings_dict
            _APPLICATION[alias] = {key: settings_dict.get(key) for key in CREDENTIALS}
            settings_dict.update(owner)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Grant the application role its rights, then connect as it; the owner again to drop the databases.

    Transactional tests (live_server, e2e, ``transaction=True``) empty every table between
    tests with ``flush`` (as the owner, see cot/database/management/commands/flush.py);
    the append-only trigger refuses every TRUNCATE, so it is switched off on the test
    database's audit table. The row trigger refusing UPDATE and DELETE stays on.
    """
    with django_db_blocker.unblock():
        for alias in connections:
            conn = connections[alias]
            with conn.cursor() as cursor:
                if alias == "default":
                    cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_no_truncate")
                if alias in _APPLICATION:
                    grant_to_application(conn, _APPLICATION[alias]["USER"])
            conn.close()
            if alias in _APPLICATION:
                _OWNER[alias] = {key: conn.settings_dict.get(key) for key in CREDENTIALS}
                conn.settings_dict.update(_APPLICATION[alias])
    yield
    with django_db_blocker.unblock():
        for alias, owner in _OWNER.items():
            connections[alias].close()
            connections[alias].settings_dict.update(owner)


@pytest.fixture
def rows_past_the_constraints(db: Any) -> Iterator[None]:
    """For tests that forge rows the same-tenant constraints refuse (to test the access layer behind them).

    The constraints are checked at commit (cot/database/constraints.py), and Django checks
    them when a test ends; a test's transaction is rolled back anyway, so this ends it
    without that check. The rows never exist outside the test's transaction.
    """
    yield
    for alias in connections:
        if connections[alias].in_atomic_block:
            transaction.set_rollback(True, using=alias)


@pytest.fixture(autouse=True)
def firmware_dir(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """A fresh storage directory per test, so bytes stored once are counted per test."""
    directory = tmp_path / "firmware"
    storages = {
        **settings.STORAGES,
        "firmware": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(directory)}},
    }
    with override_settings(STORAGES=storages):
        yield directory


@pytest.fixture(autouse=True)
def _every_tenant_outside_requests() -> Iterator[None]:
    """A test's own statements (arranging and checking rows of several tenants) see every tenant.

    What the test sends through the client runs as in production: a request starts with no
    tenant and sees only the one its caller names (cot.database.middleware). Tests of the
    scope itself set their own (tests/cot/test_row_level_security.py).
    """
    token = scope._SCOPE.set(scope.ALL_TENANTS)
    yield
    scope._SCOPE.reset(token)


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    cache.clear()
    yield


@pytest.fixture
def acme(db: Any) -> Any:
    return make_tenant("acme")


@pytest.fixture
def globex(db: Any) -> Any:
    return make_tenant("globex")


@pytest.fixture
def provider(db: Any) -> Any:
    return make_tenant("platform", provider=True)


@pytest.fixture
def acme_admin(acme: Any) -> Any:
    return make_user(acme, "administrator", email="admin@acme.test")


@pytest.fixture
def globex_admin(globex: Any) -> Any:
    return make_user(globex, "administrator", email="admin@globex.test")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Collect only the admin isolation checks that apply to each admin (none are skipped at run time)."""
    kept: list[Any] = []
    dropped: list[Any] = []
    for item in items:
        (kept if applies(getattr(item, "cls", None), item.originalname) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept

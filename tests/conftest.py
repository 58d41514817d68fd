"""Shared fixtures: real PostgreSQL (both aliases) and real Redis, cleaned between tests."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import override_settings

from tests.factories import make_tenant, make_user
from tests.support.admin_isolation import applies


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Let test isolation empty the audit table in the test database only.

    The append-only trigger refuses every TRUNCATE, but transactional tests (live_server,
    e2e, ``transaction=True``) flush tables with TRUNCATE between tests. The tests connect
    as the table owner, so they switch off the statement trigger on their own test table;
    the row trigger refusing UPDATE and DELETE stays on.
    """
    with django_db_blocker.unblock():
        conn = connections["default"]
        with conn.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_no_truncate")
        conn.close()
    yield


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

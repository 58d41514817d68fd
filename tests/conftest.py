"""Shared fixtures: real PostgreSQL (both aliases) and real Redis, cleaned between tests."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connections

from tests.factories import make_tenant, make_user


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Let test isolation empty the audit table in the test database only.

    The append-only trigger refuses TRUNCATE unless ``cot.audit_allow_truncate`` is on;
    transactional tests flush tables between tests, so the test database turns it on.
    """
    with django_db_blocker.unblock():
        conn = connections["default"]
        with conn.cursor() as cursor:
            cursor.execute(f"ALTER DATABASE {conn.settings_dict['NAME']} SET cot.audit_allow_truncate = 'on'")
        conn.close()
    yield


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

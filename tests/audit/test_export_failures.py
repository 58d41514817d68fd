"""A failing export never looks like a successful one."""

from typing import Any

import pytest
from django.db import OperationalError
from django.db.models.query import QuerySet

import audit
from audit import export
from audit.models import AuditEntry
from tests.factories import api_client
from tests.support.cockpit import admin_url, cockpit_client

pytestmark = pytest.mark.django_db


def _trail_unreadable(monkeypatch: Any) -> None:
    original = QuerySet.iterator

    def iterator(self: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        if self.model is AuditEntry:
            raise OperationalError("canceling statement due to statement timeout")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "iterator", iterator)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_query_that_fails_answers_503_before_any_byte(acme: Any, acme_admin: Any, monkeypatch: Any, fmt: str) -> None:
    client = api_client(acme_admin)
    _trail_unreadable(monkeypatch)
    response = client.get("/api/v1/audit/export/", {"file_format": fmt})
    assert response.status_code == 503
    assert "nothing was sent" in response.json()["detail"]
    page = cockpit_client(acme_admin).get(admin_url(AuditEntry, "export", fmt))
    assert page.status_code == 503


def test_a_failure_mid_stream_breaks_the_download_instead_of_ending_it(
    acme: Any, acme_admin: Any, monkeypatch: Any
) -> None:
    for n in range(3):
        audit.record(f"test.{n}", tenant=acme)
    original, calls = export._row, []

    def failing_row(entry: Any) -> Any:
        calls.append(entry.pk)
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return original(entry)

    monkeypatch.setattr(export, "_row", failing_row)
    response: Any = api_client(acme_admin).get("/api/v1/audit/export/", {"file_format": "json"})
    assert response.status_code == 200  # the first entry was read before the answer started
    with pytest.raises(OperationalError):
        b"".join(response.streaming_content)  # the server aborts the connection: no closing "]"

"""Celery jobs run through the real Redis broker and write audit entries as the job."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import shared_task
from celery.contrib.testing.worker import start_worker
from django.contrib.sessions.models import Session
from django.utils import timezone

import audit
from audit.models import AuditEntry
from cot.celery import app
from cot.tasks import AuditedTask
from tenants.tasks import clear_expired_sessions

# The worker checks both databases when it starts (cot.celery, cot.checks).
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])


@shared_task(base=AuditedTask, name="tests.record_from_job")
def record_from_job(tenant_id: int) -> int:
    return int(audit.record("test.job", tenant=tenant_id).pk)


@pytest.fixture
def worker(transactional_db: Any) -> Iterator[None]:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


def test_expired_sessions_are_cleared_by_the_worker(worker):
    now = timezone.now()
    Session.objects.create(session_key="old", session_data="", expire_date=now - timedelta(days=1))
    Session.objects.create(session_key="new", session_data="", expire_date=now + timedelta(days=1))
    assert clear_expired_sessions.delay().get(timeout=30) == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == ["new"]


def test_job_entries_name_the_job_as_actor(worker):
    from tests.factories import make_tenant

    tenant = make_tenant()
    entry_id = record_from_job.delay(tenant.pk).get(timeout=30)
    entry = AuditEntry.objects.get(pk=entry_id)
    assert entry.actor_kind == "system"
    assert entry.actor_label == "job tests.record_from_job"

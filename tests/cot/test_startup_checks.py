"""Web and worker processes refuse to start on a half-migrated database or without the permissions rights need."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db.migrations.loader import MigrationLoader

from cot.celery import _refuse_to_work_on_errors
from cot.checks import STARTUP, refuse_to_start_on_errors
from tests.firmware.processes import database_url
from tests.support.owner import owner_cursor

ROOT = Path(__file__).resolve().parents[2]
ALIASES = ["default", "telemetry"]


def _errors() -> list[str]:
    return [f"{m.id} {m.msg}" for m in checks.run_checks(tags=[STARTUP], databases=ALIASES) if m.is_serious()]


@pytest.mark.django_db(databases=ALIASES)
def test_a_migrated_database_with_its_permissions_passes():
    assert _errors() == []
    refuse_to_start_on_errors()


@pytest.mark.django_db(databases=ALIASES)
def test_a_missing_permission_for_group_rights_stops_web_and_workers():
    Permission.objects.filter(content_type__app_label="devices", codename="change_devicegroup").delete()

    assert [error for error in _errors() if "cot.E006" in error and "change_devicegroup" in error]
    with pytest.raises(ImproperlyConfigured, match=r"cot refuses to start.*change_devicegroup"):
        refuse_to_start_on_errors()
    with pytest.raises(SystemExit, match="change_devicegroup"):
        _refuse_to_work_on_errors()


@pytest.mark.django_db(transaction=True, databases=ALIASES)
def test_a_migration_that_has_not_run_stops_the_web_server():
    # The newest migration of an app, as if the code were deployed before its migrate ran.
    (_, latest), *_ = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes("firmware")
    with owner_cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'firmware' AND name = %s RETURNING id, app, name, applied",
            [latest],
        )
        removed = cursor.fetchone()
    try:
        assert any("cot.E005" in error and f"firmware.{latest}" in error for error in _errors())
        env = {
            **os.environ,
            "DATABASE_URL": database_url("default"),
            "TELEMETRY_DATABASE_URL": database_url("telemetry"),
            "DJANGO_SETTINGS_MODULE": "cot.settings",
        }
        gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "cot.wsgi", "--config", "deploy/gunicorn.conf.py"]
        started = subprocess.run(  # noqa: S603 (our own server and config, fixed arguments)
            [*gunicorn, "--bind", "127.0.0.1:0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert started.returncode != 0  # the master stopped before starting any worker
        assert "cot refuses to start" in started.stderr
        assert "manage.py migrate" in started.stderr
    finally:
        with owner_cursor() as cursor:
            cursor.execute("INSERT INTO django_migrations (id, app, name, applied) VALUES (%s, %s, %s, %s)", removed)
    assert _errors() == []

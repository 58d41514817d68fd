"""The incident replay: a slow rights rewrite with a parallel error never shows a customer more than before.

A customer's Standard user polls the API and the cockpit while a data migration rewrites
roles and rights in steps (tests/support/incident.py). While it runs they get the
maintenance notice and nothing else; afterwards they see the whole change (it
completed) or exactly what they saw before (it failed and rolled back, or its process
was killed and an operator ended the maintenance).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction

from tenants.maintenance import maintenance_during
from tenants.models import Role, Tenant
from tenants.services import do_set_tenant_maintenance
from tests.factories import api_client, grant, make_group, make_user, verified_client
from tests.firmware.processes import database_url
from tests.support.incident import rewrite_in_steps

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])
ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60  # an upper bound for the rewrite to reach its pause; normally well under a second


@pytest.fixture
def scene(acme: Any) -> dict[str, Any]:
    groups = {name: make_group(acme, name) for name in ("Alpha", "Bravo", "Charlie")}
    user = make_user(acme, Role.Kind.STANDARD, email="standard@acme.test")
    grant(groups["Alpha"], ["view"], user=user)
    return {
        "tenant": acme,
        "user": user,
        "every": [group.pk for group in groups.values()],
        "dropped": [groups["Bravo"].pk],
        "api": api_client(user),
        "cockpit": verified_client(user),
    }


def _seen(scene: dict[str, Any]) -> tuple[tuple[int, set[str]], tuple[int, set[str]]]:
    """What the user gets from the API and the cockpit: (status, group names) each."""
    api = scene["api"].get("/api/v1/device-groups/")
    api_names = {row["name"] for row in api.json()["results"]} if api.status_code == 200 else set()
    page = scene["cockpit"].get("/cockpit/devices/devicegroup/")
    page_names = set(re.findall(r"Alpha|Bravo|Charlie", page.content.decode()))
    return (api.status_code, api_names), (page.status_code, page_names)


def _closed(seen: tuple[tuple[int, set[str]], tuple[int, set[str]]]) -> bool:
    return all(status == 503 and not names for status, names in seen)


def _run_in_thread(
    scene: dict[str, Any], *, fail: bool
) -> tuple[threading.Thread, threading.Event, threading.Event, list]:
    paused, proceed = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def pause() -> None:
        paused.set()
        assert proceed.wait(WAIT_SECONDS)

    def run() -> None:
        try:
            rewrite_in_steps(
                scene["tenant"].pk, scene["user"].pk, scene["every"], scene["dropped"], pause=pause, fail=fail
            )
        except Exception as exc:  # the test looks at it
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, paused, proceed, errors


@pytest.mark.parametrize("fail", [False, True], ids=["completes", "a-statement-fails"])
def test_during_the_rewrite_the_user_sees_only_the_notice_and_then_all_or_nothing(scene, fail):
    before = _seen(scene)
    assert before == ((200, {"Alpha"}), (200, {"Alpha"}))

    thread, paused, proceed, errors = _run_in_thread(scene, fail=fail)
    assert paused.wait(WAIT_SECONDS)
    during = _seen(scene)  # the role holds view on Bravo now, uncommitted
    proceed.set()
    thread.join(WAIT_SECONDS)

    assert _closed(during), during
    after = _seen(scene)
    if fail:
        assert errors and "division by zero" in str(errors[0])
        assert after == before
    else:
        assert errors == []
        assert after == ((200, {"Alpha", "Charlie"}), (200, {"Alpha", "Charlie"}))
    scene["tenant"].refresh_from_db()
    assert scene["tenant"].maintenance == Tenant.Maintenance.OFF


def test_a_killed_rewrite_leaves_the_tenant_closed_until_an_operator_opens_it(scene, provider):
    operator = make_user(provider, Role.Kind.OPERATOR, email="ops@platform.test")
    before = _seen(scene)
    code = (
        "import sys, django; django.setup(); "
        "from tests.support.incident import rewrite_in_steps; "
        f"rewrite_in_steps({scene['tenant'].pk}, {scene['user'].pk}, {scene['every']}, {scene['dropped']}, "
        "pause=lambda: (print('paused', flush=True), sys.stdin.readline()), fail=False)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cot.settings",
        "DATABASE_URL": database_url("default"),
        "TELEMETRY_DATABASE_URL": database_url("telemetry"),
    }
    process = subprocess.Popen(  # noqa: S603 (our own code, fixed arguments)
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "paused"
        assert _closed(_seen(scene))
        process.send_signal(signal.SIGKILL)  # the worker dies mid-change
        process.wait(WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()

    assert _closed(_seen(scene))  # fail closed: nobody finished the change, nobody opened the door
    do_set_tenant_maintenance(scene["tenant"], Tenant.Maintenance.OFF, actor=operator)
    assert _seen(scene) == before  # PostgreSQL rolled the half-change back


def test_running_the_change_again_after_a_crash_opens_the_tenant(scene):
    tenant = scene["tenant"]
    do_set_tenant_maintenance(tenant, Tenant.Maintenance.CLOSED, reason="rights move to roles")  # the dead run's
    with maintenance_during([tenant.pk], reason="rights move to roles"):
        pass
    tenant.refresh_from_db()
    assert tenant.maintenance == Tenant.Maintenance.OFF


def test_an_operators_change_during_the_rewrite_is_kept(scene, provider):
    operator = make_user(provider, Role.Kind.OPERATOR, email="ops@platform.test")
    tenant = scene["tenant"]
    with maintenance_during([tenant.pk], reason="rights move to roles"):
        do_set_tenant_maintenance(tenant, Tenant.Maintenance.READ_ONLY, reason="checking", actor=operator)
    tenant.refresh_from_db()
    assert (tenant.maintenance, tenant.maintenance_reason) == (Tenant.Maintenance.READ_ONLY, "checking")


def test_the_change_must_not_run_inside_a_transaction(scene):
    nested = maintenance_during([scene["tenant"].pk], reason="nested")
    with pytest.raises(RuntimeError, match="outside a transaction"), transaction.atomic(), nested:
        pass

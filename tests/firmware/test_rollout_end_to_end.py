"""A whole rollout, end to end: simulated devices over HTTP, a real Celery worker on Redis (issue 11, must show 1).

Everything runs as it does in production, in separate processes: the live server serves
the device API; ``manage.py simulate_devices`` processes (the real simulator) register the
devices and take the update (download with Range, sha256 and signature checks against a
key file, install, restart, report the version they boot); a ``celery worker`` process runs
the planning job and every engine tick, which the test sends as beat would (no engine
function is called in this process). The operator's actions (plan, start, retry, resume)
go through the services, as the cockpit and the API do.

The story: six sensors, a canary wave of three that holds a device booting back into its
old image and one whose installs fail (a bad flash, say). Both fail: two of three finished
canaries is over the wave's error threshold of 40 %, so the worker pauses the rollout and
mails the administrators. The operator fixes the flaky device (its simulator restarts
healthy), retries the failed ones and resumes: the old-image device fails again, which one
of three now allows; the canaries soak, the second wave follows by itself and the rollout
finishes with five devices on the new version, the stubborn one failed (booted_old_image)
and the counters equal to a recount. Nothing sleeps for a fixed time: every wait polls.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditEntry
from devices.models import Device
from devices.services.registration import do_create_registration
from devices.services.registry import do_create_device_type
from firmware.models import Rollout, RolloutTarget, RolloutWave
from firmware.services import (
    do_create_rollout,
    do_plan_rollout,
    do_resume_rollout,
    do_retry_failed_targets,
    do_start_rollout,
)
from firmware.tasks import evaluate_rollouts, sweep_rollout_timeouts
from tenants.services import do_update_tenant_policy
from tests.factories import make_tenant, make_user
from tests.firmware.processes import Process, Simulator, Worker, wait_for
from tests.firmware.rollout_scene import counters_exact, states
from tests.firmware.updates import signed_image

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])

TOKEN = "end-to-end-registration"
HEALTHY = [f"SIM-{n:04d}" for n in range(1, 5)]
DEADLINE = 40.0  # for each stage; the whole test takes some 15 s


def simulator(url: str, tmp_path: Path, prefix: str, count: int, keys: Path, *extra: str) -> Simulator:
    """``simulate_devices`` for PREFIX-0001…: rounds every 0.2 s, polling for firmware at least as often."""
    arguments = [
        *("--tenant", "e2e", "--prefix", prefix, "--count", str(count), "--url", url),
        *("--registration-token", TOKEN, "--interval", "0.2", "--max-poll-wait", "0.2"),
        *("--download-chunk", "1024", "--trusted-keys", str(keys)),
        *("--credentials", str(tmp_path / f"{prefix}.json")),
        *extra,
    ]
    return Simulator(tmp_path / f"simulator-{prefix}.log", *arguments)


def seed_with_canaries(rollout: Rollout, device_ids: list[int], canaries: set[int], size: int) -> None:
    """Give ``rollout`` a shuffle seed that puts ``canaries`` among the first ``size`` devices (the canary wave).

    The planner orders devices by ``md5(seed || ':' || id)`` (firmware.services.rollouts);
    the test picks the seed so that the story does not depend on chance.
    """
    for n in itertools.count():
        seed = f"e2e-{n}"
        order = sorted(device_ids, key=lambda pk: (hashlib.md5(f"{seed}:{pk}".encode()).hexdigest(), pk))  # noqa: S324
        if canaries <= set(order[:size]):
            Rollout.objects.filter(pk=rollout.pk).update(seed=seed)
            return


def drive(condition: Any, what: str, *watched: Process) -> Any:
    """Send engine ticks to the worker (as beat does) until ``condition`` holds; its value."""

    def ticked() -> Any:
        evaluate_rollouts.delay().get(timeout=DEADLINE)
        sweep_rollout_timeouts.delay().get(timeout=DEADLINE)
        return condition()

    return wait_for(ticked, what, *watched, deadline=DEADLINE, every=0.1)


def target(external_id: str) -> RolloutTarget:
    return RolloutTarget.objects.get(device__external_id=external_id, device__tenant__slug="e2e")


def test_a_rollout_runs_end_to_end_through_a_worker_and_simulated_devices(live_server, tmp_path, keypair, processes):
    started = time.monotonic()
    tenant = make_tenant("e2e")
    admin = make_user(tenant, "administrator")
    do_update_tenant_policy(tenant, {"auto_accept_registrations": True})
    sensor = do_create_device_type(manufacturer="ACME", model="Sensor", actor=None, tenant=tenant)
    for external_id in [*HEALTHY, "OLD-0001", "FLAKY-0001"]:  # expected devices, accepted on their first call
        do_create_registration(
            external_id=external_id, registration_token=TOKEN, type=sensor, actor=None, tenant=tenant
        )
    image = signed_image(tenant, sensor, version="2.0.0", security_version=2, keypair=keypair)
    keys = tmp_path / "trusted-keys.pem"
    keys.write_text(keypair[1])  # the devices' factory-installed signing key

    worker = Worker(tmp_path / "worker.log", EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend")
    healthy = simulator(live_server.url, tmp_path, "SIM", 4, keys)
    stubborn = simulator(live_server.url, tmp_path, "OLD", 1, keys, "--boot-old-share", "1")
    flaky = simulator(live_server.url, tmp_path, "FLAKY", 1, keys, "--fail-share", "1")
    processes.extend([worker, healthy, stubborn, flaky])
    sims = (healthy, stubborn, flaky)
    wait_for(lambda: Device.objects.filter(tenant=tenant).count() == 6, "the devices to register", *sims)

    # A canary wave of three (min_finished 3: judged once all three have finished), then the rest.
    canary = {
        "count": 3,
        "success_threshold": 60,
        "error_threshold": 40,
        "min_finished": 3,
        "soak_seconds": 1,
        "auto_advance": True,
    }
    rollout = do_create_rollout(
        image=image,
        name="Spring update",
        waves=[canary, {"error_threshold": 40, "soak_seconds": 0}],
        max_retries=0,
        device_timeout_seconds=300,
        actor=admin,
    )
    ids = dict(Device.objects.filter(tenant=tenant).values_list("external_id", "pk"))
    seed_with_canaries(rollout, list(ids.values()), {ids["OLD-0001"], ids["FLAKY-0001"]}, 3)

    # Planning: queued by the service, run by the worker.
    assert do_plan_rollout(rollout, actor=admin).status == "planning"
    wait_for(lambda: Rollout.objects.get(pk=rollout.pk).status == "ready", "the worker to plan the rollout", worker)
    plan = AuditEntry.objects.get(event="firmware.rollout.plan", object_id=str(rollout.pk))
    assert plan.actor_label == "job firmware.tasks.plan_rollout" and plan.additional_data["waves"] == [3, 3]
    first, second = RolloutWave.objects.filter(rollout=rollout).order_by("index")
    canaries = set(RolloutTarget.objects.filter(wave=first).values_list("device__external_id", flat=True))
    assert {"OLD-0001", "FLAKY-0001"} <= canaries
    do_start_rollout(rollout, actor=admin)

    # The canaries update; two fail, and the worker's tick pauses the rollout.
    drive(lambda: Rollout.objects.get(pk=rollout.pk).status == "paused", "the automatic pause", worker, *sims)
    paused = Rollout.objects.get(pk=rollout.pk)
    assert paused.status_reason.startswith("Wave 1: 2 of 3 finished devices failed"), paused.status_reason
    old = target("OLD-0001")
    assert (old.status, old.error_code, old.reported_version) == ("failed", "booted_old_image", "1.0.0")
    assert (target("FLAKY-0001").status, target("FLAKY-0001").error_code) == ("failed", "install_failed")
    assert RolloutWave.objects.get(pk=first.pk).status == "active"
    assert RolloutWave.objects.get(pk=second.pk).status == "pending"
    assert set(RolloutTarget.objects.filter(wave=second).values_list("status", flat=True)) == {"pending"}
    pause = AuditEntry.objects.get(event="firmware.rollout.pause", object_id=str(rollout.pk))
    assert pause.actor_label == "job firmware.tasks.evaluate_rollouts"
    figures = pause.additional_data
    assert figures["automatic"] is True and (figures["failures"], figures["finished"], figures["wave"]) == (2, 3, 0)
    # The mail to the administrators, sent by the worker (console backend: its log).
    subject = "Subject: cot: rollout Spring update paused"
    mail = wait_for(lambda: subject in worker.output(0) and worker.output(0), "the pause mail", worker)
    assert f"To: {admin.email}" in mail and "above its error threshold of 40 %" in mail
    assert counters_exact(paused)

    # The operator has the flaky device fixed (its simulator restarts without failures),
    # retries the failed devices and resumes.
    flaky.stop()
    fixed = simulator(live_server.url, tmp_path, "FLAKY", 1, keys)
    processes.append(fixed)
    sims = (healthy, stubborn, fixed)
    assert do_retry_failed_targets(paused, actor=admin) == 2
    do_resume_rollout(paused, actor=admin)

    drive(lambda: Rollout.objects.get(pk=rollout.pk).status == "finished", "the rollout to finish", worker, *sims)
    done = Rollout.objects.get(pk=rollout.pk)
    assert states(done) == {"succeeded": 5, "failed": 1}
    old = target("OLD-0001")
    assert (old.status, old.error_code, old.reported_version) == ("failed", "booted_old_image", "1.0.0")
    assert old.attempts == 1  # offered once more after the retry (attempts reset), failed once more
    for external_id in [*HEALTHY, "FLAKY-0001"]:
        assert (target(external_id).status, target(external_id).reported_version) == ("succeeded", "2.0.0")
        assert Device.objects.get(pk=ids[external_id]).firmware_version == "2.0.0"
    assert Device.objects.get(pk=ids["OLD-0001"]).firmware_version != "2.0.0"
    assert [w.status for w in RolloutWave.objects.filter(rollout=rollout).order_by("index")] == ["succeeded"] * 2
    assert counters_exact(done)

    # The engine's moves, each once, by the worker's job; one pause, one mail.
    moves = AuditEntry.objects.filter(event="firmware.rollout.wave", object_id=str(rollout.pk)).order_by("pk")
    assert [(e.additional_data["wave"], e.additional_data["to"]) for e in moves] == [
        (0, "active"),
        (0, "soaking"),
        (0, "succeeded"),
        (1, "active"),
        (1, "soaking"),
        (1, "succeeded"),
    ]
    assert {e.actor_label for e in moves} == {"job firmware.tasks.evaluate_rollouts"}
    assert AuditEntry.objects.filter(event="firmware.rollout.pause", object_id=str(rollout.pk)).count() == 1
    assert AuditEntry.objects.filter(event="firmware.rollout.finish", object_id=str(rollout.pk)).count() == 1
    assert worker.output(0).count(subject) == 1
    assert time.monotonic() - started < 60

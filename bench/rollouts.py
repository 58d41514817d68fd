"""Benchmark 5: planning a rollout over a large fleet, against a bare ``INSERT … SELECT`` of the same rows.

A tenant gets ``COT_BENCH_ROLLOUT_DEVICES`` devices (a million by default) of one device
type, inserted set-based. Each round plans a three-wave rollout of a released image
to all of them (``firmware.services.rollouts.run_planning``, the job's body: the shuffle, the wave
assignment and the counters, in one transaction) and, as the reference, copies the
same device ids into the targets table with the plainest ``INSERT … SELECT`` PostgreSQL
can run. Target: planning takes at most 3 times the bare insert; per-device work in
Python would take hundreds of times longer. The targets are truncated after every
round, so each round writes into the same, empty table.
"""

from __future__ import annotations

import hashlib
import os
import time

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from bench.core import ROUNDS, Row, log
from bench.data import bench_tenant, groups_and_types, insert_devices
from devices.models import DeviceType
from firmware.models import FirmwareImage, Rollout, RolloutTarget
from firmware.services import (
    do_create_rollout,
    do_plan_rollout,
    do_release_firmware_image,
    do_update_firmware_policy,
    do_upload_firmware_image,
)
from firmware.services.rollouts import run_planning
from tenants.models import Tenant

DEVICES = int(os.environ.get("COT_BENCH_ROLLOUT_DEVICES", "1000000"))
MAX_RATIO = 3.0
WAVES = [{"percent": 1}, {"percent": 10}, {}]


def _image(tenant: Tenant, type_id: int) -> FirmwareImage:
    """A released (unsigned: the policy is relaxed for the bench tenant) image for the one device type."""
    content = b"bench firmware"
    image = do_upload_firmware_image(
        file=SimpleUploadedFile("bench.bin", content),
        sha256=hashlib.sha256(content).hexdigest(),
        version="9.0.0",
        device_types=[DeviceType.objects.get(pk=type_id)],
        actor=None,
        tenant=tenant,
    )
    do_update_firmware_policy({"require_signatures": False}, actor=None, tenant=tenant)
    return do_release_firmware_image(image, actor=None)


def _truncate_targets() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {RolloutTarget._meta.db_table}")


def _plan(tenant: Tenant, image: FirmwareImage, number: int) -> float:
    """Seconds to plan one fresh rollout of ``image`` to every device."""
    rollout = do_create_rollout(image=image, name=f"Bench {number}", waves=WAVES, actor=None, tenant=tenant)
    do_plan_rollout(rollout, actor=None)  # queues the job; the benchmark runs it here instead
    started = time.perf_counter()
    planned = run_planning(rollout.pk)
    seconds = time.perf_counter() - started
    if planned is None or planned.status != Rollout.Status.READY or planned.planned_total != DEVICES:
        raise RuntimeError(f"Planning did not plan all {DEVICES} devices: {planned and planned.status}.")
    return seconds


def _bare_insert(tenant: Tenant, rollout: Rollout) -> float:
    """Seconds for the plainest INSERT … SELECT of the same device ids into the same table."""
    wave_id = rollout.waves.order_by("index").values_list("pk", flat=True).first()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {RolloutTarget._meta.db_table}
                (tenant_id, rollout_id, wave_id, device_id, status, attempts, error_code, reported_version)
            SELECT %s, %s, %s, id, 'pending', 0, '', '' FROM devices_device WHERE tenant_id = %s
            """,
            [tenant.pk, rollout.pk, wave_id, tenant.pk],
        )
        inserted = cursor.rowcount
    seconds = time.perf_counter() - started
    if inserted != DEVICES:
        raise RuntimeError(f"The bare insert wrote {inserted} of {DEVICES} rows.")
    return seconds


def rollout_planning() -> list[Row]:
    """Best planning time against the best bare insert, over ``ROUNDS`` alternating rounds."""
    tenant = bench_tenant("bench-rollouts")
    _, type_ids = groups_and_types(tenant, 0, 1)
    log(f"inserting {DEVICES:,} devices for the rollout benchmark")
    # Every device gets the one type: planning reaches them all.
    insert_devices(tenant, [], type_ids, 1, DEVICES)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE devices_device SET type_id = %s WHERE tenant_id = %s", [type_ids[0], tenant.pk])
        cursor.execute("VACUUM ANALYZE devices_device")
    image = _image(tenant, type_ids[0])
    reference = do_create_rollout(image=image, name="Bench reference", waves=[{}], actor=None, tenant=tenant)
    planning: list[float] = []
    bare: list[float] = []
    for number in range(1, ROUNDS + 1):
        _truncate_targets()
        bare.append(_bare_insert(tenant, reference))
        _truncate_targets()
        planning.append(_plan(tenant, image, number))
        log(f"  round {number}/{ROUNDS}: planning {planning[-1]:.2f} s, bare insert {bare[-1]:.2f} s")
    _truncate_targets()
    best, best_bare = min(planning), min(bare)
    return [
        Row(
            f"Rollout planning, {DEVICES:,} devices, 3 waves",
            best,
            best_bare,
            "s",
            f"<= {MAX_RATIO:g} x bare INSERT … SELECT",
            best <= MAX_RATIO * best_bare,
            "bare INSERT … SELECT",
            {"planning s": planning, "bare insert s": bare},
        )
    ]

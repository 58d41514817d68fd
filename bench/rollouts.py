"""Benchmarks 5 and 6: planning a rollout against a bare ``INSERT … SELECT``; starting a wave of any size.

5. A tenant gets devices of one device type, inserted set-based, first
   ``COT_BENCH_ROLLOUT_SIZES``'s smaller size (100,000), later grown to the larger one
   (1,000,000). At each size every round plans a three-wave rollout (1 %, 10 %, the rest)
   of a released image to all of them (``firmware.services.rollouts.run_planning``, the
   job's body: count, shuffle, wave assignment, counters and audit, in one transaction)
   and, as the reference, copies the same device ids into the same targets table with the
   plainest ``INSERT … SELECT`` PostgreSQL can run. Target (issue 11): planning takes at
   most 1.5 times the bare insert. The targets are truncated before every run, so each
   writes into the same, empty table.
6. Starting a wave is ``do_advance_wave`` (access, row lock, one guarded UPDATE of the
   wave, audit) on the last planned rollout at the larger size: its last wave holds 89 %
   of the devices. The reference is the same action on a rollout of three devices (a wave
   of one). Target: at most 10 ms, whatever the wave's size.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from bench.core import ROUNDS, Row, in_rounds, log
from bench.data import bench_tenant, groups_and_types, insert_devices, maintain
from devices.models import Device, DeviceType
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.services import (
    do_advance_wave,
    do_create_rollout,
    do_plan_rollout,
    do_release_firmware_image,
    do_start_rollout,
    do_update_firmware_policy,
    do_upload_firmware_image,
)
from firmware.services.rollout_actions import activate_wave
from firmware.services.rollouts import run_planning
from tenants.models import Tenant

# The sizes; e.g. COT_BENCH_ROLLOUT_SIZES=10000,100000 for a quick run.
SIZES = sorted(int(size) for size in os.environ.get("COT_BENCH_ROLLOUT_SIZES", "100000,1000000").split(","))
MAX_RATIO = 1.5
MAX_WAVE_START_MS = 10.0
WAVES = [{"percent": 1}, {"percent": 10}, {}]
IMAGE_VERSION = "9.0.0"


def released_image(tenant: Tenant, type_id: int) -> FirmwareImage:
    """A released (unsigned: the policy is relaxed for the bench tenant) image for the one device type."""
    content = b"bench firmware"
    image = do_upload_firmware_image(
        file=SimpleUploadedFile("bench.bin", content),
        sha256=hashlib.sha256(content).hexdigest(),
        version=IMAGE_VERSION,
        device_types=[DeviceType.objects.get(pk=type_id)],
        actor=None,
        tenant=tenant,
    )
    do_update_firmware_policy({"require_signatures": False}, actor=None, tenant=tenant)
    return do_release_firmware_image(image, actor=None)


def fleet_of_one_type(slug: str, devices: int) -> tuple[Tenant, int]:
    """A bench tenant with ``devices`` devices, all of one device type (inserted set-based); the type's id."""
    tenant = bench_tenant(slug)
    _, type_ids = groups_and_types(tenant, 0, 1)
    grow(tenant, type_ids[0], 0, devices)
    return tenant, type_ids[0]


def grow(tenant: Tenant, type_id: int, have: int, want: int) -> None:
    """Devices ``have + 1`` … ``want`` of ``tenant``, every one of the one type, so a rollout reaches them all."""
    log(f"inserting devices {have + 1:,} to {want:,} (INSERT … SELECT generate_series)")
    insert_devices(tenant, [], [type_id], have + 1, want)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE devices_device SET type_id = %s WHERE tenant_id = %s AND type_id IS DISTINCT FROM %s",
            [type_id, tenant.pk, type_id],
        )
    maintain("default", "VACUUM ANALYZE devices_device", "CHECKPOINT")


def planned_rollout(
    tenant: Tenant, image: FirmwareImage, name: str, waves: list[dict[str, int]], target_devices: Sequence[int] = ()
) -> Rollout:
    """A rollout created, queued and planned here (the job's body, run in-process); checked ``ready``."""
    rollout = do_create_rollout(
        image=image, name=name, waves=waves, target_devices=target_devices, actor=None, tenant=tenant
    )
    do_plan_rollout(rollout, actor=None)  # queues the job (no worker listens); it runs here instead
    planned = run_planning(rollout.pk)
    if planned is None or planned.status != Rollout.Status.READY:
        raise RuntimeError(f"Planning of {name} did not finish: {planned and planned.status}.")
    return planned


def _truncate_targets() -> None:
    maintain("default", f"TRUNCATE {RolloutTarget._meta.db_table}")


def _plan(tenant: Tenant, image: FirmwareImage, size: int, number: int) -> tuple[float, Rollout]:
    """Seconds to plan one fresh rollout of ``image`` to every device, and the rollout."""
    _truncate_targets()
    rollout = do_create_rollout(image=image, name=f"Bench {size} {number}", waves=WAVES, actor=None, tenant=tenant)
    do_plan_rollout(rollout, actor=None)
    started = time.perf_counter()
    planned = run_planning(rollout.pk)
    seconds = time.perf_counter() - started
    if planned is None or planned.status != Rollout.Status.READY or planned.planned_total != size:
        raise RuntimeError(f"Planning did not plan all {size} devices: {planned and planned.status}.")
    return seconds, planned


def _bare_insert(tenant: Tenant, rollout: Rollout, size: int) -> float:
    """Seconds for the plainest INSERT … SELECT of the same device ids into the same table."""
    _truncate_targets()
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
    if inserted != size:
        raise RuntimeError(f"The bare insert wrote {inserted} of {size} rows.")
    return seconds


def _planning_row(tenant: Tenant, image: FirmwareImage, reference: Rollout, size: int) -> tuple[Row, Rollout]:
    """Best planning time against the best bare insert at ``size`` devices; the last rollout planned."""
    planning: list[float] = []
    bare: list[float] = []
    last = reference
    log(f"planning {size:,} devices: bare INSERT … SELECT vs run_planning, {ROUNDS} rounds")
    for number in range(1, ROUNDS + 1):
        bare.append(_bare_insert(tenant, reference, size))
        seconds, last = _plan(tenant, image, size, number)
        planning.append(seconds)
        log(f"  round {number}/{ROUNDS}: planning {planning[-1]:.2f} s, bare insert {bare[-1]:.2f} s")
    best, best_bare = min(planning), min(bare)
    row = Row(
        f"Rollout planning, {size:,} devices, 3 waves",
        best,
        best_bare,
        "s",
        f"<= {MAX_RATIO:g} x bare INSERT … SELECT",
        best <= MAX_RATIO * best_bare,
        "bare INSERT … SELECT",
        {"planning s": planning, "bare insert s": bare},
    )
    return row, last


def _ready_to_advance(rollout: Rollout) -> RolloutWave:
    """Start ``rollout``, let every wave but the last have succeeded; the last wave (pending)."""
    do_start_rollout(rollout, actor=None)
    waves = list(RolloutWave.objects.filter(rollout=rollout).order_by("index"))
    activate_wave(waves[0])
    RolloutWave.objects.filter(pk__in=[wave.pk for wave in waves[:-1]]).update(status=RolloutWave.Status.SUCCEEDED)
    return waves[-1]


def _advance_ms(rollout: Rollout, last: RolloutWave) -> float:
    """Milliseconds for ``do_advance_wave`` to start ``last`` (set back to pending first)."""
    RolloutWave.objects.filter(pk=last.pk).update(status=RolloutWave.Status.PENDING, started_at=None)
    started = time.perf_counter()
    wave = do_advance_wave(rollout, actor=None)
    elapsed = (time.perf_counter() - started) * 1000
    if wave.pk != last.pk or wave.status != RolloutWave.Status.ACTIVE:
        raise RuntimeError(f"do_advance_wave started {wave}, not {last}.")
    return elapsed


def _wave_start_row(tenant: Tenant, image: FirmwareImage, big: Rollout) -> Row:
    """Starting the last wave of ``big`` against starting a one-device wave."""
    three = list(Device.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True)[:3])
    small = planned_rollout(
        tenant, image, "Bench three devices", [{"count": 1}, {"count": 1}, {}], target_devices=three
    )
    big_wave, small_wave = _ready_to_advance(big), _ready_to_advance(small)
    log(f"starting a wave: {big_wave.planned:,} devices vs {small_wave.planned} device, {ROUNDS} rounds")
    for _ in range(3):  # warm: first-use costs (queries compiled, caches) count for neither
        _advance_ms(big, big_wave)
        _advance_ms(small, small_wave)
    figures = in_rounds(
        {
            "one-device wave ms": lambda: _advance_ms(small, small_wave),
            "large wave ms": lambda: _advance_ms(big, big_wave),
        }
    )
    measured, reference = min(figures["large wave ms"]), min(figures["one-device wave ms"])
    return Row(
        f"Starting a wave of {big_wave.planned:,} devices",
        measured,
        reference,
        "ms",
        f"<= {MAX_WAVE_START_MS:g} ms",
        measured <= MAX_WAVE_START_MS,
        "one-device wave",
        figures,
    )


def rollout_planning() -> list[Row]:
    """Planning at each of ``SIZES`` (growing the one tenant), then a wave start at the largest."""
    tenant, type_id = fleet_of_one_type("bench-rollouts", SIZES[0])
    image = released_image(tenant, type_id)
    reference = do_create_rollout(image=image, name="Bench reference", waves=[{}], actor=None, tenant=tenant)
    rows: list[Row] = []
    have = SIZES[0]
    last = reference
    for size in SIZES:
        if size > have:
            grow(tenant, type_id, have, size)
            have = size
        row, last = _planning_row(tenant, image, reference, size)
        rows.append(row)
    rows.append(_wave_start_row(tenant, image, last))
    _truncate_targets()
    return rows

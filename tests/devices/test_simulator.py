"""The simulator runs the whole device life cycle over HTTP against a live server."""

from pathlib import Path

import pytest

from devices.models import Alarm, Device, Measurement, Operation
from devices.services.registration import do_create_registration
from devices.services.registry import do_create_operation
from devices.simulator import CredentialStore, run
from tenants.models import Tenant
from tenants.services import do_update_tenant_policy
from tests.factories import make_tenant, make_user

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])

TOKEN = "simulated-label-token"


def test_simulated_devices_register_send_data_and_execute_operations(live_server, tmp_path: Path):
    tenant = make_tenant("simco")
    admin = make_user(tenant, "administrator")
    do_update_tenant_policy(tenant, {"auto_accept_registrations": True})
    for external_id in ("SIM-0001", "SIM-0002"):
        do_create_registration(external_id=external_id, registration_token=TOKEN, actor=None, tenant=tenant)
    store = CredentialStore(tmp_path / "credentials.json")
    lines: list[str] = []

    def simulate() -> dict[str, int]:
        return run(
            base_url=live_server.url,
            tenant="simco",
            external_ids=["SIM-0001", "SIM-0002"],
            token=TOKEN,
            interval=0,
            duration=None,
            store=store,
            log=lines.append,
            rounds=1,
        )

    first = simulate()
    assert first["measurements"] == 4, lines
    devices = list(Device.objects.filter(tenant=tenant).order_by("external_id"))
    assert [d.external_id for d in devices] == ["SIM-0001", "SIM-0002"]
    assert Measurement.objects.filter(device_id__in=[d.pk for d in devices]).count() == 4
    operation = do_create_operation(devices[0], kind="restart", parameters={}, actor=admin)
    # A second run reuses the stored credentials (they are shown only once).
    second = simulate()
    assert second["operations"] == 1
    operation.refresh_from_db()
    assert operation.status == Operation.Status.SUCCESSFUL
    assert Device.objects.filter(tenant=tenant).count() == 2
    assert not Alarm.objects.filter(tenant_id=tenant.pk, status="CLEARED").exists()


def test_simulator_waits_while_registration_is_pending(live_server, tmp_path: Path):
    tenant = make_tenant("waitco")
    do_create_registration(external_id="SIM-0001", registration_token=TOKEN, actor=None, tenant=tenant)
    lines: list[str] = []
    totals = run(
        base_url=live_server.url,
        tenant="waitco",
        external_ids=["SIM-0001"],
        token=TOKEN,
        interval=0,
        duration=None,
        store=CredentialStore(tmp_path / "c.json"),
        log=lines.append,
        rounds=1,
    )
    assert totals["measurements"] == 0
    assert any("pending" in line for line in lines)


def test_a_rate_limited_simulator_waits_as_told_and_sends_again(live_server, tmp_path: Path):
    tenant = make_tenant("slowco")
    do_update_tenant_policy(tenant, {"auto_accept_registrations": True})
    do_create_registration(external_id="SIM-0001", registration_token=TOKEN, actor=None, tenant=tenant)
    # One request a second: a round's second request (operations) meets a 429 with Retry-After.
    Tenant.objects.filter(pk=tenant.pk).update(rate_limits={"device": {"second": "1/s", "minute": "600/min"}})
    lines: list[str] = []
    totals = run(
        base_url=live_server.url,
        tenant="slowco",
        external_ids=["SIM-0001"],
        token=TOKEN,
        interval=0,
        duration=None,
        store=CredentialStore(tmp_path / "credentials.json"),
        log=lines.append,
        rounds=2,
    )
    assert totals["measurements"] == 4, lines
    assert not any("429" in line for line in lines), lines
    assert Measurement.objects.filter(tenant_id=tenant.pk).count() == 4

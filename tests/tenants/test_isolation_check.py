"""``manage.py check_isolation`` and its beat job find rows that tie one tenant to another."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

import audit
from audit.models import AuditEntry
from tenants.isolation import derived_checks
from tenants.models import Role, Tenant
from tenants.tasks import check_isolation
from tests.factories import grant, make_device, make_group, make_tenant, make_user, verified_client
from tests.support import cross_tenant_rows
from tests.support.owner import superuser_cursor


def _run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("check_isolation", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _last_run() -> AuditEntry:
    return AuditEntry.objects.filter(tenant__isnull=True, event="isolation.check").order_by("-seq").first()


@pytest.mark.django_db(databases=["default", "telemetry"])
def test_the_demo_data_and_platform_staff_acting_in_a_tenant_tie_no_tenants_together(tmp_path: Path, acme, globex):
    call_command("bootstrap_demo", firmware_key=tmp_path / "demo-key.pem", stdout=StringIO())
    group = make_group(acme)
    grant(group, ["view", "change"], user=make_user(acme, Role.Kind.STANDARD))
    make_device(acme, group)
    make_device(globex, make_group(globex))
    provider = Tenant.objects.get(kind=Tenant.Kind.PROVIDER)  # the demo's
    engineer = make_user(provider, Role.Kind.SUPPORT)
    audit.record("test.by_support", tenant=acme, actor=engineer)

    code, out, _ = _run()

    assert code == 0, out
    assert "No rows tie tenants together" in out
    assert _last_run().additional_data["clean"] is True


@pytest.mark.django_db
def test_every_foreign_key_between_tenant_scoped_models_is_checked():
    names = {check.name for check in derived_checks()}
    for relation in (
        "devices_device.group",
        "devices_device.type",
        "devices_operation.device",
        "tenants_user.role",
        "tenants_supportgrant.engineer",
        "firmware_rollout.image",
        "firmware_rollouttarget.device",
        "firmware_rollouttarget.wave",
        "audit_auditentry.actor",
    ):
        assert relation in names


@pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])
@pytest.mark.parametrize("case", cross_tenant_rows.ALL)
def test_a_cross_tenant_row_written_by_a_superuser_is_found_and_alerted(case, acme, globex, mailoutbox):
    operator = make_user(make_tenant("platform", provider=True), Role.Kind.OPERATOR, email="ops@platform.test")
    check, table, row = cross_tenant_rows.ALL[case](acme, globex, superuser_cursor)

    code, out, err = _run("--json")

    assert code == 1
    findings = [json.loads(line) for line in out.splitlines()]
    assert {"check": check, "table": table, "row": row} in [
        {key: finding[key] for key in ("check", "table", "row")} for finding in findings
    ]
    assert "tie tenants together" in err
    recorded = _last_run().additional_data
    assert recorded["clean"] is False
    assert any(finding["table"] == table and finding["row"] == row for finding in recorded["rows"])
    assert [mail.to for mail in mailoutbox] == [[operator.email]]
    assert f"{table} row {row}" in mailoutbox[0].body


@pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])
def test_the_beat_job_runs_the_check_and_operators_see_the_last_result(acme, globex, mailoutbox):
    assert settings.CELERY_BEAT_SCHEDULE["check-isolation"]["task"] == "tenants.tasks.check_isolation"
    operator = make_user(make_tenant("platform", provider=True), Role.Kind.OPERATOR)
    administrator = make_user(acme, Role.Kind.ADMINISTRATOR)
    assert check_isolation() == 0
    page = verified_client(operator).get("/cockpit/tenants/tenant/")
    assert "no rows tie tenants together" in page.content.decode()

    cross_tenant_rows.device_in_other_tenants_group(acme, globex, superuser_cursor)
    assert check_isolation() == 1

    assert len(mailoutbox) == 1
    for path in ("/cockpit/tenants/tenant/", "/cockpit/"):
        assert "1 row(s) tie tenants together" in verified_client(operator).get(path).content.decode()
    # A customer's administrator is told nothing about other tenants or the platform's checks.
    own_page = verified_client(administrator).get("/cockpit/tenants/tenant/")
    assert own_page.status_code == 200
    assert "tie tenants together" not in own_page.content.decode()

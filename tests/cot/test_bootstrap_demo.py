"""``manage.py bootstrap_demo`` (the demo data of ``make run``) creates its tenants once and says how to log in."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from cot.demo.management.commands.bootstrap_demo import DEMO_GROUPS, DEMO_USERS, SIMULATED_DEVICES
from devices.models import DeviceGroup, DeviceRegistration
from tenants.models import Tenant, User

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def test_bootstrap_demo_is_idempotent_and_prints_the_login() -> None:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    call_command("bootstrap_demo", stdout=StringIO())
    demo = Tenant.objects.get(slug="demo")
    assert Tenant.objects.filter(kind=Tenant.Kind.PROVIDER).count() == 1
    assert set(User.objects.filter(tenant=demo).values_list("email", flat=True)) == {e for e, _ in DEMO_USERS}
    assert set(DeviceGroup.objects.filter(tenant=demo).values_list("name", flat=True)) == set(DEMO_GROUPS)
    assert DeviceRegistration.objects.filter(tenant=demo).count() == SIMULATED_DEVICES
    assert DEMO_USERS[0][0] in out.getvalue()

"""The registered access rules: one reviewed table, and start-up refuses a model without rules."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import models
from django.test.utils import isolate_apps

from tenants import access
from tenants.models import User
from tenants.querysets import TenantQuerySet

ROOT = Path(__file__).resolve().parents[2]


def test_access_table_equals_the_committed_document():
    out = StringIO()
    call_command("access_table", stdout=out)
    committed = (ROOT / "docs" / "access-table.md").read_text()
    assert out.getvalue() == committed, "regenerate: manage.py access_table > docs/access-table.md"


def test_every_installed_tenant_scoped_model_has_rules():
    assert access.check_rules() == []


def _check(settings_module: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_a_model_without_rules_fails_start_up():
    result = _check("tests.support.throwaway_settings")
    assert result.returncode != 0
    assert "cot.E002" in result.stderr
    assert "throwaway.Unruled has a tenant-scoped manager but no access rules" in result.stderr


def test_the_same_settings_without_the_throwaway_app_start():
    result = _check("cot.settings")
    assert result.returncode == 0, result.stderr


@isolate_apps("tenants")
def test_a_tenant_path_that_does_not_reach_a_tenant_fails():
    class Stray(models.Model):  # noqa: DJ008
        owner = models.ForeignKey(User, on_delete=models.CASCADE)
        name = models.CharField(max_length=10)
        tenant_lookup = "owner__role"
        objects = TenantQuerySet.as_manager()

        class Meta:
            app_label = "tenants"

    class Flat(models.Model):  # noqa: DJ008
        name = models.CharField(max_length=10)
        tenant_lookup = "name"
        objects = TenantQuerySet.as_manager()

        class Meta:
            app_label = "tenants"

    class Reaching(models.Model):  # noqa: DJ008
        owner = models.ForeignKey(User, on_delete=models.CASCADE)
        tenant_lookup = "owner__tenant"
        objects = TenantQuerySet.as_manager()

        class Meta:
            app_label = "tenants"

    assert "leads to tenants.Role" in (access.tenant_path_problem(Stray) or "")
    assert "not a foreign key" in (access.tenant_path_problem(Flat) or "")
    assert access.tenant_path_problem(Reaching) is None
    ids = [problem.id for problem in access.rule_problems([Stray, Flat, Reaching])]
    assert ids.count("cot.E003") == 2
    assert ids.count("cot.E002") == 3  # none of them is registered either


def test_rules_for_a_model_that_is_not_installed_fail_start_up():
    access.register("tenants.Ghost", access.admin_only)
    try:
        assert [problem.id for problem in access.check_rules()] == ["cot.E004"]
    finally:
        access._REGISTRY.pop("tenants.Ghost")


def test_registering_different_rules_twice_is_refused():
    access.register("tenants.User", access.user_rule, add=access.administrators, support_never_writes=True)
    with pytest.raises(ImproperlyConfigured):
        access.register("tenants.User", access.admin_only)

"""A rollout from the cockpit: the add form's live preview, creation, planning, the waves filling in without reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from devices.services.registry import do_create_device_type
from firmware.models import Rollout
from firmware.services.rollouts import run_planning
from tenants.models import Role
from tests.e2e.pages import screenshot_dir, signed_in_page
from tests.factories import make_group, make_tenant, make_user
from tests.firmware.test_rollout_planning import devices, image_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_create_with_preview_plan_and_watch_the_waves(browser: Browser, live_server: Any, tmp_path: Path) -> None:
    tenant = make_tenant("acme")
    admin = make_user(tenant, Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    kind = do_create_device_type(manufacturer="ACME", model="Sensor", actor=None, tenant=tenant)
    plant_a, plant_b = make_group(tenant, "Plant A"), make_group(tenant, "Plant B")
    devices(tenant, 5, device_type=kind, group=plant_a)
    devices(tenant, 3, device_type=kind, group=plant_b)
    image = image_for(tenant, kind, version="2.1.0")

    page = signed_in_page(browser, live_server, admin, width=1280, height=1000)
    page.goto("/cockpit/firmware/rollout/add/")
    preview = page.locator("#rollout-preview")
    page.select_option("select[name=image]", str(image.pk))
    # The preview follows the form as it is filled in, before anything is saved.
    expect(preview.locator(".rollout-preview-message")).to_have_text("8 devices reached.")
    page.select_option("select[name=target_groups]", str(plant_a.pk))
    expect(preview.locator(".rollout-preview-message")).to_have_text("5 devices reached.")
    expect(preview.locator(".rollout-preview-table tbody tr")).to_have_count(1)
    expect(preview.locator(".rollout-preview-table tbody")).to_contain_text("Plant A")
    assert not Rollout.objects.exists()

    page.fill("input[name=name]", "Spring update")
    page.fill("input[name=wave0-size]", "2")
    page.select_option("select[name=wave0-unit]", "count")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "rollout-add.png"), full_page=True)
    page.click("input[name=_save]")

    expect(page.locator("ul.messagelist")).to_contain_text("was created as a draft")
    rollout = Rollout.objects.get()
    assert rollout.target_groups == [plant_a.pk]
    assert page.url.endswith(f"/cockpit/firmware/rollout/{rollout.pk}/change/")
    expect(page.locator("#rollout-status-value")).to_have_text("Draft")
    expect(page.locator("#rollout-start")).to_have_count(0)

    page.click("#rollout-plan")
    expect(page.locator("ul.messagelist")).to_contain_text("Planning has begun")
    expect(page.locator("#rollout-status-value")).to_have_text("Planning")
    # The planning job, run here as the worker runs it; the open page picks the waves up by itself.
    assert run_planning(rollout.pk) is not None
    waves = page.locator("#rollout-waves")
    # It asks every REFRESH_SECONDS (5 s): wait up to a few rounds.
    expect(waves.locator("tr[data-wave='0'] td.planned")).to_have_text("2", timeout=20_000)
    expect(waves.locator("tr[data-wave='1'] td.planned")).to_have_text("3")
    expect(waves).to_contain_text("0 of 2 succeeded")

    page.reload()
    expect(page.locator("#rollout-status-value")).to_have_text("Ready")
    expect(page.locator("#rollout-start")).to_be_visible()
    expect(page.locator("#rollout-cancel")).to_be_visible()
    expect(page.locator("#rollout-audit")).to_contain_text("firmware.rollout.plan_requested")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "rollout-page.png"), full_page=True)

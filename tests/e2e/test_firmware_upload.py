"""The firmware upload page's progress bar: the form is sent by XMLHttpRequest and the bar follows it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from devices.services.registry import do_create_device_type
from firmware.models import FirmwareImage
from tenants.models import Role
from tests.e2e.pages import signed_in_page
from tests.factories import make_tenant, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The bar is rewritten by the answer page, so the test keeps what it showed where that survives.
WATCH_PROGRESS = """() => {
  const box = document.getElementById("upload-progress");
  new MutationObserver(() => {
    const bar = box.querySelector("progress");
    sessionStorage.setItem("progress", bar.value + "|" + box.hidden);
  }).observe(box, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def test_upload_shows_progress_and_lands_on_the_new_image(browser: Browser, live_server: Any, tmp_path: Path) -> None:
    tenant = make_tenant("acme")
    admin = make_user(tenant, Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    kind = do_create_device_type(manufacturer="ACME", model="Sensor", actor=None, tenant=tenant)
    content = bytes(range(256)) * 8 * 1024  # 2 MiB
    image_file = tmp_path / "sensor-1.2.0.bin"
    image_file.write_bytes(content)

    page = signed_in_page(browser, live_server, admin)
    page.goto("/cockpit/firmware/firmwareimage/add/")
    expect(page.locator("#upload-progress")).to_be_hidden()
    page.set_input_files("input[name=file]", str(image_file))
    page.fill("input[name=version]", "1.2.0")
    page.select_option("select[name=device_types]", str(kind.pk))
    page.evaluate(WATCH_PROGRESS)
    page.click("input[name=_save]")

    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    assert page.evaluate('sessionStorage.getItem("progress")') == "100|false"
    image = FirmwareImage.objects.get()
    assert image.sha256 == hashlib.sha256(content).hexdigest() and image.size == len(content)
    assert page.url.endswith("/cockpit/firmware/firmwareimage/")

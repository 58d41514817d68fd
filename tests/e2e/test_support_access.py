"""Browser test of support access: grant, open the link, banner, browse, revoke, refused."""

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from devices.models import DeviceGroup
from tenants.models import Role, SupportGrant
from tests.e2e.pages import signed_in_page
from tests.factories import make_group, make_tenant, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])]


def test_grant_open_banner_browse_revoke_refused(browser: Browser, live_server: Any) -> None:
    customer = make_tenant("acme")
    admin = make_user(customer, Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    group = make_group(customer, "Munich plant")
    engineer = make_user(make_tenant("platform", provider=True), Role.Kind.SUPPORT, email="eng@platform.test")
    admin_page = signed_in_page(browser, live_server, admin)
    engineer_page = signed_in_page(browser, live_server, engineer)

    # The engineer sees nothing of the customer before a grant exists.
    engineer_page.goto(f"/cockpit/devices/devicegroup/{group.pk}/change/")
    expect(engineer_page.get_by_text("Munich plant")).to_have_count(0)

    admin_page.goto("/cockpit/tenants/supportgrant/add/")
    admin_page.fill("input[name=duration_hours]", "4")
    admin_page.select_option("select[name=scope]", "read")
    admin_page.fill("input[name=reason]", "TICKET-42 gateway offline")
    admin_page.click("input[name=_save]")
    link = admin_page.inner_text("#support-link")
    assert "/support/enter/#cot_sgl_" in link

    engineer_page.goto("/" + link.split("/", 3)[3])  # the link names COT_SITE_URL; the test server differs
    # The secret came in the fragment; the page moved it into the form and out of the address bar.
    expect(engineer_page.locator("#support-secret")).to_have_value(link.partition("#")[2])
    assert "#" not in engineer_page.url
    engineer_page.click("#start-support")
    banner = engineer_page.locator("#support-banner")
    expect(banner).to_contain_text("Support session in Acme")
    expect(banner).to_contain_text("read access")
    engineer_page.goto("/cockpit/devices/devicegroup/")
    engineer_page.click("text=Munich plant")
    expect(engineer_page.locator("#support-banner")).to_be_visible()

    admin_page.goto("/cockpit/tenants/supportgrant/")
    grant = SupportGrant.objects.get(tenant=customer)
    admin_page.check(f"input[name=_selected_action][value='{grant.pk}']")
    admin_page.select_option("select[name=action]", "revoke")
    admin_page.click("button[name=index]")
    expect(admin_page.locator(".messagelist")).to_contain_text("Revoked: 1")

    # The engineer's next page is refused: the session through the grant has ended.
    engineer_page.goto(f"/cockpit/devices/devicegroup/{group.pk}/change/")
    expect(engineer_page.locator("#support-banner")).to_have_count(0)
    expect(engineer_page.get_by_text("Munich plant")).to_have_count(0)
    assert DeviceGroup.objects.filter(pk=group.pk).exists()

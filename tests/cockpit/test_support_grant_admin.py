"""Cockpit: support grants. Administrators create them (link shown once), revoke them and review the activity."""

import re
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.templatetags.static import static

from tenants.models import Role, SupportGrant
from tenants.services import do_create_support_grant
from tests.factories import make_user, verified_client
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, cockpit_client, object_url

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])  # the home page counts payload

LINK = re.compile(r"/support/enter/#(cot_sgl_[\w-]+)")


class TestSupportGrantAdminIsolation(AdminIsolationChecks):
    model = SupportGrant
    actions = ("revoke",)

    def make_object(self, tenant: Any) -> Any:
        return do_create_support_grant(
            duration_hours=24, actor=make_user(tenant, Role.Kind.ADMINISTRATOR), reason="TICKET-1"
        )[0]

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {"duration_hours": "4", "scope": "read", "reason": "TICKET-2", "engineer_email": ""}

    def search_term(self, obj: Any) -> str:
        return obj.reason

    def test_foreign_activity_page_is_404(self, scene: Any) -> None:
        url = f"{object_url(scene.foreign)}".replace("/change/", "/activity/")
        assert scene.client.get(url).status_code == 404


def test_admin_creates_grant_and_sees_the_link_once(acme_admin):
    client = cockpit_client(acme_admin)
    response = client.post(
        admin_url(SupportGrant, "add"), {"duration_hours": "24", "scope": "write", "reason": "TICKET-3"}
    )
    assert response.status_code == 302, response.content
    (secret,) = LINK.findall(" ".join(str(m) for m in get_messages(response.wsgi_request)))
    grant = SupportGrant.objects.get(reason="TICKET-3")
    assert grant.created_by == acme_admin
    assert secret in client.get(response["Location"]).content.decode()  # the next page shows it
    assert secret not in client.get(object_url(grant)).content.decode()  # and never again


def test_over_24_hours_is_refused_in_the_form(acme_admin):
    response = cockpit_client(acme_admin).post(
        admin_url(SupportGrant, "add"), {"duration_hours": "25", "scope": "read", "reason": "x"}
    )
    assert response.status_code == 200
    assert not SupportGrant.objects.exists()


def test_the_form_preselects_no_duration_and_requires_one(acme_admin):
    client = cockpit_client(acme_admin)
    form = client.get(admin_url(SupportGrant, "add")).context["adminform"].form
    assert form["duration_hours"].value() is None and form.fields["duration_hours"].required
    response = client.post(admin_url(SupportGrant, "add"), {"scope": "read", "reason": "x"})
    assert response.status_code == 200
    assert "duration_hours" in response.context["adminform"].form.errors
    assert not SupportGrant.objects.exists()


def test_the_link_message_carries_a_copy_button(acme_admin):
    response = cockpit_client(acme_admin).post(
        admin_url(SupportGrant, "add"), {"duration_hours": "2", "scope": "read", "reason": "TICKET-8"}, follow=True
    )
    page = response.content.decode()
    assert 'data-copy="#support-link"' in page
    assert f'src="{static("cockpit/copy.js")}"' in page


def test_non_administrators_cannot_grant(acme):
    user = make_user(acme, Role.Kind.STANDARD)
    client = cockpit_client(user)
    assert client.get(admin_url(SupportGrant, "add")).status_code == 403
    assert client.get(admin_url(SupportGrant, "changelist")).status_code == 403


def test_engineer_sees_banner_and_activity_lists_exactly_their_actions(acme, acme_admin, provider):
    grant, link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="TICKET-4")
    engineer = make_user(provider, Role.Kind.SUPPORT)
    session = verified_client(engineer)
    assert session.post("/support/enter/", {"secret": link.partition("#")[2]}).status_code == 302
    index = session.get("/cockpit/").content.decode()
    assert 'id="support-banner"' in index
    assert acme.name in index
    cockpit_client(acme_admin).get("/cockpit/")  # the administrator's own visit is not the engineer's
    page = cockpit_client(acme_admin).get(object_url(grant).replace("/change/", "/activity/")).content.decode()
    assert page.count(f"{engineer.email} via support grant {grant.pk}") == 2  # the opening and the index visit
    assert acme_admin.email not in page.split('id="activity"')[1]


def test_grant_page_counts_the_engineers_recorded_actions(acme, acme_admin, provider):
    grant, link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="TICKET-5")
    engineer = verified_client(make_user(provider, Role.Kind.SUPPORT))
    assert engineer.post("/support/enter/", {"secret": link}).status_code == 302  # the whole link pasted
    engineer.get("/cockpit/")
    page = cockpit_client(acme_admin).get(object_url(grant)).content.decode()
    assert ">2 recorded actions</a>" in page  # the opening and the index visit, not the admin's own

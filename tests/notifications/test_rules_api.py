"""Notification rules over the API and in the cockpit: administrators only, the tenant's own rows only."""

from __future__ import annotations

from typing import Any

import pytest

from notifications.models import NotificationRule
from notifications.services import do_create_notification_rule
from tenants.models import ApiToken, Role
from tenants.services import do_create_support_grant, do_update_tenant_policy
from tests.factories import api_client, ids, make_group, make_tenant, make_user, verified_client
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.api_isolation import TenantIsolationChecks

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])
RULES = "/api/v1/notification-rules/"
EMAIL_RULE: dict[str, Any] = {
    "name": "Admins",
    "channel": "email",
    "severities": ["MAJOR"],
    "recipient_roles": ["administrator"],
}


def make_rule(tenant: Any) -> NotificationRule:
    admin = make_user(tenant, Role.Kind.ADMINISTRATOR)
    return do_create_notification_rule(actor=admin, **EMAIL_RULE)[0]


class TestNotificationRuleIsolation(TenantIsolationChecks):
    endpoint = RULES

    def make_object(self, tenant: Any) -> NotificationRule:
        return make_rule(tenant)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return dict(EMAIL_RULE)

    def update_payload(self) -> dict[str, Any]:
        return {"name": "changed"}

    def test_foreign_rules_deliveries_and_secret_are_404(self, two_tenants: dict[str, Any]) -> None:
        url, client = self.detail(two_tenants["foreign"]), two_tenants["client"]
        assert client.get(f"{url}deliveries/").status_code == 404
        assert client.post(f"{url}rotate-secret/").status_code == 404

    def test_foreign_groups_and_users_are_refused_like_missing_ones(self, two_tenants: dict[str, Any]) -> None:
        client, other = two_tenants["client"], two_tenants["other"]
        for field, foreign in (
            ("device_groups", make_group(other).pk),
            ("recipient_users", make_user(other, Role.Kind.ADMINISTRATOR).pk),
        ):
            answers = [
                client.post(RULES, {**EMAIL_RULE, field: [pk]}, format="json").json()[field][0].replace(str(pk), "N")
                for pk in (foreign, 10**9)
            ]
            assert answers[0] == answers[1] == "Not one to choose from: N."


class TestNotificationRuleAdminIsolation(AdminIsolationChecks):
    model = NotificationRule
    actions = ("rotate_secret",)

    def make_object(self, tenant: Any) -> NotificationRule:
        return make_rule(tenant)

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {
            "name": "From the cockpit",
            "enabled": "on",
            "channel": "email",
            "severities": ["MAJOR"],
            "recipient_roles": ["administrator"],
            "alarm_types": "",
        }


def test_a_webhook_rule_shows_its_secret_once(acme_admin: Any) -> None:
    client = api_client(acme_admin)
    payload = {
        "name": "Ops",
        "channel": "webhook",
        "severities": ["CRITICAL"],
        "webhook_url": "https://hooks.example.com/cot",
    }

    created = client.post(RULES, payload, format="json")

    assert created.status_code == 201 and created.json()["secret"].startswith("cot_whsec_")
    rule = created.json()["id"]
    assert "secret" not in client.get(f"{RULES}{rule}/").json()
    rotated = client.post(f"{RULES}{rule}/rotate-secret/").json()["secret"]
    assert rotated != created.json()["secret"]
    assert "secret" not in client.patch(f"{RULES}{rule}/", {"enabled": False}, format="json").json()
    assert client.patch(f"{RULES}{rule}/", {"channel": "email"}, format="json").status_code == 400


@pytest.mark.parametrize("kind", [Role.Kind.STANDARD, Role.Kind.BUSINESS])
def test_other_roles_neither_see_nor_make_rules(acme: Any, kind: str) -> None:
    make_rule(acme)
    client = api_client(make_user(acme, kind), scope=ApiToken.Scope.READ)

    assert ids(client.get(RULES)) == set()
    assert client.post(RULES, EMAIL_RULE, format="json").status_code == 403
    cockpit = verified_client(make_user(acme, kind))
    assert cockpit.get("/cockpit/notifications/notificationrule/").status_code == 403
    assert cockpit.post("/cockpit/notifications/notificationrule/add/", {"name": "x"}).status_code == 403


def test_support_and_read_only_tokens_neither_see_nor_make_rules(acme: Any, acme_admin: Any, provider: Any) -> None:
    rule = make_rule(acme)
    read_only = api_client(acme_admin, scope=ApiToken.Scope.READ)
    assert read_only.post(RULES, EMAIL_RULE, format="json").status_code == 403

    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT)
    _, link = do_create_support_grant(actor=acme_admin, reason="T-1", duration_hours=1, scope="write")
    support = verified_client(engineer)
    assert support.post("/support/enter/", {"secret": link.partition("#")[2]}).status_code == 302

    # Webhook URLs often carry a chat service's token: support never sees the rules.
    assert ids(support.get(RULES)) == set()
    assert support.post(RULES, EMAIL_RULE, format="json").status_code == 403
    # Refused before any lookup, alike for an existing and a missing rule.
    assert support.post(f"{RULES}{rule.pk}/rotate-secret/").status_code == 403
    assert support.post(f"{RULES}{10**9}/rotate-secret/").status_code == 403
    assert NotificationRule.objects.count() == 1


def test_a_rule_must_listen_to_something_and_send_somewhere(acme_admin: Any) -> None:
    client = api_client(acme_admin)
    nothing = client.post(RULES, {**EMAIL_RULE, "severities": []}, format="json")
    nobody = client.post(RULES, {**EMAIL_RULE, "recipient_roles": []}, format="json")
    unknown_event = client.post(RULES, {**EMAIL_RULE, "events": ["coffee.empty"]}, format="json")

    assert nothing.status_code == nobody.status_code == unknown_event.status_code == 400
    assert "Choose alarm severities or events" in nothing.json()["severities"][0]
    assert "Choose the users or roles" in nobody.json()["recipient_users"][0]
    assert not NotificationRule.objects.filter(tenant=make_tenant().pk).exists()


@pytest.mark.parametrize(
    ("kind", "message"),
    [("\x1b[31mred", "Control characters"), ("temp\u202eerutarepmet", "direction overrides"), (" ", "blank")],
)
def test_alarm_types_follow_the_text_rule(acme_admin: Any, kind: str, message: str) -> None:
    response = api_client(acme_admin).post(RULES, {**EMAIL_RULE, "alarm_types": [kind]}, format="json")
    assert response.status_code == 400
    assert message in str(response.json()["alarm_types"])
    assert not NotificationRule.objects.exists()


def test_one_tenants_alarm_types_never_show_in_anothers_add_form(acme_admin: Any) -> None:
    rule = do_create_notification_rule(actor=acme_admin, **{**EMAIL_RULE, "alarm_types": ["acme_secret_type"]})[0]
    acme = verified_client(acme_admin)
    change = acme.get(f"/cockpit/notifications/notificationrule/{rule.pk}/change/")
    assert change.status_code == 200 and "acme_secret_type" in change.content.decode()

    stranger = verified_client(make_user(make_tenant("initech"), Role.Kind.ADMINISTRATOR))
    add = stranger.get("/cockpit/notifications/notificationrule/add/")

    assert add.status_code == 200 and "acme_secret_type" not in add.content.decode()

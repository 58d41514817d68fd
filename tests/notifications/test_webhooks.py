"""Alarm notifications to a webhook: signed, once per alarm, retried with backoff, never to private addresses."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from cot.database.scope import tenant_scope
from devices.models import Alarm
from notifications.checks import allowed_networks_are_networks
from notifications.models import Delivery, NotificationRule
from notifications.services import deliveries, do_create_notification_rule, do_rotate_webhook_secret
from notifications.services.deliveries import deliver
from tenants.models import Role
from tenants.services import do_create_support_grant, do_update_tenant_policy
from tests.factories import api_client, grant, make_device, make_group, make_user, verified_client
from tests.support.notifications import DrippingReceiver, Receiver, raise_alarm, run_jobs, verified

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])


def test_a_new_major_alarm_reaches_the_receiver_signed_exactly_once(
    acme: Any, acme_admin: Any, receiver: Receiver, queued: list[tuple[int, float]]
) -> None:
    rule, secret = do_create_notification_rule(
        actor=acme_admin, channel="webhook", name="Ops", severities=["MAJOR", "CRITICAL"], webhook_url=receiver.url
    )
    assert secret is not None and secret.startswith("cot_whsec_")
    device, credential = make_device(acme)

    assert raise_alarm(credential, "MAJOR").status_code == 201
    assert raise_alarm(credential, "MAJOR").json()["alarms"][0]["count"] == 2  # a repeat of the open alarm
    assert raise_alarm(credential, "MINOR", kind="door").status_code == 201  # a severity the rule ignores
    assert run_jobs(queued) == ["sent"]

    (request,) = receiver.requests
    assert verified(secret, request) and request["path"] == "/hooks/cot"
    body = json.loads(request["body"])
    alarm = Alarm.objects.get(device_id=device.pk, type="high_temperature")
    assert body["event"] == "alarm" and body["alarm"]["id"] == alarm.pk and body["alarm"]["severity"] == "MAJOR"
    assert body["device"]["external_id"] == device.external_id
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("succeeded", 200, 1)
    assert request["headers"]["X-Cot-Delivery"] == str(delivery.pk)
    assert deliver(delivery.pk) == "not due" and len(receiver.requests) == 1  # a second job sends nothing

    rotated = do_rotate_webhook_secret(rule, actor=acme_admin)[1]
    assert rotated != secret and not verified(rotated, request)


def test_an_open_alarm_turning_more_severe_is_told_once_per_level(
    acme: Any, acme_admin: Any, receiver: Receiver, queued: list[tuple[int, float]]
) -> None:
    do_create_notification_rule(
        actor=acme_admin, channel="webhook", name="Ops", severities=["MINOR", "CRITICAL"], webhook_url=receiver.url
    )
    _, credential = make_device(acme)
    for severity in ("MINOR", "MINOR", "CRITICAL", "CRITICAL", "MAJOR", "CRITICAL"):
        assert raise_alarm(credential, severity).status_code == 201
    run_jobs(queued)

    told = [json.loads(request["body"])["alarm"] for request in receiver.requests]
    assert [(alarm["severity"], alarm.get("escalated_from")) for alarm in told] == [
        ("MINOR", None),
        ("CRITICAL", "MINOR"),
    ]
    assert len({alarm["id"] for alarm in told}) == 1  # the same open alarm, counted up


def test_a_failing_receiver_is_retried_with_backoff_and_then_given_up(
    acme: Any, acme_admin: Any, receiver: Receiver, queued: list[tuple[int, float]], settings: Any
) -> None:
    settings.COT_WEBHOOK_ATTEMPTS = 3
    receiver.statuses = [500, 503, 502]
    do_create_notification_rule(
        actor=acme_admin, channel="webhook", name="Ops", severities=["MAJOR"], webhook_url=receiver.url
    )
    _, credential = make_device(acme)
    raise_alarm(credential, "MAJOR")

    assert run_jobs(queued) == ["retrying"]
    delivery = Delivery.objects.get()
    assert (delivery.attempts, delivery.response_code, delivery.error) == (1, 500, "The receiver answered 500.")
    (retry,) = queued
    assert retry == (delivery.pk, pytest.approx(30, abs=2))
    assert deliver(delivery.pk) == "not due"  # too early: nothing sent

    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert run_jobs(queued) == ["retrying"]
        assert queued[0][1] == pytest.approx(60, abs=2)  # the backoff doubles
    with time_machine.travel(timezone.now() + timedelta(seconds=100)):
        assert run_jobs(queued) == ["failed"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 3, 502)
    assert len(receiver.requests) == 3 and queued == []


def test_private_and_loopback_addresses_are_refused(acme_admin: Any, settings: Any) -> None:
    client = api_client(acme_admin)
    for url in (
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]:8080/",
        "http://localhost/x",
        "http://[64:ff9b::a00:5]/",  # NAT64 of 10.0.0.5
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
        "http://[::ffff:10.0.0.1]/",  # IPv4-mapped
    ):
        payload = {"name": "x", "channel": "webhook", "severities": ["MAJOR"], "webhook_url": url}
        response = client.post("/api/v1/notification-rules/", payload, format="json")
        assert response.status_code == 400, url
        assert "private, loopback or reserved" in response.json()["webhook_url"][0]
    assert not NotificationRule.objects.exists()


def test_a_host_that_resolves_to_loopback_is_refused_when_sending(
    acme: Any, acme_admin: Any, receiver: Receiver, queued: list[tuple[int, float]], settings: Any
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    do_create_notification_rule(
        actor=acme_admin, channel="webhook", name="Ops", severities=["MAJOR"], webhook_url=f"http://localhost:{port}/"
    )
    settings.COT_WEBHOOK_ALLOWED_NETWORKS = []  # the operator took the allowance back
    _, credential = make_device(acme)
    raise_alarm(credential, "MAJOR")

    assert run_jobs(queued) == ["refused"]
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and "localhost resolves to 127.0.0.1 is a private" in delivery.error
    assert receiver.requests == [] and queued == []  # not retried


def test_rules_follow_device_groups_and_events_reach_their_rules(
    acme: Any, acme_admin: Any, provider: Any, receiver: Receiver, queued: list[tuple[int, float]]
) -> None:
    north, south = make_group(acme, "north"), make_group(acme, "south")
    do_create_notification_rule(
        actor=acme_admin,
        channel="webhook",
        name="North",
        severities=["MAJOR"],
        device_groups=[north.pk],
        webhook_url=receiver.url,
    )
    do_create_notification_rule(
        actor=acme_admin, channel="webhook", name="Support", events=["support_grant.opened"], webhook_url=receiver.url
    )
    _, in_south = make_device(acme, south)
    raise_alarm(in_south, "MAJOR")
    assert queued == []  # not the north rule's devices

    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT)
    _, link = do_create_support_grant(actor=acme_admin, reason="T-1", duration_hours=1)
    assert verified_client(engineer).post("/support/enter/", {"secret": link.partition("#")[2]}).status_code == 302

    assert run_jobs(queued) == ["sent"]
    body = json.loads(receiver.requests[0]["body"])
    assert body["event"] == "support_grant.opened" and receiver.requests[0]["headers"]["X-Cot-Event"] == body["event"]


def test_alarm_mail_reaches_only_those_who_may_see_the_device(
    acme: Any, acme_admin: Any, queued: list[tuple[int, float]]
) -> None:
    north, south = make_group(acme, "north"), make_group(acme, "south")
    sees_north = make_user(acme, Role.Kind.STANDARD, email="north@acme.test")
    sees_south = make_user(acme, Role.Kind.STANDARD, email="south@acme.test")
    grant(north, ["view"], user=sees_north)
    grant(south, ["view"], user=sees_south)
    do_create_notification_rule(
        actor=acme_admin,
        channel="email",
        name="Everyone",
        severities=["MAJOR"],
        recipient_roles=["administrator", "standard"],
    )
    _, credential = make_device(acme, north)
    raise_alarm(credential, "MAJOR")

    assert run_jobs(queued) == ["sent"]
    # One message each, so no recipient learns who else was told; the south user hears nothing.
    assert sorted(tuple(message.to) for message in mail.outbox) == [(acme_admin.email,), (sees_north.email,)]


def test_event_mail_reaches_administrators_only(
    acme: Any, acme_admin: Any, provider: Any, queued: list[tuple[int, float]]
) -> None:
    standard = make_user(acme, Role.Kind.STANDARD, email="standard@acme.test")
    do_create_notification_rule(
        actor=acme_admin,
        channel="email",
        name="Grants",
        events=["support_grant.opened"],
        recipient_users=[standard.pk, acme_admin.pk],
    )
    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT)
    _, link = do_create_support_grant(actor=acme_admin, reason="T-1", duration_hours=1)
    assert verified_client(engineer).post("/support/enter/", {"secret": link.partition("#")[2]}).status_code == 302

    assert run_jobs(queued) == ["sent"]
    assert [message.to for message in mail.outbox] == [[acme_admin.email]]


def test_an_email_rule_writes_to_the_chosen_role(acme: Any, acme_admin: Any, queued: list[tuple[int, float]]) -> None:
    make_user(acme, Role.Kind.STANDARD, email="standard@acme.test")
    do_create_notification_rule(
        actor=acme_admin, channel="email", name="Admins", severities=["CRITICAL"], recipient_roles=["administrator"]
    )
    _, credential = make_device(acme)
    raise_alarm(credential, "CRITICAL")

    assert run_jobs(queued) == ["sent"]
    (message,) = mail.outbox
    assert message.to == [acme_admin.email] and "CRITICAL" in message.body


def test_a_malformed_allowed_network_stops_the_start(settings: Any) -> None:
    settings.COT_WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16", " ", "10.300.0.0/16"]
    (error,) = allowed_networks_are_networks()
    assert error.id == "notifications.E001" and "'10.300.0.0/16'" in error.msg
    settings.COT_WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16", "fd00::/8"]
    assert allowed_networks_are_networks() == []


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_timeout(
    acme: Any, acme_admin: Any, settings: Any, queued: list[tuple[int, float]]
) -> None:
    settings.COT_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.COT_WEBHOOK_TIMEOUT_SECONDS = 1
    with DrippingReceiver(seconds=15) as url:
        do_create_notification_rule(
            actor=acme_admin, channel="webhook", name="Ops", severities=["MAJOR"], webhook_url=url
        )
        _, credential = make_device(acme)
        raise_alarm(credential, "MAJOR")
        # Each byte comes well within the 1 s read timeout; only the whole exchange's deadline ends it.
        assert run_jobs(queued) == ["retrying"]
    delivery = Delivery.objects.get()
    assert delivery.error == "The receiver took longer than 1 s." and delivery.response_code is None


def test_a_claimed_delivery_is_leased_and_a_late_outcome_does_not_overwrite_a_newer_one(
    acme: Any, acme_admin: Any, receiver: Receiver, queued: list[tuple[int, float]]
) -> None:
    do_create_notification_rule(
        actor=acme_admin, channel="webhook", name="Ops", severities=["MAJOR"], webhook_url=receiver.url
    )
    _, credential = make_device(acme)
    raise_alarm(credential, "MAJOR")
    (pk, _), *_ = queued
    queued.clear()
    with tenant_scope(acme.pk):
        claimed = deliveries._claim(pk)  # a worker took it and then died while sending
    assert claimed is not None
    batch, lease = claimed
    assert deliver(pk) == "not due"  # leased: no second worker sends meanwhile
    with time_machine.travel(lease + timedelta(minutes=1, seconds=1), tick=False):
        assert pk in deliveries.due_deliveries(timezone.now())  # the lease ran out: the beat sends again
        assert deliver(pk) == "sent"
    for item in batch:
        item.status, item.error = "failed", "stale outcome of the dead worker"
    with tenant_scope(acme.pk):
        deliveries._record(batch, lease)
    assert Delivery.objects.get(pk=pk).status == "succeeded"

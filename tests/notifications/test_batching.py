"""Quiet hours and digests: held notifications go out together, once, when they are due."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from notifications import tasks
from notifications.batching import batch_time, digest_due, quiet_end
from notifications.models import Delivery
from notifications.services import do_create_notification_rule, do_update_notification_rule
from notifications.services.deliveries import NO_READER
from tenants.models import Role
from tests.factories import api_client, grant, make_device, make_group, make_user
from tests.support.notifications import Receiver, raise_alarm, run_jobs, verified

# Transactions: deliveries are queued when the alarm's transaction commits.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])

BERLIN = ZoneInfo("Europe/Berlin")
RULES = "/api/v1/notification-rules/"


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


# --- when ---------------------------------------------------------------------------------------


def test_quiet_hours_over_midnight_end_the_next_morning() -> None:
    night = (time(22, 0), time(7, 0), "Europe/Berlin")
    assert quiet_end(*night, berlin(7, 23, 30)) == berlin(8, 7)
    assert quiet_end(*night, berlin(8, 6, 59)) == berlin(8, 7)
    assert quiet_end(*night, berlin(8, 7, 0)) is None
    assert quiet_end(*night, berlin(8, 21, 59)) is None
    lunch = (time(12, 0), time(13, 0), "Europe/Berlin")
    assert quiet_end(*lunch, berlin(8, 12, 30)) == berlin(8, 13)
    assert quiet_end(None, None, "UTC", berlin(8, 12)) is None


def test_digest_windows_count_from_local_midnight() -> None:
    assert digest_due(15, "Europe/Berlin", berlin(8, 10, 7)) == berlin(8, 10, 15)
    assert digest_due(60, "Europe/Berlin", berlin(8, 10, 0)) == berlin(8, 11)
    assert digest_due(1440, "Europe/Berlin", berlin(8, 10)) == berlin(9, 0)
    assert digest_due(0, "Europe/Berlin", berlin(8, 10)) is None


class _Rule:
    quiet_from, quiet_until, quiet_timezone = time(22), time(7), "Europe/Berlin"
    critical_breaks_quiet, digest_minutes = True, 0


def test_critical_alarms_break_through_unless_the_rule_says_otherwise() -> None:
    rule = _Rule()
    assert batch_time(rule, berlin(7, 23), critical=False) == berlin(8, 7)
    assert batch_time(rule, berlin(7, 23), critical=True) is None
    rule.critical_breaks_quiet = False
    assert batch_time(rule, berlin(7, 23), critical=True) == berlin(8, 7)
    rule.digest_minutes = 60
    assert batch_time(rule, berlin(8, 12, 5), critical=False) == berlin(8, 13)
    # A digest that would fall into quiet hours comes when they end, never in them.
    assert batch_time(rule, berlin(8, 21, 30), critical=False) == berlin(9, 7)
    rule.digest_minutes = 1440
    for hour in (3, 10, 23):
        assert batch_time(rule, berlin(8, hour), critical=False) == berlin(9 if hour > 7 else 8, 7)
    # A critical alarm that breaks through waits for no digest either.
    rule.critical_breaks_quiet = True
    assert batch_time(rule, berlin(8, 3), critical=True) is None


def test_a_digest_window_is_never_in_the_past_when_clocks_turn_back() -> None:
    turned_back = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 in Berlin, the second time
    due = digest_due(15, "Europe/Berlin", turned_back)
    assert due is not None and due > turned_back


# --- held and sent ------------------------------------------------------------------------------


@pytest.fixture
def night_rule(acme_admin: Any, receiver: Receiver) -> tuple[Any, str]:
    rule, secret = do_create_notification_rule(
        actor=acme_admin,
        channel="webhook",
        name="Night shift",
        severities=["MAJOR", "CRITICAL"],
        webhook_url=receiver.url,
        quiet_from="22:00",
        quiet_until="07:00",
        quiet_timezone="Europe/Berlin",
    )
    assert secret is not None
    return rule, secret


def test_quiet_hours_hold_alarms_until_morning_then_send_one_signed_digest(
    acme: Any, night_rule: tuple[Any, str], receiver: Receiver, queued: list[tuple[int, float]]
) -> None:
    _, secret = night_rule
    _, credential = make_device(acme)
    with time_machine.travel(berlin(7, 23, 15), tick=False) as clock:
        raise_alarm(credential, "MAJOR", kind="pressure")
        raise_alarm(credential, "MAJOR", kind="door")
        raise_alarm(credential, "CRITICAL", kind="fire")  # breaks through
        assert [json.loads(r["body"])["alarm"]["type"] for r in _sent(receiver, queued)] == ["fire"]
        held = Delivery.objects.filter(status="pending")
        assert {d.batch_at for d in held} == {berlin(8, 7)}
        assert tasks.retry_due_deliveries() == 0  # nothing due in the night

        clock.move_to(berlin(8, 7) + timedelta(seconds=30))
        assert tasks.retry_due_deliveries() == 1  # one job for the rule: it takes the others along
        (digest,) = _sent(receiver, queued)
    body = json.loads(digest["body"])
    assert verified(secret, digest) and digest["headers"]["X-Cot-Event"] == "digest"
    assert body["count"] == 2
    assert sorted(n["alarm"]["type"] for n in body["notifications"]) == ["door", "pressure"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_failed_digest_is_retried_whole_by_the_beat(
    acme: Any, night_rule: tuple[Any, str], receiver: Receiver, queued: list[tuple[int, float]]
) -> None:
    receiver.statuses = [503, 200]
    _, credential = make_device(acme)
    with time_machine.travel(berlin(7, 23), tick=False) as clock:
        raise_alarm(credential, "MAJOR", kind="pressure")
        raise_alarm(credential, "MAJOR", kind="door")
        clock.move_to(berlin(8, 7, 1))
        tasks.retry_due_deliveries()
        assert run_jobs(queued) == ["retrying"]
        assert set(Delivery.objects.values_list("attempts", "response_code")) == {(1, 503)}
        clock.shift(timedelta(seconds=31))
        tasks.retry_due_deliveries()
        assert run_jobs(queued) == ["sent"]
    assert [json.loads(r["body"])["count"] for r in receiver.requests] == [2, 2]


@pytest.fixture
def north_watcher(acme: Any) -> tuple[Any, Any, Any]:
    """Device groups north and south, and a Standard user who sees north only."""
    north, south = make_group(acme, "north"), make_group(acme, "south")
    watcher = make_user(acme, Role.Kind.STANDARD, email="north@acme.test")
    grant(north, ["view"], user=watcher)
    return north, south, watcher


def test_a_digest_mail_tells_each_recipient_only_what_they_may_read(
    acme: Any, acme_admin: Any, north_watcher: tuple[Any, Any, Any], queued: list[tuple[int, float]]
) -> None:
    north, south, watcher = north_watcher
    do_create_notification_rule(
        actor=acme_admin,
        channel="email",
        name="Hourly",
        severities=["MINOR"],
        recipient_roles=["administrator", "standard"],
        digest_minutes=60,
    )
    (_, in_north), (_, in_south) = make_device(acme, north), make_device(acme, south)
    with time_machine.travel(datetime(2026, 12, 8, 10, 5, tzinfo=UTC), tick=False) as clock:
        raise_alarm(in_north, "MINOR")
        raise_alarm(in_south, "MINOR")
        assert queued == [] and mail.outbox == []
        clock.move_to(datetime(2026, 12, 8, 11, 0, 10, tzinfo=UTC))
        tasks.retry_due_deliveries()
        assert run_jobs(queued) == ["sent"]
    told = {message.to[0]: json.loads(str(message.body))["count"] for message in mail.outbox}
    assert told == {acme_admin.email: 2, watcher.email: 1}
    assert "1 notification" in next(m.subject for m in mail.outbox if m.to == [watcher.email])


def test_a_rule_takes_quiet_hours_and_a_digest_as_json_numbers_and_times(acme_admin: Any) -> None:
    body = {
        "channel": "email",
        "name": "Nightly",
        "severities": ["MAJOR"],
        "recipient_roles": ["administrator"],
        "quiet_from": "22:00",
        "quiet_until": "07:00",
        "quiet_timezone": "Europe/Berlin",
        "digest_minutes": 60,
    }
    client = api_client(acme_admin)
    created = client.post(RULES, body, format="json")
    assert created.status_code == 201, created.json()
    rule = created.json()
    assert (rule["quiet_from"], rule["digest_minutes"]) == ("22:00:00", 60)
    updated = client.patch(f"{RULES}{rule['id']}/", {"digest_minutes": 1440}, format="json")
    assert updated.status_code == 200, updated.json()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quiet_from": "22:00"}, "quiet_until"),
        ({"quiet_from": "22:00", "quiet_until": "22:00"}, "quiet_until"),
        ({"quiet_from": "22:00", "quiet_until": "07:00", "quiet_timezone": "Mars/Olympus"}, "quiet_timezone"),
        ({"digest_minutes": 7}, "digest_minutes"),
        ({"digest_minutes": "hourly"}, "digest_minutes"),
        ({"quiet_from": "22:00", "quiet_until": "07:00", "quiet_timezone": "localtime"}, "quiet_timezone"),
    ],
)
def test_quiet_hours_and_digests_are_checked(acme_admin: Any, fields: dict[str, Any], field: str) -> None:
    body = {"channel": "email", "name": "R", "severities": ["MAJOR"], "recipient_roles": ["administrator"], **fields}
    response = api_client(acme_admin).post(RULES, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def _sent(receiver: Receiver, queued: list[tuple[int, float]]) -> list[dict[str, Any]]:
    """Run the queued jobs; the requests the receiver got from them."""
    before = len(receiver.requests)
    run_jobs(queued)
    return receiver.requests[before:]


def test_a_digest_item_nobody_may_read_fails_instead_of_counting_as_sent(
    acme: Any, acme_admin: Any, north_watcher: tuple[Any, Any, Any], queued: list[tuple[int, float]]
) -> None:
    north, south, watcher = north_watcher
    do_create_notification_rule(
        actor=acme_admin, channel="email", name="Hourly", severities=["MINOR"], recipient_roles=["standard"]
    )
    (north_device, in_north), (south_device, in_south) = make_device(acme, north), make_device(acme, south)
    raise_alarm(in_north, "MINOR")
    raise_alarm(in_south, "MINOR")
    run_jobs(queued)
    outcome = {d.payload["device"]["id"]: (d.status, d.error) for d in Delivery.objects.all()}
    assert outcome == {north_device.pk: ("succeeded", ""), south_device.pk: ("failed", NO_READER)}
    assert [m.to for m in mail.outbox] == [[watcher.email]]


def test_held_notifications_follow_the_rules_new_timing(
    acme: Any, acme_admin: Any, night_rule: tuple[Any, str], receiver: Receiver, queued: list[tuple[int, float]]
) -> None:
    rule, _ = night_rule
    _, credential = make_device(acme)
    with time_machine.travel(berlin(7, 23, 15), tick=False):
        raise_alarm(credential, "MAJOR")
        assert tasks.retry_due_deliveries() == 0
        # The administrator ends the quiet hours: what they held goes with the beat's next round.
        do_update_notification_rule(rule, {"quiet_from": None, "quiet_until": None}, actor=acme_admin)
        assert tasks.retry_due_deliveries() == 1
        (digest,) = _sent(receiver, queued)
    assert json.loads(digest["body"])["count"] == 1

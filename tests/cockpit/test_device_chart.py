"""The device page's chart: measurements downsampled in SQL, and the SVG geometry built from them."""

from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

import pytest
import time_machine

from devices.admin_chart import build_charts, nice_ticks
from devices.models import Measurement
from devices.selectors import Bucket, Series, bucket_stride, measurement_series, series_names
from tenants.models import Role
from tests.cockpit.device_helpers import add_measurements, placed_device
from tests.cockpit.helpers import cockpit_client, object_url
from tests.factories import grant, make_user

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

START = datetime(2026, 3, 1, tzinfo=UTC)


def test_stride_gives_at_most_the_asked_buckets():
    assert bucket_stride(START, START + timedelta(hours=10), 50) == timedelta(minutes=12)
    assert bucket_stride(START, START + timedelta(seconds=7), 300) == timedelta(seconds=1)
    assert bucket_stride(START, START + timedelta(seconds=1001), 10) == timedelta(seconds=101)
    with pytest.raises(ValueError):
        bucket_stride(START, START, 10)


def test_series_are_downsampled_with_right_aggregates(acme, acme_admin):
    device = placed_device(acme)
    # 600 values, one a minute for 10 hours; each 12-minute bucket averages 12 of them.
    values = [(START + timedelta(minutes=m), float((m * 37) % 101)) for m in range(600)]
    add_measurements(device, values)
    add_measurements(device, [(START + timedelta(minutes=m), 1.0) for m in range(0, 600, 3)], series="T2")
    add_measurements(device, [(START - timedelta(minutes=1), 1000.0), (START + timedelta(hours=10), 1000.0)])
    (first, second) = measurement_series(acme_admin, device, since=START, until=START + timedelta(hours=10), buckets=50)
    assert (first.type, first.series, first.unit) == ("c8y_Temperature", "T", "C")
    assert second.series == "T2"
    assert len(first.points) == 50
    assert sum(p.count for p in first.points) == 600  # the two values outside the range are left out
    for index, point in enumerate(first.points):
        chunk = [v for _, v in values[index * 12 : (index + 1) * 12]]
        assert point.start == START + timedelta(minutes=12 * index)
        assert point.count == 12
        assert point.avg == pytest.approx(mean(chunk))
        assert (point.min, point.max) == (min(chunk), max(chunk))
    assert {p.avg for p in second.points} == {1.0} and sum(p.count for p in second.points) == 200


def test_points_never_exceed_buckets(acme, acme_admin):
    device = placed_device(acme)
    add_measurements(device, [(START + timedelta(seconds=97 * i), float(i)) for i in range(400)])
    until = START + timedelta(seconds=97 * 400)
    for buckets in (1, 7, 64, 300, 1000):
        (series,) = measurement_series(acme_admin, device, since=START, until=until, buckets=buckets)
        assert 1 <= len(series.points) <= buckets
        assert sum(p.count for p in series.points) == 400
        assert sum(p.avg * p.count for p in series.points) == pytest.approx(sum(range(400)))


def test_a_year_of_data_comes_back_as_a_few_hundred_points(acme, acme_admin):
    device = placed_device(acme)
    hours = 365 * 24
    add_measurements(device, [(START + timedelta(hours=h), float(h % 24)) for h in range(hours)])
    (series,) = measurement_series(acme_admin, device, since=START, until=START + timedelta(hours=hours))
    assert len(series.points) <= 300
    assert sum(p.count for p in series.points) == hours
    day = measurement_series(acme_admin, device, since=START + timedelta(days=100), until=START + timedelta(days=101))
    assert sum(p.count for p in day[0].points) == 24


def test_series_discovery_and_scope(acme, acme_admin, globex):
    group_device = placed_device(acme)
    other_device = placed_device(acme)
    foreign = placed_device(globex)
    for kind, series in (("b", "y"), ("a", "z"), ("b", "x"), ("a", "a")):
        add_measurements(group_device, [(START, 1.0)], kind=kind, series=series)
    add_measurements(other_device, [(START, 2.0)], kind="c", series="c")
    add_measurements(foreign, [(START, 3.0)], kind="d", series="d")
    rows = Measurement.objects.restrict(acme_admin, "view")
    assert series_names(rows, group_device.pk) == [("a", "a"), ("a", "z"), ("b", "x"), ("b", "y")]
    assert series_names(rows, group_device.pk, limit=2) == [("a", "a"), ("a", "z")]
    assert series_names(rows, foreign.pk) == []
    since, until = START - timedelta(hours=1), START + timedelta(hours=1)
    assert measurement_series(acme_admin, foreign, since=since, until=until) == []
    # A Standard user without rights on the device's group gets nothing, with rights everything.
    user = make_user(acme, Role.Kind.STANDARD)
    assert measurement_series(user, group_device, since=since, until=until) == []
    assert group_device.group is not None
    grant(group_device.group, ["view"], user=user)
    assert len(measurement_series(user, group_device, since=since, until=until)) == 4


def test_chart_geometry_stays_in_the_plot(acme, acme_admin):
    device = placed_device(acme)
    add_measurements(device, [(START + timedelta(minutes=10 * i), 15 + i % 9) for i in range(144)])
    until = START + timedelta(hours=24)
    series = measurement_series(acme_admin, device, since=START, until=until, buckets=48)
    (chart,) = build_charts(series, START, until)
    (line,) = chart.lines
    points = [tuple(map(float, pair.split(","))) for pair in line.points.split()]
    assert len(points) == line.buckets == 48
    assert all(chart.left <= x <= chart.right and chart.top <= y <= chart.bottom for x, y in points)
    assert points == sorted(points)  # left to right in time
    assert [t.label for t in chart.x_ticks][:3] == ["00:00", "03:00", "06:00"]
    assert float(chart.y_ticks[0].label) <= 15 and float(chart.y_ticks[-1].label) >= 23
    assert line.low == 15 and line.high == 23


def test_nice_ticks():
    assert nice_ticks(0, 10) == [0, 5, 10]
    assert nice_ticks(0, 1) == [0, 0.5, 1]
    ticks = nice_ticks(13.2, 27.9)
    assert ticks[0] <= 13.2 and ticks[-1] >= 27.9 and len(ticks) <= 7
    flat = nice_ticks(5, 5)
    assert flat[0] < 5 < flat[-1]


def test_device_page_chart_covers_the_last_24_hours(acme, acme_admin):
    device = placed_device(acme)
    with time_machine.travel(START + timedelta(days=2), tick=False):
        add_measurements(device, [(START + timedelta(days=2) - timedelta(minutes=m), 1.0) for m in range(1, 50)])
        add_measurements(device, [(START, 5.0)])
        response = cockpit_client(acme_admin).get(object_url(device))
    context: Any = response.context
    assert context["chart_until"] == START + timedelta(days=2)
    assert context["chart_since"] == START + timedelta(days=1)
    assert context["charts"][0].lines[0].values == 49


@pytest.mark.parametrize(
    ("length", "first_labels"),
    [
        (timedelta(hours=24), ["03:00", "06:00", "09:00"]),
        (timedelta(days=7), ["02 Mar", "03 Mar", "04 Mar"]),
        (timedelta(days=30), ["08 Mar", "15 Mar", "22 Mar"]),
        (timedelta(days=365), ["May 2026", "Jul 2026", "Sep 2026"]),
    ],
)
def test_time_axis_labels(length, first_labels):
    since = START + timedelta(hours=1)
    series = [Series("t", "s", "", [Bucket(since, 1.0, 0.0, 2.0, 1), Bucket(since + length / 2, 1.0, 0.0, 2.0, 1)])]
    (chart,) = build_charts(series, since, since + length)
    labels = [tick.label for tick in chart.x_ticks]
    assert labels[:3] == first_labels
    assert all(chart.left <= tick.pos <= chart.right for tick in chart.x_ticks)

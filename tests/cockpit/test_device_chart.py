"""The device page's chart: measurements downsampled in SQL, and the SVG geometry built from them."""

import math
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from statistics import mean
from typing import Any

import pytest
import time_machine

from devices.charts import MAX_TICKS, Chart, build_charts, nice_ticks
from devices.models import Measurement
from devices.selectors import Bucket, Series, bucket_stride, measurement_series, series_names
from tenants.models import Role
from tests.factories import grant, make_user
from tests.support.cockpit import cockpit_client, object_url
from tests.support.device_rows import add_measurements, placed_device

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


def test_device_page_offers_an_hour_and_six_hours_with_buckets_fit_to_them(acme, acme_admin):
    device = placed_device(acme)
    now = START + timedelta(days=2)
    # A device that started six hours ago and reports every 10 seconds.
    add_measurements(device, [(now - timedelta(seconds=10 * i), float(i % 7)) for i in range(1, 6 * 360 + 1)])
    client = cockpit_client(acme_admin)
    with time_machine.travel(now, tick=False):
        hour: Any = client.get(object_url(device), {"range": "1h"}).context
        six: Any = client.get(object_url(device), {"range": "6h"}).context
    assert [key for key, _label in hour["chart_ranges"]][:3] == ["1h", "6h", "24h"]
    assert (hour["chart_range"], hour["chart_since"]) == ("1h", now - timedelta(hours=1))
    (line,) = hour["charts"][0].lines
    assert (line.buckets, line.values) == (120, 360)  # 30-second buckets of three values each
    labels = [tick.label for tick in hour["charts"][0].x_ticks]
    assert labels == ["23:00", "23:10", "23:20", "23:30", "23:40", "23:50", "00:00"]
    assert (six["chart_range"], six["chart_since"]) == ("6h", now - timedelta(hours=6))
    (line,) = six["charts"][0].lines
    assert (line.buckets, line.values) == (180, 2160)  # 2-minute buckets
    assert [tick.label for tick in six["charts"][0].x_ticks] == [f"{h:02d}:00" for h in (18, 19, 20, 21, 22, 23, 0)]


@pytest.mark.parametrize(
    ("length", "first_labels"),
    [
        (timedelta(hours=1), ["01:00", "01:10", "01:20"]),
        (timedelta(hours=6), ["01:00", "02:00", "03:00"]),
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


# --- values no device can send any more, but older rows may hold ---------------------------

BIGGEST = sys.float_info.max
ADVERSARIAL_RANGES = [
    (1e18, 1e18),  # flat and huge: ±1 does not move it
    (1.7e308, 1.7e308),
    (-BIGGEST, -BIGGEST),
    (1e18, 1e18 + 256),  # two doubles apart
    (1e16, 1e16 + 2),  # a step of 0.5 below the spacing of doubles: `value += step` never advanced
    (-1.7e308, 1.7e308),  # the span overflows
    (-BIGGEST, BIGGEST),
    (0.0, 1.7e308),
    (1e-12, 2e-12),  # rounding to 10 decimals merged every tick
    (1.5e-9, 1.6e-9),
    (5e-324, 1e-323),  # the smallest doubles
    (0.0, 5e-324),
    (-50.0, -10.0),
    (-1e18 - 256, -1e18),
    (-7.25, -7.25),
    (3.0, -2.0),  # reversed
    (math.inf, -math.inf),
    (math.nan, 1.0),
]


@contextmanager
def terminates_within(seconds: float) -> Iterator[None]:
    """Turn an endless loop into a test failure instead of a hung test run."""

    def give_up(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(("low", "high"), ADVERSARIAL_RANGES)
def test_nice_ticks_are_total(low, high):
    with terminates_within(5):
        ticks = nice_ticks(low, high)
    doubles = [float(tick) for tick in ticks]
    assert 2 <= len(doubles) <= MAX_TICKS
    assert all(math.isfinite(tick) for tick in doubles)
    assert all(a < b for a, b in pairwise(doubles)), doubles
    finite = [min(max(v, -BIGGEST), BIGGEST) for v in (low, high) if not math.isnan(v)]
    assert doubles[0] <= min(finite) and doubles[-1] >= max(finite)


def test_nice_ticks_of_huge_and_tiny_values_stay_round():
    assert nice_ticks(1e-12, 2e-12) == [1e-12, 1.5e-12, 2e-12]
    assert nice_ticks(-1.7e308, 1.7e308) == [-BIGGEST, -1e308, 0, 1e308, BIGGEST]  # the ends within the doubles
    flat = nice_ticks(1e18, 1e18)
    assert flat[0] < 1e18 < flat[-1] and flat[-1] - flat[0] < 1e7


def coordinates(chart: Chart) -> list[tuple[float, float]]:
    """Every point the chart's SVG draws."""
    drawn = [
        (float(x), float(y))
        for line in chart.lines
        for x, y in (pair.split(",") for pair in f"{line.points} {line.band}".split())
    ]
    drawn += [line.dot for line in chart.lines if line.dot]
    drawn += [(chart.left, tick.pos) for tick in chart.y_ticks] + [(tick.pos, chart.top) for tick in chart.x_ticks]
    return drawn


def bucket(start: datetime, low: float, high: float) -> Bucket:
    """A bucket as the selector returns it: the average clamped to ±10^15, the extremes exact."""
    middle = low / 2 + high / 2 if math.isfinite(low / 2 + high / 2) else low
    return Bucket(start, min(max(middle, -1e15), 1e15), low, high, 3)


@pytest.mark.parametrize(
    "extremes",
    [
        [(1.7e308, 1.7e308), (-1.7e308, -1.7e308), (2.0, 3.0)],
        [(1e18, 1e18)] * 3,
        [(1e18, 1e18 + 256)],
        [(BIGGEST, BIGGEST)],
        [(-BIGGEST, BIGGEST)],
        [(1e-12, 2e-12), (1.5e-12, 1.5e-12)],
        [(-50.0, -10.0), (-30.0, -20.0)],
        [(5e-324, 5e-324)],
        [(math.inf, math.inf), (-math.inf, 0.0), (math.nan, math.nan)],
    ],
)
def test_chart_geometry_is_finite_and_inside_the_plot_for_any_stored_value(extremes):
    until = START + timedelta(hours=24)
    points = [bucket(START + timedelta(hours=i), low, high) for i, (low, high) in enumerate(extremes)]
    with terminates_within(5):
        (chart,) = build_charts([Series("t", "s", "", points)], START, until)
    drawn = coordinates(chart)
    assert all(math.isfinite(x) and math.isfinite(y) for x, y in drawn)
    assert all(chart.left <= x <= chart.right and chart.top <= y <= chart.bottom for x, y in drawn)
    assert all(a.pos > b.pos for a, b in pairwise(chart.y_ticks))  # higher values higher up, none merged


def test_an_empty_time_range_does_not_divide_by_zero():
    series = [Series("t", "s", "", [Bucket(START, 1.0, 0.0, 2.0, 2)])]
    (chart,) = build_charts(series, START, START)
    assert all(math.isfinite(x) and math.isfinite(y) for x, y in coordinates(chart))


def test_averages_of_out_of_range_rows_are_clamped_and_the_extremes_kept(acme, acme_admin):
    device = placed_device(acme)
    # Older rows, stored before values were bounded (straight into the telemetry table).
    add_measurements(device, [(START, 1.7e308), (START + timedelta(minutes=1), 1.0)])
    add_measurements(device, [(START + timedelta(minutes=m), (-1) ** m * 1e160) for m in range(4)], series="U")
    add_measurements(device, [(START + timedelta(minutes=m), -1.7e308) for m in range(3)], series="V")
    since, until = START, START + timedelta(hours=1)
    t, u, v = measurement_series(acme_admin, device, since=since, until=until, buckets=1)
    assert [(p.avg, p.min, p.max, p.count) for p in t.points] == [((1e15 + 1) / 2, 1.0, 1.7e308, 2)]
    assert [(p.avg, p.min, p.max, p.count) for p in u.points] == [(0.0, -1e160, 1e160, 4)]
    assert [(p.avg, p.min, p.max, p.count) for p in v.points] == [(-1e15, -1.7e308, -1.7e308, 3)]


def test_device_page_with_out_of_range_rows_renders_its_chart(acme, acme_admin):
    device = placed_device(acme)
    now = START + timedelta(days=2)
    legacy = [1.7e308, -1.7e308, 1e160, -1e160, 21.5]  # in one bucket: PostgreSQL's plain avg overflows
    add_measurements(device, [(now - timedelta(seconds=10 * (i + 1)), v) for i, v in enumerate(legacy)])
    add_measurements(device, [(now - timedelta(minutes=m), 1e18) for m in range(1, 4)], series="flat")
    with time_machine.travel(now, tick=False):
        response = cockpit_client(acme_admin).get(object_url(device))
    assert response.status_code == 200
    (chart,) = response.context["charts"]
    assert {(line.name, line.low, line.high, line.values) for line in chart.lines} == {
        ("T", -1.7e308, 1.7e308, 5),
        ("flat", 1e18, 1e18, 3),
    }
    assert all(math.isfinite(x) and math.isfinite(y) for x, y in coordinates(chart))
    svg = re.search(r"<svg.*?</svg>", response.content.decode(), re.DOTALL)
    assert svg is not None and not re.search(r"\b(inf|nan)\b", svg.group(0), re.IGNORECASE)

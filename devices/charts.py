"""Server-rendered SVG charts of downsampled measurements for the device page (no JavaScript).

``build_charts`` turns ``selectors.measurement_series`` output into plain geometry: one
chart per measurement type, one polyline (the bucket averages) and one min-max band per
series, axis ticks and a legend. ``templates/admin/devices/device/chart.html`` draws it,
so every label passes through the template's escaping.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from itertools import pairwise
from typing import NamedTuple

from django.utils import timezone

from devices.selectors import DEFAULT_BUCKETS, Series

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 60, 14, 12, 28
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


class ChartRange(NamedTuple):
    """A period the device page offers: its label, its length, and how many buckets it is cut into."""

    label: str
    length: timedelta
    buckets: int = DEFAULT_BUCKETS


# Chart ranges offered on the device page, shortest first. The short ones (for a device
# that has just started) get round strides of 30 s and 2 min instead of the default
# count's 12 s and 72 s, so each point averages a few values of a device reporting every
# few seconds and the band between its minimum and maximum still means something.
RANGES: dict[str, ChartRange] = {
    "1h": ChartRange("1 hour", timedelta(hours=1), buckets=120),
    "6h": ChartRange("6 hours", timedelta(hours=6), buckets=180),
    "24h": ChartRange("24 hours", timedelta(hours=24)),
    "7d": ChartRange("7 days", timedelta(days=7)),
    "30d": ChartRange("30 days", timedelta(days=30)),
    "365d": ChartRange("1 year", timedelta(days=365)),
}
DEFAULT_RANGE = "24h"
# Time-axis ticks of ranges up to two days: (longest span, distance between ticks).
_CLOCK_STEPS = (
    (timedelta(hours=1), timedelta(minutes=10)),
    (timedelta(hours=6), timedelta(hours=1)),
    (timedelta(hours=24), timedelta(hours=3)),
    (timedelta(days=2), timedelta(hours=6)),
)
MAX_TICKS = 12  # nice_ticks never returns more, whatever it is given
_DOUBLE_MAX = sys.float_info.max
# A value span narrower than this fraction of the values' magnitude is widened to it first:
# doubles near the values could not divide it into evenly spaced, distinct ticks.
_RESOLUTION = Decimal("1e-12")


@dataclass(frozen=True)
class Tick:
    """An axis tick: its position in the plot and its label."""

    pos: float
    label: str


@dataclass(frozen=True)
class Line:
    """One series as drawn: the average polyline, the min-max band and its legend entry."""

    name: str
    color: str
    points: str
    band: str
    last: float
    low: float
    high: float
    buckets: int
    values: int
    dot: tuple[float, float] | None = None  # a lone point, which a polyline would not show


@dataclass
class Chart:
    """One measurement type: its series share the y axis (and, normally, the unit)."""

    type: str
    unit: str
    lines: list[Line] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def _finite(value: float) -> float:
    """``value`` within the finite doubles; NaN counts as above every number, as PostgreSQL orders it."""
    if math.isnan(value):
        return _DOUBLE_MAX
    return min(max(value, -_DOUBLE_MAX), _DOUBLE_MAX)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2 or 5 times a power of ten apart).

    Total: for any input, 2 to ``MAX_TICKS`` finite, strictly increasing values. Ordinary
    values are laid out in doubles as they always were; where doubles cannot carry that
    (spans beyond their range, flat series too large for ±1 to move them, steps below their
    spacing near the values or below the rounding to 10 decimals) the ticks are computed
    exactly in decimal instead.
    """
    low, high = sorted((_finite(low), _finite(high)))
    count = min(max(count, 2), MAX_TICKS - 2)
    return _double_ticks(low, high, count) or _decimal_ticks(low, high, count)


def _double_ticks(low: float, high: float, count: int) -> list[float] | None:
    """The layout in doubles, or ``None`` where doubles cannot carry it."""
    lo, hi = (low - 1, high + 1) if high <= low else (low, high)
    raw = (hi - lo) / (count - 1)
    if not 0 < raw < math.inf:  # a flat series beyond ±1, or a span beyond the doubles
        return None
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), None)
    if step is None or step > _DOUBLE_MAX or not math.isfinite(lo / step):
        return None
    first = math.floor(lo / step) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-9:
        if len(ticks) == MAX_TICKS:  # e.g. a step below the spacing of doubles, where `value += step` stands still
            return None
        ticks.append(round(value, 10))
        value += step
    if ticks and ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks if _usable(ticks, low, high) else None


def _usable(ticks: list[float], low: float, high: float) -> bool:
    """2 to ``MAX_TICKS`` finite ticks, strictly increasing as doubles, covering ``[low, high]``.

    Covering up to a millionth of a step: ticks of integer steps are exact integers, which
    may lie a fraction of a double's spacing inside the values.
    """
    if not 2 <= len(ticks) <= MAX_TICKS or not all(abs(tick) <= _DOUBLE_MAX for tick in ticks):
        return False
    doubles = [float(tick) for tick in ticks]
    slack = (doubles[1] / 2 - doubles[0] / 2) * 2e-6  # halves: the difference itself could overflow
    increasing = all(a < b for a, b in pairwise(doubles))
    return increasing and doubles[0] <= low + slack and doubles[-1] >= high - slack


def _decimal_ticks(low: float, high: float, count: int) -> list[float]:
    """The same layout computed exactly (no overflow, no rounding), then rounded to doubles.

    Rounding keeps the order and the cover of ``[low, high]`` (ticks beyond the doubles
    become the largest double), so at least two distinct ticks remain.
    """
    with localcontext(prec=40):
        # The shortest decimals that round to the doubles: 1e-12 is 1e-12 here, not 9.99…e-13.
        lo, hi = Decimal(repr(low)), Decimal(repr(high))
        top = max(abs(lo), abs(hi))
        if hi - lo <= top * _RESOLUTION:  # flat, or narrower than doubles can divide evenly
            middle, half = (lo + hi) / 2, (top * _RESOLUTION / 2) or Decimal(1)
            lo, hi = middle - half, middle + half
        raw = (hi - lo) / (count - 1)
        magnitude = Decimal(1).scaleb(raw.adjusted())
        step = min(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
        first = (lo / step).to_integral_value(rounding=ROUND_FLOOR) * step
        if first > lo:  # the quotient was rounded up to a whole number (comparisons are exact)
            first -= step
        intervals = int(((hi - first) / step).to_integral_value(rounding=ROUND_CEILING))
        if first + intervals * step < hi:  # likewise the other way
            intervals += 1
        exact = [first + i * step for i in range(max(intervals, 1) + 1)]
    return sorted({_finite(float(tick)) for tick in exact})


def _time_ticks(since: datetime, until: datetime) -> list[tuple[datetime, str]]:
    """Tick times and labels: every few minutes or hours, every day or week, or every first of a month."""
    span = until - since
    local_since = timezone.localtime(since)
    if span > timedelta(days=62):
        months = 1 if span <= timedelta(days=200) else 2
        moment = local_since.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        ticks = []
        while moment <= until:
            if moment >= since and moment.month % months == 1 % months:
                ticks.append((moment, moment.strftime("%b %Y")))
            year, month = divmod(moment.month, 12)
            moment = moment.replace(year=moment.year + year, month=month + 1)
        return ticks
    if span <= timedelta(days=2):
        step, fmt = next(step for longest, step in _CLOCK_STEPS if span <= longest), "%H:%M"
    else:
        step, fmt = timedelta(days=1 if span <= timedelta(days=14) else 7), "%d %b"
    moment = local_since.replace(hour=0, minute=0, second=0, microsecond=0)  # ticks at multiples of the step
    ticks = []
    while moment <= until:
        if moment >= since:
            ticks.append((moment, moment.strftime(fmt)))
        moment += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _y_position(value: float, y_low: float, y_high: float, plot_h: int) -> float:
    """The plot's y of a finite ``value`` on the axis ``[y_low, y_high]``, kept inside the plot.

    Values outside the axis (averages of out-of-range rows are clamped in SQL while the
    band keeps the true extremes) are drawn on its edge.
    """
    if max(abs(value), abs(y_low), abs(y_high)) > _DOUBLE_MAX / 2:  # differences could overflow; halving is exact
        value, y_low, y_high = value / 2, y_low / 2, y_high / 2
    if not y_high > y_low:
        return TOP + plot_h / 2
    y = TOP + plot_h * (1 - (value - y_low) / (y_high - y_low))
    return min(float(TOP + plot_h), max(float(TOP), y))


def build_charts(series: list[Series], since: datetime, until: datetime) -> list[Chart]:
    """Lay out one chart per measurement type over ``[since, until)``."""
    by_type: dict[str, list[Series]] = {}
    for one in series:
        by_type.setdefault(one.type, []).append(one)
    span = max((until - since).total_seconds(), 1e-6)  # an empty range draws everything at its start
    charts = []
    for kind, members in by_type.items():
        units = sorted({m.unit for m in members if m.unit})
        chart = Chart(type=kind, unit=", ".join(units))
        low = min(_finite(p.min) for m in members for p in m.points)
        high = max(_finite(p.max) for m in members for p in m.points)
        values = nice_ticks(low, high)
        y_low, y_high = values[0], values[-1]
        plot_w, plot_h = chart.right - chart.left, chart.bottom - chart.top

        def x_of(moment: datetime, plot_w: int = plot_w, left: int = chart.left) -> float:
            x = left + plot_w * (moment - since).total_seconds() / span
            return min(float(left + plot_w), max(float(left), x))

        def y_of(value: float, plot_h: int = plot_h, y_low: float = y_low, y_high: float = y_high) -> float:
            return _y_position(_finite(value), y_low, y_high, plot_h)

        chart.y_ticks = [Tick(round(y_of(v), 1), _fmt(v)) for v in values]
        chart.x_ticks = [Tick(round(x_of(moment), 1), label) for moment, label in _time_ticks(since, until)]
        for index, member in enumerate(members):
            xs = [x_of(p.start) for p in member.points]
            averages = " ".join(f"{x:.1f},{y_of(p.avg):.1f}" for x, p in zip(xs, member.points, strict=True))
            upper = [f"{x:.1f},{y_of(p.max):.1f}" for x, p in zip(xs, member.points, strict=True)]
            lower = [f"{x:.1f},{y_of(p.min):.1f}" for x, p in zip(xs, member.points, strict=True)]
            chart.lines.append(
                Line(
                    name=member.series,
                    color=PALETTE[index % len(PALETTE)],
                    points=averages,
                    band=" ".join(upper + lower[::-1]),
                    last=member.points[-1].avg,
                    low=min(p.min for p in member.points),
                    high=max(p.max for p in member.points),
                    buckets=len(member.points),
                    values=sum(p.count for p in member.points),
                    dot=(round(xs[0], 1), round(y_of(member.points[0].avg), 1)) if len(xs) == 1 else None,
                )
            )
        charts.append(chart)
    return charts

"""Server-rendered SVG charts of downsampled measurements for the device page (no JavaScript).

``build_charts`` turns ``selectors.measurement_series`` output into plain geometry: one
chart per measurement type, one polyline (the bucket averages) and one min-max band per
series, axis ticks and a legend. ``templates/admin/devices/device/chart.html`` draws it,
so every label passes through the template's escaping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from devices.selectors import Series

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 60, 14, 12, 28
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
# Chart ranges offered on the device page: name -> (label, length).
RANGES: dict[str, tuple[str, timedelta]] = {
    "24h": ("24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
    "365d": ("1 year", timedelta(days=365)),
}
DEFAULT_RANGE = "24h"


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


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2 or 5 times a power of ten apart)."""
    if high <= low:
        low, high = low - 1, high + 1
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _time_ticks(since: datetime, until: datetime) -> list[tuple[datetime, str]]:
    """Tick times and labels: every few hours, every day or week, or every first of a month."""
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
        step, fmt = timedelta(hours=3 if span <= timedelta(hours=24) else 6), "%H:%M"
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


def build_charts(series: list[Series], since: datetime, until: datetime) -> list[Chart]:
    """Lay out one chart per measurement type over ``[since, until)``."""
    by_type: dict[str, list[Series]] = {}
    for one in series:
        by_type.setdefault(one.type, []).append(one)
    span = (until - since).total_seconds()
    charts = []
    for kind, members in by_type.items():
        units = sorted({m.unit for m in members if m.unit})
        chart = Chart(type=kind, unit=", ".join(units))
        low = min(p.min for m in members for p in m.points)
        high = max(p.max for m in members for p in m.points)
        values = nice_ticks(low, high)
        y_low, y_high = values[0], values[-1]
        plot_w, plot_h = chart.right - chart.left, chart.bottom - chart.top

        def x_of(moment: datetime, plot_w: int = plot_w, left: int = chart.left) -> float:
            return left + plot_w * (moment - since).total_seconds() / span

        def y_of(value: float, plot_h: int = plot_h, y_low: float = y_low, y_high: float = y_high) -> float:
            return TOP + plot_h * (1 - (value - y_low) / (y_high - y_low))

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

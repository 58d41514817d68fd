"""Validation of device payloads: all or nothing, with one error list per bad item.

Hand-written rather than DRF serializers: a batch of 1,000 measurements must validate in
about a millisecond, and these shapes are small and fixed. Every rule gives a clear
message naming the item and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from cot.text import text_problem

# Always ``fullmatch``: with ``match``, ``$`` also matches before a trailing newline, and a
# newline, tab or backslash in a name or unit would break the COPY text the ingest benchmark loads.
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
UNIT = re.compile(r"[^\x00-\x1f\x7f-\x9f\\]{0,16}")  # no control characters, no backslash
LABEL = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]{0,64}")  # a short label, e.g. a firmware version

# Measurement values are bounded to |value| <= 10**15: integers up to there are exact in a
# double, and PostgreSQL's float8 aggregates (avg keeps a sum of squares) cannot overflow
# over such values for any realistic row count, so a device cannot break its own chart.
VALUE_BOUND = 1e15
# The earliest timestamp accepted. PostgreSQL stores years before 1 that Python cannot read
# back (every page showing such a row would fail), and retention deletes old rows anyway.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# PostgreSQL text and jsonb cannot hold NUL; attributes nest at most this deep.
NUL = "\x00"
MAX_NESTING = 32


def is_label(value: object) -> bool:
    """A short label (a firmware version): text of at most 64 characters, shown as it reads.

    No control characters, line or paragraph separators, nor direction overrides
    (``cot.text``): a device cannot make its version read differently in the cockpit.
    """
    return isinstance(value, str) and LABEL.fullmatch(value) is not None and text_problem(value) is None


class PayloadError(Exception):
    """A request body that cannot be accepted; ``errors`` says why, per item where it can."""

    def __init__(self, errors: Any, status: int = 400) -> None:
        super().__init__(errors)
        self.errors = errors
        self.status = status


def parse_json(body: bytes) -> Any:
    """Strict JSON (orjson: about three times faster than the standard library on batches).

    NaN, Infinity and numbers beyond a double are refused as malformed input.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError({"detail": f"Malformed JSON: {exc}"}) from None


def as_items(payload: Any) -> list[Any]:
    """One object or a list of them, as a list."""
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        if not payload:
            raise PayloadError({"detail": "The batch is empty."})
        if len(payload) > settings.DEVICE_MAX_BATCH:
            raise PayloadError({"detail": f"At most {settings.DEVICE_MAX_BATCH} items per request."}, 413)
        return payload
    raise PayloadError({"detail": "Send one JSON object or a list of objects."})


@dataclass(frozen=True)
class Clock:
    """One request's time: the default for items without one, and the latest time accepted.

    Read once per request, not per item: a batch of 1,000 items would otherwise read the
    setting and build the bound 1,000 times.
    """

    now: datetime
    latest: datetime

    @classmethod
    def current(cls) -> Clock:
        now = timezone.now()
        return cls(now, now + timedelta(seconds=settings.DEVICE_MAX_CLOCK_SKEW_SECONDS))


def _time(value: Any, errors: dict[str, str], clock: Clock) -> datetime | None:
    if value is None:
        return clock.now
    if not isinstance(value, str):
        errors["time"] = "An ISO 8601 timestamp with time zone."
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors["time"] = f"'{value[:40]}' is not an ISO 8601 timestamp."
        return None
    if parsed.tzinfo is None:
        errors["time"] = "The timestamp needs a time zone (for example 'Z')."
        return None
    if parsed > clock.latest:
        errors["time"] = "The timestamp is too far in the future."
        return None
    if parsed < EARLIEST:
        errors["time"] = "The timestamp is before 1970-01-01T00:00:00Z."
        return None
    return parsed


def _name(item: dict[str, Any], field: str, errors: dict[str, str]) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not NAME.fullmatch(value):
        errors[field] = "1 to 64 letters, digits or . _ : -"
        return ""
    return value


def plain_text(value: Any, limit: int) -> bool:
    """A string of at most ``limit`` characters that PostgreSQL can store (no NUL)."""
    return isinstance(value, str) and len(value) <= limit and NUL not in value


def _text(item: dict[str, Any], field: str, errors: dict[str, str], limit: int = 1000) -> str:
    value = item.get(field, "")
    if not plain_text(value, limit):
        errors[field] = f"Text of at most {limit} characters, without NUL."
        return ""
    return value


def attributes_problem(attributes: Any) -> str | None:
    """Why ``attributes`` (of an event or a device) cannot be stored, or ``None``."""
    if not isinstance(attributes, dict) or not _storable_json(attributes) or len(json.dumps(attributes)) > 4096:
        return f"An object of at most 4 KiB, nested at most {MAX_NESTING} deep, without NUL."
    return None


def _storable_json(value: dict[str, Any]) -> bool:
    """No NUL in any key or string (jsonb refuses it), nested at most ``MAX_NESTING`` deep.

    Level by level rather than recursive: nesting deeper than Python's recursion limit must
    be refused, not crash.
    """
    level: list[Any] = [value]
    for _ in range(MAX_NESTING):
        nested = []
        for node in level:
            if isinstance(node, dict) and any(NUL in key for key in node):
                return False
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, str):
                    if NUL in child:
                        return False
                elif isinstance(child, dict | list):
                    nested.append(child)
        if not nested:
            return True
        level = nested
    return False


def _unknown(item: dict[str, Any], allowed: frozenset[str], errors: dict[str, str]) -> None:
    if item.keys() <= allowed:  # the usual case, checked without building a set
        return
    for key in item.keys() - allowed:
        errors[str(key)[:64]] = "Unknown field."


MEASUREMENT_FIELDS = frozenset({"time", "type", "series", "value", "unit"})
EVENT_FIELDS = frozenset({"time", "type", "text", "attributes"})
ALARM_FIELDS = frozenset({"time", "type", "severity", "text"})
SEVERITIES = frozenset({"CRITICAL", "MAJOR", "MINOR", "WARNING"})


def measurement(item: dict[str, Any], clock: Clock, errors: dict[str, str]) -> tuple[Any, ...]:
    """``(time, type, series, value, unit)``."""
    _unknown(item, MEASUREMENT_FIELDS, errors)
    value = item.get("value")
    # The comparison is exact for integers of any size and false for NaN.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -VALUE_BOUND <= value <= VALUE_BOUND:
        errors["value"] = "A number between -1e15 and 1e15 (10^15)."
    unit = item.get("unit", "")
    if not isinstance(unit, str) or not UNIT.fullmatch(unit):
        errors["unit"] = "At most 16 characters, without control characters or backslash."
    return (
        _time(item.get("time"), errors, clock),
        _name(item, "type", errors),
        _name(item, "series", errors),
        value,
        unit,
    )


def event(item: dict[str, Any], clock: Clock, errors: dict[str, str]) -> tuple[Any, ...]:
    """``(time, type, text, attributes)``."""
    _unknown(item, EVENT_FIELDS, errors)
    attributes = item.get("attributes", {})
    problem = attributes_problem(attributes)
    if problem is not None:
        errors["attributes"] = problem
    return (
        _time(item.get("time"), errors, clock),
        _name(item, "type", errors),
        _text(item, "text", errors),
        attributes,
    )


def alarm(item: dict[str, Any], clock: Clock, errors: dict[str, str]) -> tuple[Any, ...]:
    """``(time, type, severity, text)``."""
    _unknown(item, ALARM_FIELDS, errors)
    severity = item.get("severity")
    if not isinstance(severity, str) or severity not in SEVERITIES:  # {} or [] are not hashable
        errors["severity"] = f"One of {', '.join(sorted(SEVERITIES))}."
    return (_time(item.get("time"), errors, clock), _name(item, "type", errors), severity, _text(item, "text", errors))


def validate_all(
    items: list[Any], rule: Callable[[dict[str, Any], Clock, dict[str, str]], tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Validate every item; raise one ``PayloadError`` listing each bad item's problems."""
    clock = Clock.current()
    rows, problems = [], {}
    for index, item in enumerate(items):
        errors: dict[str, str] = {}
        if not isinstance(item, dict):
            problems[str(index)] = {"detail": "Each item is a JSON object."}
            continue
        row = rule(item, clock, errors)
        if errors:
            problems[str(index)] = errors
        else:
            rows.append(row)
    if problems:
        raise PayloadError({"detail": "Nothing was stored: some items are invalid.", "items": problems})
    return rows

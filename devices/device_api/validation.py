"""Validation of device payloads: all or nothing, with one error list per bad item.

Hand-written rather than DRF serializers: a batch of 1,000 measurements must validate in
about a millisecond, and these shapes are small and fixed. Every rule gives a clear
message naming the item and the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
UNIT = re.compile(r"^[^\t\n\r\\]{0,16}$")


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
    return parsed


def _name(item: dict[str, Any], field: str, errors: dict[str, str]) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not NAME.match(value):
        errors[field] = "1 to 64 letters, digits or . _ : -"
        return ""
    return value


def _text(item: dict[str, Any], field: str, errors: dict[str, str], limit: int = 1000) -> str:
    value = item.get(field, "")
    if not isinstance(value, str) or len(value) > limit:
        errors[field] = f"Text of at most {limit} characters."
        return ""
    return value


def _unknown(item: dict[str, Any], allowed: frozenset[str], errors: dict[str, str]) -> None:
    if item.keys() <= allowed:  # the usual case, checked without building a set
        return
    for key in item.keys() - allowed:
        errors[str(key)[:64]] = "Unknown field."


MEASUREMENT_FIELDS = frozenset({"time", "type", "series", "value", "unit"})
EVENT_FIELDS = frozenset({"time", "type", "text", "attributes"})
ALARM_FIELDS = frozenset({"time", "type", "severity", "text"})
SEVERITIES = frozenset({"CRITICAL", "MAJOR", "MINOR", "WARNING"})


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float, e.g. 10**400
        return False


def measurement(item: dict[str, Any], clock: Clock, errors: dict[str, str]) -> tuple[Any, ...]:
    """``(time, type, series, value, unit)``."""
    _unknown(item, MEASUREMENT_FIELDS, errors)
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        errors["value"] = "A finite number."
    unit = item.get("unit", "")
    if not isinstance(unit, str) or not UNIT.match(unit):
        errors["unit"] = "At most 16 characters."
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
    if not isinstance(attributes, dict) or len(json.dumps(attributes)) > 4096:
        errors["attributes"] = "An object of at most 4 KiB."
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
    if severity not in SEVERITIES:
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

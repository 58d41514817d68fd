"""Token-bucket rate limits in Redis: several buckets checked and charged in one round trip.

Each limit is a bucket of ``capacity`` tokens refilled evenly over ``period`` seconds
("10/s" holds 10 tokens and refills one every 0.1 s). A request passes only if every
bucket it touches has a token; then each is charged one. The Lua script runs
atomically in Redis, so concurrent workers on many machines share the limits exactly.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}

# KEYS: bucket keys. ARGV: mode, now, then capacity and period per key. Modes:
# "take" charges one token to every bucket if each has one; "peek" only looks; "charge"
# charges every bucket whatever its level (never below zero); "refund" gives one back.
# Returns 0 when allowed, else the 1-based index of the first exhausted bucket and the
# seconds until it holds a token again ("charge": the first bucket this charge emptied).
_SCRIPT = """
local mode = ARGV[1]
local now = tonumber(ARGV[2])
local states = {}
local emptied = nil
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[1 + 2 * i])
  local period = tonumber(ARGV[2 + 2 * i])
  local rate = capacity / period
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or capacity
  local at = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
  if (mode == 'take' or mode == 'peek') and tokens < 1 then
    return {i, tostring((1 - tokens) / rate)}
  end
  local left = math.max(0, tokens - 1)
  if mode == 'refund' then
    left = math.min(capacity, tokens + 1)
  end
  if emptied == nil and left < 1 then
    emptied = {i, tostring((1 - left) / rate)}
  end
  states[i] = {left, period}
end
if mode == 'peek' then
  return {0, '0'}
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', states[i][1], 'at', now)
  redis.call('EXPIRE', key, math.ceil(states[i][2]) + 1)
end
if mode == 'charge' and emptied ~= nil then
  return emptied
end
return {0, '0'}
"""


@dataclass(frozen=True)
class Limit:
    """One bucket: ``name`` is what a 429 names, ``key`` the Redis key of what it counts."""

    name: str
    key: str
    capacity: int
    period: float


@dataclass(frozen=True)
class Refusal:
    """The limit that was hit and when to retry."""

    limit: Limit
    retry_after: int

    @property
    def message(self) -> str:
        return (
            f"Rate limit '{self.limit.name}' ({self.limit.capacity} per {int(self.limit.period)} s) exceeded; "
            f"retry in {self.retry_after} s."
        )


_UNIT = re.compile(r"(\d*)\s*([a-z]+)")


def parse_rate(rate: str) -> tuple[int, float]:
    """``"10/s"`` → (10, 1.0); ``"600/min"`` → (600, 60.0); ``"5/15min"`` → (5, 900.0)."""
    count, _, unit = rate.partition("/")
    match = _UNIT.fullmatch(unit.strip().lower())
    try:
        capacity = int(count)
        if match is None:
            raise KeyError(unit)
        period = PERIODS[match[2]] * int(match[1] or 1)
    except (ValueError, KeyError):
        raise ValueError(f"Bad rate '{rate}': use N/s, N/min or N/hour (or N/15min).") from None
    if period <= 0:
        raise ValueError(f"Bad rate '{rate}': the period must be positive.")
    if capacity < 1:
        raise ValueError(f"Bad rate '{rate}': the count must be positive.")
    return capacity, period


@lru_cache(maxsize=1)
def _client() -> Any:
    return redis.Redis.from_url(settings.REDIS_URL)


@lru_cache(maxsize=1)
def _script() -> Any:
    return _client().register_script(_SCRIPT)


def _run(mode: str, limits: list[Limit]) -> Refusal | None:
    if not limits:
        return None
    args: list[Any] = [mode, time.time()]
    for limit in limits:
        args += [limit.capacity, limit.period]
    index, wait = _script()(keys=[limit.key for limit in limits], args=args)
    if int(index) == 0:
        return None
    return Refusal(limits[int(index) - 1], max(1, math.ceil(float(wait))))


def check(limits: list[Limit]) -> Refusal | None:
    """Charge one request to every bucket, or refuse naming the first exhausted one."""
    return _run("take", limits)


def peek(limits: list[Limit]) -> Refusal | None:
    """The first exhausted bucket, charging nothing (for limits on failures, checked before trying)."""
    return _run("peek", limits)


def charge(limits: list[Limit]) -> Refusal | None:
    """Charge one failure to every bucket; the first bucket this charge emptied, if any."""
    return _run("charge", limits)


def refund(limits: list[Limit]) -> None:
    """Give back the token ``check`` took (for a request that turned out not to count)."""
    _run("refund", limits)


def limits_for(scope: str, ident: Any, rates: dict[str, str]) -> list[Limit]:
    """Buckets for one subject (``device:42``) from ``{"second": "10/s", "minute": "300/min"}``."""
    return list(_limits(scope, ident, tuple(rates.items())))


@lru_cache(maxsize=8192)
def _limits(scope: str, ident: Any, rates: tuple[tuple[str, str], ...]) -> tuple[Limit, ...]:
    # Every device request asks for the same few buckets again; parse each subject's once.
    limits = []
    for window, rate in rates:
        capacity, period = parse_rate(rate)
        limits.append(Limit(f"{scope} per {window}", f"rl:{scope}:{ident}:{window}", capacity, period))
    return tuple(limits)

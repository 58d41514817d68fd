"""Schemathesis hooks and checks for the fuzz passes, imported by the ``st`` process (config ``hooks``).

The fuzzer runs in its own process, so this module must not import Django: it reads what
it needs about the seeded tenants from the JSON file named by ``COT_FUZZ_CONTEXT``,
written by the test before it starts the run (see ``runner.py``).

Four things live here:

* ``filter_case`` drops the one request that would destroy the fixture itself: revoking
  the token the fuzzer authenticates with. Every later request would then answer 401 and
  the rest of the run would test nothing. The revocation of *that* token is tested by
  hand in ``test_schemathesis.py``; other tokens stay fair game.
* ``tenant_isolation``, a check run on every response next to schemathesis' own: the
  caller must never see the other tenant's rows (no 2xx showing or naming one of its
  ids), and a request naming one of the other tenant's rows in its path must answer 404
  (or 400/403/429 where the schema documents that answer for the operation).
* ``token_in_use_accepted`` fails the run if that token is ever refused all the same.
* ``after_call`` notes which operations were sent, as the caller, at a row of the
  tenant the pass targets; the test fails if one never was, since a pass whose ids never
  hit a real row would prove nothing about it.
"""

from __future__ import annotations

import atexit
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import schemathesis

CONTEXT_ENV = "COT_FUZZ_CONTEXT"
API_PREFIX = "/api/v1/"
TOKEN_REVOKE = ("POST", "/api/v1/tokens/{id}/revoke/")
# Response keys that name a row of another collection, anywhere in a body. ``id`` is
# checked on the rows of the collection the path names only; ``type`` counts only when it
# holds an integer (alarms, events and measurements have a textual type).
REFERENCES = {
    "device": "devices",
    "devices": "devices",
    "device_id": "devices",
    "decommissioned": "devices",
    "group": "device-groups",
    "parent": "device-groups",
    "type": "device-types",
    "role": "roles",
    "user": "users",
}
# Answers a request for another tenant's row may get besides 404, if the schema documents
# them for the operation: a refused body (before the row is looked up), a refused role,
# a rate limit.
DOCUMENTED_REFUSALS = {400, 403, 429}


def _load() -> dict[str, Any]:
    path = os.environ.get(CONTEXT_ENV)
    if not path:
        return {}
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


CONTEXT = _load()
TOKEN_IN_USE = CONTEXT.get("token_in_use")
CALLER_AUTHORIZATION = CONTEXT.get("caller_authorization")
FOREIGN_IDS: dict[str, set[int]] = {name: set(ids) for name, ids in CONTEXT.get("foreign_ids", {}).items()}
FOREIGN_SLUG = CONTEXT.get("foreign_slug", "")
TARGET_IDS: dict[str, set[int]] = {name: set(ids) for name, ids in CONTEXT.get("target_ids", {}).items()}
TARGETED: set[str] = set()


def as_pk(value: Any) -> int | None:
    """The primary key Django would look up for a path value (``int()``, as ``IntegerField`` does)."""
    try:
        return int(str(value))
    except ValueError:
        return None


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Never revoke the token the fuzzer is using (see the module docstring)."""
    if (case.method.upper(), case.operation.path) != TOKEN_REVOKE:
        return True
    return as_pk((case.path_parameters or {}).get("id")) != TOKEN_IN_USE


def collection(path: str) -> str:
    """``devices`` for ``/api/v1/devices/{id}/credential/rotate/``."""
    return path[len(API_PREFIX) :].split("/", 1)[0] if path.startswith(API_PREFIX) else ""


def _ints(value: Any) -> Iterator[int]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _ints(item)


def _references(body: Any) -> Iterator[tuple[str, str, int]]:
    """``(key, collection, id)`` for every reference to a row anywhere in ``body``."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in REFERENCES:
                for pk in _ints(value):
                    yield key, REFERENCES[key], pk
            yield from _references(value)
    elif isinstance(body, list):
        for item in body:
            yield from _references(item)


def _rows(body: Any) -> list[Any]:
    """The rows of a list (paginated or not) or the one row of a detail answer."""
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        return list(body["results"])
    if isinstance(body, list):
        return body
    return [body]


def row_collection(path: str) -> str:
    """The collection whose rows a 2xx answer of ``path`` lists or shows."""
    if path.endswith("/activity/"):
        return "audit"  # a support grant's activity is audit entries
    return collection(path)


def foreign_rows_in(path: str, body: Any) -> list[str]:
    """Descriptions of the other tenant's rows that ``body`` shows or names.

    By id only: names are no proof, since schemathesis feeds values seen in earlier
    responses (including those of its probes as the other tenant) into new requests, so
    the caller may well have created a device group named like the other tenant's.
    """
    found = []
    own = row_collection(path)
    for row in _rows(body):
        if isinstance(row, dict) and as_pk(row.get("id")) in FOREIGN_IDS.get(own, set()):
            found.append(f"{own} row id={row['id']}")
    for key, target, pk in _references(body):
        if pk in FOREIGN_IDS.get(target, set()):
            found.append(f"{key}={pk} ({target} row)")
    return found


def documented_statuses(case: Any) -> set[int]:
    responses = case.operation.definition.raw.get("responses", {})
    return {int(code) for code in responses if str(code).isdigit()}


def sent_as_caller(response: Any) -> bool:
    """Whether the request carried the caller's own token (not a probe without or with a broken one)."""
    return bool(response.request.headers.get("Authorization") == CALLER_AUTHORIZATION)


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Note an operation that reached one of the target tenant's rows with the caller's token."""
    pk = as_pk((case.path_parameters or {}).get("id"))
    if (
        case.method.upper() == case.operation.method.upper()
        and pk in TARGET_IDS.get(collection(case.operation.path), set())
        and sent_as_caller(response)
    ):
        TARGETED.add(f"{case.operation.method.upper()} {case.operation.path}")


def _write_targeted() -> None:
    if CONTEXT:
        path = Path(os.environ[CONTEXT_ENV]).with_name("targeted.json")
        path.write_text(json.dumps(sorted(TARGETED)), encoding="utf-8")


atexit.register(_write_targeted)


@schemathesis.check
def token_in_use_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """The caller's token keeps working: a 401 to it means the fixture was destroyed mid-run.

    Then every later result would be a 401 and prove nothing, so the run must not pass
    (the exclusion in ``filter_case`` is meant to make this impossible).
    """
    if CONTEXT and response.status_code == 401 and sent_as_caller(response):
        raise AssertionError("The token the fuzzer uses was refused (401): something revoked or disabled it")
    return None


@schemathesis.check
def tenant_isolation(ctx: Any, response: Any, case: Any) -> bool | None:
    """Nothing of the other tenant reaches the caller; see the module docstring."""
    if not CONTEXT:
        return None
    if case.method.upper() != case.operation.method.upper():
        return None  # a probe with a method the path does not have: ``unsupported_method`` judges it
    status = response.status_code
    if 200 <= status < 300:
        try:
            body = response.json()
        except ValueError:
            body = None
        leaked = foreign_rows_in(case.operation.path, body)
        if leaked:
            raise AssertionError(
                f"A {status} answer shows tenant {FOREIGN_SLUG!r}'s data to another tenant: {', '.join(leaked)}"
            )
    target = collection(case.operation.path)
    pk = as_pk((case.path_parameters or {}).get("id"))
    if pk is None or pk not in FOREIGN_IDS.get(target, set()) or not sent_as_caller(response):
        return None
    allowed = {404} | (DOCUMENTED_REFUSALS & documented_statuses(case))
    if status not in allowed and status < 500:  # a 5xx is ``not_a_server_error``'s to report
        raise AssertionError(
            f"{case.method} on tenant {FOREIGN_SLUG!r}'s {target} row {pk} answered {status}; "
            f"expected {' or '.join(map(str, sorted(allowed)))}"
        )
    return None

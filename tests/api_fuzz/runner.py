"""One schemathesis pass: its configuration, the ``st run`` process, and its verdict.

Why the CLI in a subprocess rather than ``schema.parametrize()`` in the test process:

* The engine behind ``st run`` is the only way to get every phase (examples, coverage,
  fuzzing and *stateful* sequences over links it infers from the schema) and the checks
  that look across requests (``use_after_free``, ``ensure_resource_availability``,
  ``object_level_authorization``, ``ignored_auth``) in one bounded run; the pytest
  integration runs per-operation tests only, one pytest item each, which would also
  need the fixture seeded again per operation.
* Its report is made for reading: per failure, the check, the response and the request
  as a ``curl`` command, deduplicated across operations; a JSON summary for the
  assertion and a HAR file of every request for digging.
* Hypothesis' global state (settings profiles, its example database) and schemathesis'
  hooks stay out of the pytest process and its other tests.

Reproducible and bounded: a fixed seed, Hypothesis' derandomised mode with no example
database, one worker, a fixed number of examples per operation, a request timeout and a
wall-clock limit on the whole process. There is deliberately no ``--max-time``: with it,
schemathesis repeats fuzzing and stateful cycles until the budget is spent, so what runs
would depend on the machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from tests.api_fuzz.seed import SeededTenant

ROOT = Path(__file__).resolve().parents[2]
SEED = 20260901
# Examples per operation in the fuzzing phase (the coverage phase enumerates its own
# cases whatever this says), and scenarios and steps of the stateful phase. Chosen so one
# pass takes about 80 s on 2 cores and both together stay under 3 minutes.
MAX_EXAMPLES = 25
STATEFUL_MAX_EXAMPLES = 60
STATEFUL_MAX_STEPS = 10
REQUEST_TIMEOUT = 10.0
# A hard bound on one pass, a bit over twice what it takes here: a pass that needs longer
# fails the test (with what it printed so far) rather than stall the suite.
PASS_TIMEOUT = 180.0
# What ``positive_data_acceptance`` accepts by default for a schema-valid request; a 4xx
# the schema documents for the operation is added per operation (``operation_entries``).
DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
# What ``negative_data_rejection`` takes as a refusal of schema-violating data by default;
# a 413 or 414 (body or query too large, refused before reading) is one too where the
# schema documents it.
TOO_LARGE = ("413", "414")
DEFAULT_REJECTED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]


def _acceptance(documented: list[str]) -> dict[str, Any]:
    """The per-operation check settings: a documented 4xx may answer valid data, and 413/414 refuse invalid data."""
    return {
        "positive_data_acceptance": {"expected-statuses": DEFAULT_ACCEPTED + documented},
        "negative_data_rejection": {"expected-statuses": DEFAULT_REJECTED + [c for c in documented if c in TOO_LARGE]},
    }


# Request fields (path, query, body) that name a row, by the collection that serves it.
ID_FIELDS = {
    "device": "devices",
    "devices": "devices",
    "group": "device-groups",
    "parent": "device-groups",
    "type": "device-types",
    "role": "roles",
    "user": "users",
}


@dataclass(frozen=True)
class Server:
    """A running API server (see ``conftest.api_server``) and its log."""

    url: str
    log: Path


@dataclass
class PassResult:
    """What one ``st run`` did and found."""

    exit_code: int | None  # None: stopped at the time bound
    seconds: float
    output: str
    report: dict[str, Any]
    #: operations sent at least once, with the caller's token, at a row of the target tenant
    targeted: set[str]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return list(self.report.get("failures", []))

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.report.get("errors", []))

    def summary(self) -> str:
        """One line per failing check with the operations it failed on, then errors."""
        if self.exit_code is None:
            lines = [f"schemathesis stopped after {self.seconds:.0f} s, the time bound of a pass"]
        else:
            lines = [f"schemathesis exit code {self.exit_code} after {self.seconds:.0f} s"]
        for failure in self.failures:
            lines.append(f"- {failure['title']} [{failure['code']}] x{failure['count']}:")
            lines.extend(f"    {operation}" for operation in failure["operations"])
        lines.extend(f"- error: {error['title']} x{error['count']}" for error in self.errors)
        return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string of ASCII text is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(key)} = {_toml_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(config: dict[str, Any]) -> str:
    """The small TOML subset the configuration needs: tables, arrays of tables, inline values."""
    lines: list[str] = []

    def table(name: str, data: dict[str, Any], header: str) -> None:
        scalars = {k: v for k, v in data.items() if not _is_table(v)}
        if header:
            lines.append(header)
        lines.extend(f"{json.dumps(key)} = {_toml_value(value)}" for key, value in scalars.items())
        lines.append("")
        for key, value in data.items():
            if isinstance(value, dict) and key not in scalars:
                child = f"{name}.{json.dumps(key)}" if name else json.dumps(key)
                table(child, value, f"[{child}]")
            elif isinstance(value, list) and key not in scalars:
                child = f"{name}.{json.dumps(key)}" if name else json.dumps(key)
                for item in value:
                    table(child, item, f"[[{child}]]")

    table("", config, "")
    return "\n".join(lines)


def _is_table(value: Any) -> bool:
    return (isinstance(value, dict) and bool(value)) or (
        isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)
    )


def _id_shape(schema: dict[str, Any]) -> str | None:
    """How a field carries a row id: a number (``int``), digits in a string (``text``), or not at all."""
    if schema.get("type") == "array":
        return _id_shape(schema.get("items", {}))
    if schema.get("type") in {"integer", "number"}:
        return "int"
    if schema.get("type") == "string" and schema.get("pattern") in {"^[0-9]+$", "^\\d+$"}:
        return "text"
    return None


def dictionaries(ids: dict[str, list[int]]) -> dict[str, Any]:
    """``[dictionaries]`` of the configuration: each collection's ids, as numbers and as text."""
    found: dict[str, Any] = {}
    for collection, values in ids.items():
        found[collection] = {"values": values}
        found[f"{collection}-text"] = {"values": [str(value) for value in values]}
    return found


def _binding(collection: str, shape: str, probability: float) -> dict[str, Any]:
    return {"dictionary": collection if shape == "int" else f"{collection}-text", "probability": probability}


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _body_properties(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return {}
    properties: dict[str, Any] = _resolve(spec, content.get("schema", {})).get("properties", {})
    return {name: _resolve(spec, prop) for name, prop in properties.items()}


def operation_entries(spec: dict[str, Any], ids: dict[str, list[int]], probability: float) -> list[dict[str, Any]]:
    """``[[operations]]`` of the configuration, one per operation of ``spec``.

    * Path ``id``, and query and body fields naming a row, draw from ``ids`` (the ids of
      the tenant whose rows the pass targets) with ``probability``, otherwise they are
      generated as usual. So most requests reach a real row instead of a 404.
    * ``positive_data_acceptance`` also accepts the 4xx answers the schema documents for
      the operation: a schema-valid request may be refused only where the schema says so.
    """
    entries = []
    for path, item in spec["paths"].items():
        target = path[len("/api/v1/") :].split("/", 1)[0]
        for method, operation in item.items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            parameters: dict[str, Any] = {}
            for parameter in operation.get("parameters", []):
                parameter = _resolve(spec, parameter)
                name, location = parameter["name"], parameter["in"]
                shape = _id_shape(_resolve(spec, parameter.get("schema", {})))
                if (location, name) == ("path", "id"):
                    collection, shape = target, shape or "text"  # a path is text whatever the schema says
                else:
                    collection = ID_FIELDS.get(name, "")
                if location in {"path", "query"} and collection in ids and shape:
                    parameters[f"{location}.{name}"] = _binding(collection, shape, probability)
            for name, prop in _body_properties(spec, operation).items():
                collection, shape = ID_FIELDS.get(name, ""), _id_shape(prop)
                if collection in ids and shape:
                    key = f"body.{name}[*]" if prop.get("type") == "array" else f"body.{name}"
                    parameters[key] = _binding(collection, shape, probability)
            documented = sorted(code for code in operation.get("responses", {}) if code.startswith("4"))
            entry: dict[str, Any] = {
                # One filter only: several ``include-*`` keys select the union of what each matches.
                "include-name": f"{method.upper()} {path}",
                "checks": _acceptance(documented),
            }
            if parameters:
                entry["parameters"] = parameters
            entries.append(entry)
    return entries


def run_pass(
    *,
    name: str,
    base_url: str,
    spec: dict[str, Any],
    caller: SeededTenant,
    other: SeededTenant,
    target: SeededTenant,
    probability: float,
    workdir: Path,
) -> PassResult:
    """Fuzz every operation as ``caller``'s administrator, with ids drawn from ``target``'s rows.

    ``other`` is the tenant whose data the caller must never see (the ``tenant_isolation``
    check) and the peer of ``object_level_authorization``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    context = workdir / "context.json"
    context.write_text(
        json.dumps(
            {
                "token_in_use": caller.token_id,
                "caller_authorization": f"Bearer {caller.token}",
                "foreign_slug": other.slug,
                "foreign_ids": other.ids,
                "target_ids": target.ids,
            }
        ),
        encoding="utf-8",
    )
    wfc = workdir / "auth.json"
    identities = [
        {"name": tenant.slug, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {tenant.token}"}]}
        for tenant in (caller, other)
    ]
    wfc.write_text(json.dumps({"auth": identities}), encoding="utf-8")
    # The token the fuzzer uses may be revoked by nobody: it is not offered, and
    # ``hooks.filter_case`` drops a generated id that happens to match it.
    ids = dict(target.ids)
    ids["tokens"] = [pk for pk in ids["tokens"] if pk != caller.token_id] or ids["tokens"]
    report = workdir / "report.json"
    config: dict[str, Any] = {
        "seed": SEED,
        "workers": 1,
        "request-timeout": REQUEST_TIMEOUT,
        "hooks": "tests.api_fuzz.hooks",  # imported from PYTHONPATH (see env below)
        "color": False,
        "continue-on-failure": True,
        "cache": {"enabled": False},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {
            "stateful": {"max-steps": STATEFUL_MAX_STEPS, "generation": {"max-examples": STATEFUL_MAX_EXAMPLES}}
        },
        "auth": {"wfc": {"path": str(wfc), "user": caller.slug, "peers": [caller.slug, other.slug]}},
        "reports": {
            "json": {"enabled": True, "path": str(report)},
            "har": {"enabled": True, "path": str(workdir / "requests.har")},
        },
        "dictionaries": dictionaries({k: v for k, v in ids.items() if v}),
        "operations": operation_entries(spec, {k: v for k, v in ids.items() if v}, probability),
    }
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(to_toml(config), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config_file),
        "run",
        f"{base_url}/api/schema/?format=json",
        "--url",
        base_url,
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COT_FUZZ_CONTEXT": str(context),
        "NO_COLOR": "1",
        "COLUMNS": "160",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the fuzzer is a client; it must not need Django
    started = time.monotonic()
    exit_code: int | None
    try:
        completed = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=PASS_TIMEOUT, check=False
        )
        exit_code, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as exc:  # the process is killed; keep what it printed
        exit_code, output = None, _text(exc.stdout) + _text(exc.stderr)
    seconds = time.monotonic() - started
    (workdir / "output.txt").write_text(output, encoding="utf-8")
    data = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    targeted_file = workdir / "targeted.json"
    targeted = set(json.loads(targeted_file.read_text(encoding="utf-8"))) if targeted_file.exists() else set()
    print(f"\n===== schemathesis pass {name}: {seconds:.1f} s =====\n{output}")  # noqa: T201 (shown on failure)
    return PassResult(exit_code=exit_code, seconds=seconds, output=output, report=data, targeted=targeted)


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def row_operations(spec: dict[str, Any]) -> set[str]:
    """Every operation whose path names one row (``…/{id}/…``)."""
    return {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        if "{id}" in path
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }


# The device API's operations that the device pass leaves out, and why: rotating swaps
# the credential the pass uses (tests/devices/test_device_api.py rotates by hand).
DEVICE_EXCLUDED = ("POST /credential/rotate",)


def run_device_pass(*, base_url: str, credential: str, workdir: Path) -> PassResult:
    """Fuzz the device API (``/api/device/v1/schema``) with one device's credential: every check, bounded.

    No tenant targeting here: a device only ever reaches its own rows, whatever it sends.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    report = workdir / "report.json"
    spec_url = f"{base_url}/api/device/v1/schema"
    spec = requests.get(spec_url, timeout=30).json()
    operations = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            name = f"{method.upper()} {path}"
            documented = sorted(code for code in operation.get("responses", {}) if code.startswith("4"))
            entry: dict[str, Any] = {
                "include-name": name,
                "checks": _acceptance(documented),
            }
            if name in DEVICE_EXCLUDED:
                entry["enabled"] = False
            operations.append(entry)
    config: dict[str, Any] = {
        "seed": SEED,
        "workers": 1,
        "request-timeout": REQUEST_TIMEOUT,
        "color": False,
        "continue-on-failure": True,
        "cache": {"enabled": False},
        "headers": {"Authorization": f"Bearer {credential}"},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "reports": {"json": {"enabled": True, "path": str(report)}},
        "operations": operations,
    }
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(to_toml(config), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config_file),
        "run",
        spec_url,
        "--url",
        f"{base_url}/api/device/v1",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
    ]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    started = time.monotonic()
    exit_code: int | None
    try:
        completed = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=PASS_TIMEOUT, check=False
        )
        exit_code, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as exc:
        exit_code, output = None, _text(exc.stdout) + _text(exc.stderr)
    seconds = time.monotonic() - started
    data = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    print(f"\n===== schemathesis pass device API: {seconds:.1f} s =====\n{output}")  # noqa: T201 (shown on failure)
    return PassResult(exit_code=exit_code, seconds=seconds, output=output, report=data, targeted=set())

"""Schemathesis against a running server (gunicorn, see ``conftest.py``): every operation, every check, two tenants.

Pass 1 fuzzes the API as the administrator of a populated tenant, with ids drawn mostly
from that tenant's rows. Pass 2 sends the same operations with another tenant's
administrator token and ids drawn only from the first tenant's rows: everything must
answer 404 (or a refusal the schema documents), never a 2xx with the first tenant's data.
Both passes must be clean: no 5xx, responses as the schema describes them, no
schema-valid request refused unless the schema says why (see ``runner.py``).

The only request left out is revoking the token the fuzzer itself uses (``hooks.py``);
``test_revoking_the_token_in_use_locks_it_out`` covers it instead.

Each pass prints its duration and schemathesis' full report (shown when it fails); its
configuration, JSON report and a HAR file of every request stay in the test's tmp_path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api_fuzz.runner import PassResult, Server, row_operations, run_device_pass, run_pass
from tests.api_fuzz.seed import SeededTenant, seed_tenant

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])


def _schema(base_url: str) -> dict[str, Any]:
    response = requests.get(
        f"{base_url}/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}, timeout=30
    )
    assert response.status_code == 200, response.text[:500]
    schema: dict[str, Any] = response.json()
    return schema


# An access log line, or Django's one-line warning about a 4xx answer ("Not Found: /api/…").
ROUTINE = re.compile(r"^127\.0\.0\.1 - |^(?!Internal Server Error)[A-Z][\w ()'.,-]*: /")


def _server_errors(server: Server) -> str:
    """What the server logged besides routine lines: tracebacks of 5xx answers, mostly."""
    lines = server.log.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(line for line in lines if not ROUTINE.match(line))[-20000:]


def _assert_clean(result: PassResult, spec: dict[str, Any], server: Server) -> None:
    """The pass ran to its end, reached a real row on every row operation, and found nothing."""
    print(f"\n===== server log without the access log ({server.log}) =====\n{_server_errors(server)}")  # noqa: T201
    report = result.report
    assert report, f"{result.summary()}\nschemathesis wrote no report; its output ends:\n{result.output[-4000:]}"
    problems = []
    if not report["complete"]:
        problems.append(f"the run did not complete ({report['stop_reason']})")
    operations = report["operations"]
    if operations["tested"] != operations["total"]:
        problems.append(f"{operations['tested']} of {operations['total']} operations tested")
    untargeted = sorted(row_operations(spec) - result.targeted)
    if untargeted:
        problems.append(f"never sent at one of the target tenant's rows: {', '.join(untargeted)}")
    if result.failures or result.errors or result.exit_code != 0:
        problems.append(result.summary())
    assert not problems, "\n".join(problems)


@pytest.fixture
def tenants(transactional_db: Any) -> tuple[SeededTenant, SeededTenant]:
    return seed_tenant("acme"), seed_tenant("globex")


def test_api_conforms_to_its_schema_for_an_administrator(
    api_server: Server, tenants: tuple[SeededTenant, SeededTenant], tmp_path: Path
) -> None:
    acme, globex = tenants
    spec = _schema(api_server.url)
    result = run_pass(
        name="administrator",
        base_url=api_server.url,
        spec=spec,
        caller=acme,
        other=globex,
        target=acme,
        probability=0.6,
        workdir=tmp_path / "administrator",
    )
    _assert_clean(result, spec, api_server)


def test_another_tenant_gets_nothing_of_the_first(
    api_server: Server, tenants: tuple[SeededTenant, SeededTenant], tmp_path: Path
) -> None:
    acme, globex = tenants
    spec = _schema(api_server.url)
    result = run_pass(
        name="other tenant",
        base_url=api_server.url,
        spec=spec,
        caller=globex,
        other=acme,
        target=acme,
        probability=1.0,
        workdir=tmp_path / "other-tenant",
    )
    _assert_clean(result, spec, api_server)


def test_revoking_the_token_in_use_locks_it_out(api_server: Server) -> None:
    """The one request the fuzz leaves out: it works, and the token is refused from then on."""
    acme = seed_tenant("acme")
    auth = {"Authorization": f"Bearer {acme.token}"}
    url = f"{api_server.url}/api/v1/tokens/{acme.token_id}/revoke/"
    response = requests.post(url, headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["revoked_at"] is not None
    after = requests.get(f"{api_server.url}/api/v1/me/", headers=auth, timeout=10)
    assert after.status_code == 401
    assert requests.post(url, headers=auth, timeout=10).status_code == 401


def test_device_api_conforms_to_its_own_schema(api_server: Server, tmp_path: Path) -> None:
    """The device API's OpenAPI document (devices/device_api/openapi.py) against the server, as one device."""
    acme = seed_tenant("acme")
    result = run_device_pass(base_url=api_server.url, credential=acme.device_credential, workdir=tmp_path / "device")
    print(f"\n===== server log without the access log ({api_server.log}) =====\n{_server_errors(api_server)}")  # noqa: T201
    assert result.report, f"{result.summary()}\nno report; the output ends:\n{result.output[-4000:]}"
    assert result.report["complete"], result.report.get("stop_reason")
    assert not (result.failures or result.errors) and result.exit_code == 0, result.summary()

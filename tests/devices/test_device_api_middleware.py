"""The device API's short middleware path: what it keeps and what it leaves to the cockpit."""

import json

import pytest

from audit.models import AuditEntry
from tests.factories import device_client, make_device

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def heartbeat(client, **extra):
    return client.post("/api/device/v1/heartbeat", json.dumps({}), content_type="application/json", **extra)


def test_device_requests_skip_the_cockpit_middleware(acme):
    _, credential = make_device(acme)
    response = heartbeat(device_client(credential))
    assert response.status_code == 200
    # XFrameOptionsMiddleware (and everything after SecurityMiddleware) never saw this request...
    assert "X-Frame-Options" not in response
    # ...while the cockpit still gets the full stack.
    assert "X-Frame-Options" in device_client(credential).get("/cockpit/login/")


def test_security_headers_host_check_and_request_id_are_kept(acme, settings):
    _, credential = make_device(acme)
    response = heartbeat(device_client(credential))
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware runs first
    assert len(response["X-Request-ID"]) >= 16
    settings.ALLOWED_HOSTS = ["cot.example"]
    assert heartbeat(device_client(credential)).status_code == 400


def test_unknown_device_endpoints_are_a_json_404(acme):
    _, credential = make_device(acme)
    response = device_client(credential).get("/api/device/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such device endpoint."}


def test_device_actions_are_audited_with_the_device_and_request_id(acme):
    device, credential = make_device(acme)
    response = device_client(credential).post("/api/device/v1/credential/rotate")
    assert response.status_code == 200
    entry = AuditEntry.objects.get(event="device.credential_rotate")
    assert entry.actor_label == f"device {device.external_id} (id {device.pk})"
    assert entry.cid == response["X-Request-ID"]

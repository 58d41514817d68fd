"""``/api/v1/firmware/``: upload (hashed while streamed), drafts, release with signatures, withdraw, delete."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEntry
from devices.models import DeviceType
from devices.services.registry import do_create_device_type
from firmware import signing
from firmware.models import FirmwareImage
from firmware.services import do_add_signing_key, do_update_firmware_policy
from tests.factories import api_client, make_user
from tests.firmware.conftest import stored_files
from tests.support.api_isolation import TenantIsolationChecks

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

IMAGE = b"\x7fELF firmware bytes " * 100


def upload(client: Any, device_types: list[int], content: bytes = IMAGE, **fields: Any) -> Any:
    payload = {"file": SimpleUploadedFile("fw.bin", content), "version": "1.0.0", "device_types": device_types}
    payload.update(fields)
    return client.post("/api/v1/firmware/", payload, format="multipart")


def make_image(tenant: Any, version: str = "1.0.0", content: bytes = IMAGE) -> FirmwareImage:
    """An image uploaded through the API by a fresh administrator of ``tenant``."""
    kind = do_create_device_type(manufacturer="Maker", model=f"M-{version}", actor=None, tenant=tenant)
    response = upload(api_client(make_user(tenant)), [kind.pk], content=content, version=version)
    assert response.status_code == 201, response.content
    return FirmwareImage.objects.get(pk=response.json()["id"])


def test_upload_computes_hash_and_size_and_stores_the_bytes_once(acme_admin, sensor, firmware_dir):
    client = api_client(acme_admin)
    response = upload(client, [sensor.pk], sha256=hashlib.sha256(IMAGE).hexdigest())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    assert body["size"] == len(IMAGE)
    assert body["status"] == "draft" and body["device_types"] == [sensor.pk]
    digest = body["sha256"]
    assert stored_files(firmware_dir) == [firmware_dir / "sha256" / digest[:2] / digest[2:4] / digest]
    assert (firmware_dir / "sha256" / digest[:2] / digest[2:4] / digest).read_bytes() == IMAGE
    # The same bytes as another version: one file, two rows.
    assert upload(client, [sensor.pk], version="1.0.1").status_code == 201
    assert len(stored_files(firmware_dir)) == 1
    assert AuditEntry.objects.filter(event="firmware.upload").count() == 2


def test_a_wrong_client_hash_is_a_400_that_leaves_nothing(acme_admin, sensor, firmware_dir):
    response = upload(api_client(acme_admin), [sensor.pk], sha256="0" * 64)
    assert response.status_code == 400
    assert "nothing was stored" in response.json()["sha256"][0]
    assert not FirmwareImage.objects.exists()
    assert stored_files(firmware_dir) == []


def test_a_version_is_unique_per_device_type(acme_admin, sensor):
    client = api_client(acme_admin)
    assert upload(client, [sensor.pk]).status_code == 201
    again = upload(client, [sensor.pk], content=b"other bytes")
    assert again.status_code == 400 and "1.0.0" in again.json()["version"][0]
    other_type = do_create_device_type(manufacturer="ACME", model="Gateway", actor=None, tenant=sensor.tenant)
    assert upload(client, [other_type.pk], content=b"other bytes").status_code == 201


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"version": "1.0"}, "version"),
        ({"security_version": "-1"}, "security_version"),
        ({"device_types": []}, "device_types"),
        ({"color": "red"}, "color"),
    ],
)
def test_bad_upload_fields_are_400s_naming_the_field(acme_admin, sensor, firmware_dir, fields, field):
    payload = {"device_types": [sensor.pk], **fields}
    response = upload(api_client(acme_admin), **payload)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert stored_files(firmware_dir) == []


def test_an_empty_file_and_a_foreign_device_type_are_refused(acme_admin, sensor, globex):
    client = api_client(acme_admin)
    assert upload(client, [sensor.pk], content=b"").status_code == 400
    foreign = do_create_device_type(manufacturer="ACME", model="Sensor", actor=None, tenant=globex)
    pks = (foreign.pk, foreign.pk + 1000)
    answers = [upload(client, [pk]) for pk in pks]
    assert [a.status_code for a in answers] == [400, 400]
    # Another tenant's type is as unknown as one that exists nowhere.
    messages = [a.json()["device_types"][0].replace(str(pk), "ID") for a, pk in zip(answers, pks, strict=True)]
    assert messages[0] == messages[1] == 'Invalid pk "ID" - object does not exist.'


def test_an_upload_over_the_tenant_limit_is_413_before_it_is_read(acme, acme_admin, sensor, firmware_dir):
    do_update_firmware_policy({"max_image_bytes": 1024 * 1024}, actor=None, tenant=acme)
    response = upload(api_client(acme_admin), [sensor.pk], content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert "1048576" in response.json()["detail"]
    assert not FirmwareImage.objects.exists() and stored_files(firmware_dir) == []


def test_only_administrators_upload(acme, sensor):
    for role in ("standard", "business"):
        client = api_client(make_user(acme, role), scope="read" if role == "business" else "write")
        assert client.get("/api/v1/firmware/").status_code == 200  # the catalogue is readable
        assert upload(client, [sensor.pk]).status_code == 403
    assert not FirmwareImage.objects.exists()


def _signed(image: FirmwareImage, keypair: tuple[bytes, str], client: Any) -> dict[str, str]:
    manifest = client.get(f"/api/v1/firmware/{image.pk}/manifest/").json()
    key = do_add_signing_key(name="release", public_key=keypair[1], actor=None, tenant=image.tenant)
    return {"signature": signing.sign(keypair[0], manifest), "key_id": key.key_id}


def test_release_needs_a_valid_signature_by_an_active_key(acme_admin, keypair):
    image = make_image(acme_admin.tenant)
    client = api_client(acme_admin)
    unsigned = client.post(f"/api/v1/firmware/{image.pk}/release/", {}, format="json")
    assert unsigned.status_code == 400 and "signature" in unsigned.json()
    body = _signed(image, keypair, client)
    forged = {**body, "signature": signing.sign(signing.generate_key()[0], selectors_manifest(client, image))}
    assert client.post(f"/api/v1/firmware/{image.pk}/release/", forged, format="json").status_code == 400
    released = client.post(f"/api/v1/firmware/{image.pk}/release/", body, format="json")
    assert released.status_code == 200, released.content
    assert released.json()["status"] == "released" and released.json()["key_id"] == body["key_id"]
    image.refresh_from_db()
    assert image.manifest is not None and image.manifest["sha256"] == image.sha256
    assert image.signature == body["signature"]
    assert AuditEntry.objects.filter(event="firmware.release", object_id=str(image.pk)).exists()


def selectors_manifest(client: Any, image: FirmwareImage) -> dict[str, Any]:
    return client.get(f"/api/v1/firmware/{image.pk}/manifest/").json()


def test_a_revoked_key_signs_no_release(acme_admin, keypair):
    image = make_image(acme_admin.tenant)
    client = api_client(acme_admin)
    body = _signed(image, keypair, client)
    key_pk = client.get("/api/v1/firmware-keys/").json()["results"][0]["id"]
    assert client.post(f"/api/v1/firmware-keys/{key_pk}/revoke/").status_code == 200
    refused = client.post(f"/api/v1/firmware/{image.pk}/release/", body, format="json")
    assert refused.status_code == 400 and "key_id" in refused.json()
    assert FirmwareImage.objects.get(pk=image.pk).status == "draft"


def test_without_the_signature_policy_an_unsigned_image_is_released(acme, acme_admin):
    do_update_firmware_policy({"require_signatures": False}, actor=acme_admin)
    image = make_image(acme)
    response = api_client(acme_admin).post(f"/api/v1/firmware/{image.pk}/release/", {}, format="json")
    assert response.status_code == 200 and response.json()["key_id"] is None


def test_a_released_image_is_immutable_and_is_withdrawn_before_deletion(acme, acme_admin, firmware_dir):
    do_update_firmware_policy({"require_signatures": False}, actor=None, tenant=acme)
    image = make_image(acme)
    client = api_client(acme_admin)
    url = f"/api/v1/firmware/{image.pk}/"
    assert client.patch(url, {"release_notes": "draft notes"}, format="json").status_code == 200
    assert client.post(f"{url}release/", {}, format="json").status_code == 200
    assert client.patch(url, {"release_notes": "changed"}, format="json").status_code == 409
    assert client.post(f"{url}release/", {}, format="json").status_code == 409
    assert client.delete(url).status_code == 409
    assert client.post(f"{url}withdraw/").status_code == 200
    assert len(stored_files(firmware_dir)) == 1
    assert client.delete(url).status_code == 204
    assert stored_files(firmware_dir) == []
    assert AuditEntry.objects.filter(event="firmware.delete").exists()


def test_deleting_one_image_keeps_bytes_another_image_names(acme, acme_admin, firmware_dir):
    first, second = make_image(acme, "1.0.0"), make_image(acme, "1.0.1")
    assert first.sha256 == second.sha256
    assert api_client(acme_admin).delete(f"/api/v1/firmware/{first.pk}/").status_code == 204
    assert len(stored_files(firmware_dir)) == 1
    assert api_client(acme_admin).delete(f"/api/v1/firmware/{second.pk}/").status_code == 204
    assert stored_files(firmware_dir) == []


def test_the_manifest_names_what_the_signature_covers(acme, acme_admin):
    image = make_image(acme)
    manifest = api_client(acme_admin).get(f"/api/v1/firmware/{image.pk}/manifest/").json()
    kind = DeviceType.objects.get(pk=image.device_types.get().pk)
    assert manifest == signing.build_manifest(
        tenant="acme",
        version="1.0.0",
        security_version=0,
        sha256=image.sha256,
        size=image.size,
        device_types=[(kind.manufacturer, kind.model)],
        expires_at=None,
    )


class TestFirmwareImageIsolation(TenantIsolationChecks):
    endpoint = "/api/v1/firmware/"

    def make_object(self, tenant: Any) -> FirmwareImage:
        return make_image(tenant)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {}

    def update_payload(self) -> dict[str, Any]:
        return {"release_notes": "mine now"}

    def test_foreign_image_actions_are_404(self, two_tenants: dict[str, Any]) -> None:
        client, foreign = two_tenants["client"], two_tenants["foreign"]
        for suffix in ("manifest/",):
            assert client.get(f"{self.endpoint}{foreign.pk}/{suffix}").status_code == 404
        for suffix in ("release/", "withdraw/"):
            assert client.post(f"{self.endpoint}{foreign.pk}/{suffix}", {}, format="json").status_code == 404
        assert FirmwareImage.objects.get(pk=foreign.pk).status == "draft"


# --- what an attack review found -------------------------------------------------------------


def test_a_drafts_expiry_changes_and_is_audited(acme_admin):
    image = make_image(acme_admin.tenant)
    client = api_client(acme_admin)
    url = f"/api/v1/firmware/{image.pk}/"
    response = client.patch(url, {"expires_at": "2030-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 200, response.content
    assert client.patch(url, {"expires_at": None}, format="json").status_code == 200
    changes = [e.changes for e in AuditEntry.objects.filter(event="firmware.update").order_by("pk")]
    assert [c["expires_at"][1] for c in changes] == ["2030-01-01T00:00:00Z", None]


def test_a_session_cannot_upload_and_its_body_is_never_parsed(acme_admin, sensor, firmware_dir):
    from django.test import Client

    from tests.factories import verified_client

    session: Client = verified_client(acme_admin)
    session.handler.enforce_csrf_checks = True  # as a browser: the CSRF check would read the body
    payload = {"file": SimpleUploadedFile("fw.bin", IMAGE), "version": "1.0.0", "device_types": [sensor.pk]}
    response = session.post("/api/v1/firmware/", payload)
    assert response.status_code == 401
    assert "API token" in response.json()["detail"]
    assert not FirmwareImage.objects.exists() and stored_files(firmware_dir) == []


def test_upload_text_follows_the_text_rules_and_fields_come_once(acme_admin, sensor):
    client = api_client(acme_admin)
    sneaky = upload(client, [sensor.pk], release_notes="evil \u202e gnp.exe")
    assert sneaky.status_code == 400 and "release_notes" in sneaky.json()
    twice = client.post(
        "/api/v1/firmware/",
        {
            "file": [SimpleUploadedFile("a.bin", b"a"), SimpleUploadedFile("b.bin", b"b")],
            "version": "1.0.0",
            "device_types": [sensor.pk],
        },
        format="multipart",
    )
    assert twice.status_code == 400 and twice.json()["file"] == ["Send this field once."]
    upper = upload(client, [sensor.pk], sha256=hashlib.sha256(IMAGE).hexdigest().upper())
    assert upper.status_code == 201, upper.content
    assert not FirmwareImage.objects.exclude(pk=upper.json()["id"]).exists()


def test_the_stored_signature_is_canonical_base64(acme_admin, keypair):
    image = make_image(acme_admin.tenant)
    client = api_client(acme_admin)
    body = _signed(image, keypair, client)
    urlsafe_unpadded = body["signature"].replace("+", "-").replace("/", "_").rstrip("=")
    released = client.post(
        f"/api/v1/firmware/{image.pk}/release/", {**body, "signature": urlsafe_unpadded}, format="json"
    )
    assert released.status_code == 200, released.content
    assert FirmwareImage.objects.get(pk=image.pk).signature == body["signature"]


def test_an_expiry_before_the_year_1000_is_written_with_four_digits(acme_admin):
    image = make_image(acme_admin.tenant)
    client = api_client(acme_admin)
    client.patch(f"/api/v1/firmware/{image.pk}/", {"expires_at": "0099-01-01T00:00:00Z"}, format="json")
    assert client.get(f"/api/v1/firmware/{image.pk}/manifest/").json()["expires_at"] == "0099-01-01T00:00:00Z"


def test_known_bytes_are_written_again_like_new_ones(acme_admin, sensor, globex, monkeypatch):
    """No shortcut for bytes another tenant holds: the answer time would tell (an attack review's finding)."""
    from firmware import storage

    upload(api_client(acme_admin), [sensor.pk])
    writes: list[str] = []
    backend = storage.firmware_storage()
    original = type(backend)._save  # type: ignore[attr-defined]

    def counting_save(self: Any, name: str, content: Any) -> str:
        writes.append(name)
        return original(self, name, content)

    monkeypatch.setattr(type(backend), "_save", counting_save)
    kind = do_create_device_type(manufacturer="G", model="1", actor=None, tenant=globex)
    assert upload(api_client(make_user(globex)), [kind.pk]).status_code == 201
    assert len(writes) == 1  # written, then found a duplicate and dropped


def test_a_storage_failure_after_the_delete_is_no_500(acme, acme_admin, firmware_dir):
    image = make_image(acme)
    digest = image.sha256
    blob = firmware_dir / "sha256" / digest[:2] / digest[2:4] / digest
    # Something the storage cannot remove, even for root: a non-empty directory in its place.
    blob.unlink()
    (blob / "in-the-way").mkdir(parents=True)
    assert api_client(acme_admin).delete(f"/api/v1/firmware/{image.pk}/").status_code == 204
    assert not FirmwareImage.objects.filter(pk=image.pk).exists()

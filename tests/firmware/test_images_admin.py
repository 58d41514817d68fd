"""Cockpit: firmware images. Upload hashed while streamed (CSRF after the handler, 413 over the limit),
drafts changed, released with a signature, withdrawn, deleted; support and Standard users only look."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEntry
from firmware import selectors, signing
from firmware.models import FirmwareImage
from firmware.models.policy import MIB
from firmware.services import (
    do_add_signing_key,
    do_release_firmware_image,
    do_update_firmware_policy,
    do_upload_firmware_image,
)
from tenants.models import Role
from tests.factories import make_user
from tests.firmware.conftest import stored_files
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url
from tests.support.device_rows import make_type, messages_of, run_action

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

IMAGE = b"\x7fELF cockpit firmware " * 64


def make_image(tenant: Any, version: str = "1.0.0", content: bytes = IMAGE) -> FirmwareImage:
    """A draft of ``tenant`` uploaded through the service, for a fresh device type."""
    upload = SimpleUploadedFile("fw.bin", content)
    return do_upload_firmware_image(
        file=upload,
        sha256=hashlib.sha256(content).hexdigest(),
        version=version,
        device_types=[make_type(tenant)],
        actor=None,
        tenant=tenant,
    )


def released(tenant: Any, version: str = "1.0.0") -> FirmwareImage:
    do_update_firmware_policy({"require_signatures": False}, actor=None, tenant=tenant)
    return do_release_firmware_image(make_image(tenant, version), actor=None)


def upload_form(device_types: list[Any], content: bytes = IMAGE, **fields: Any) -> dict[str, Any]:
    return {
        "file": SimpleUploadedFile("fw.bin", content),
        "version": "1.0.0",
        "security_version": "3",
        "device_types": [t.pk for t in device_types],
        "release_notes": "Fixes the watchdog",
        "expires_at": "",
        "expected_sha256": "",
        **fields,
    }


class TestFirmwareImageAdminIsolation(AdminIsolationChecks):
    model = FirmwareImage
    foreign_keys = {"device_types": make_type}
    actions = ("withdraw",)

    def make_object(self, tenant: Any) -> FirmwareImage:
        return make_image(tenant, version=f"1.0.{tenant.pk}")

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return upload_form([make_type(tenant)], version="9.9.9")

    def search_term(self, obj: Any) -> str:
        return obj.version


def test_upload_stores_the_bytes_under_the_servers_hash(acme_admin, sensor, firmware_dir):
    client = cockpit_client(acme_admin)
    digest = hashlib.sha256(IMAGE).hexdigest()
    response = client.post(admin_url(FirmwareImage, "add"), upload_form([sensor], expected_sha256=digest.upper()))
    assert response.status_code == 302, response.content
    image = FirmwareImage.objects.get()
    assert (image.sha256, image.size, image.security_version) == (digest, len(IMAGE), 3)
    assert list(image.device_types.all()) == [sensor]
    assert image.status == FirmwareImage.Status.DRAFT and image.created_by == acme_admin
    assert stored_files(firmware_dir) == [firmware_dir / "sha256" / digest[:2] / digest[2:4] / digest]
    assert AuditEntry.objects.get(event="firmware.upload").actor == acme_admin
    # The list shows it, with its device type.
    listing = client.get(admin_url(FirmwareImage, "changelist"))
    assert image.pk in changelist_pks(listing) and str(sensor) in listing.content.decode()


def test_the_add_page_carries_the_progress_bar(acme_admin):
    page = cockpit_client(acme_admin).get(admin_url(FirmwareImage, "add")).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'id="upload-progress"' in page and "cockpit/upload_progress.js" in page


def test_a_wrong_expected_hash_is_a_form_error_and_stores_nothing(acme_admin, sensor, firmware_dir):
    response = cockpit_client(acme_admin).post(
        admin_url(FirmwareImage, "add"), upload_form([sensor], expected_sha256="0" * 64)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "nothing was stored" in errors["expected_sha256"][0]
    assert not FirmwareImage.objects.exists()
    assert stored_files(firmware_dir) == []
    assert not AuditEntry.objects.filter(event="firmware.upload").exists()


def test_a_taken_version_is_a_form_error(acme_admin, sensor):
    client = cockpit_client(acme_admin)
    assert client.post(admin_url(FirmwareImage, "add"), upload_form([sensor])).status_code == 302
    again = client.post(admin_url(FirmwareImage, "add"), upload_form([sensor], content=b"other"))
    assert again.status_code == 200
    assert "1.0.0" in again.context["adminform"].form.errors["version"][0]
    assert FirmwareImage.objects.count() == 1


@pytest.mark.parametrize("extra", [200 * 1024, 1], ids=["declared-length", "while-streaming"])
def test_an_image_over_the_tenants_limit_is_a_413_page(acme, acme_admin, sensor, firmware_dir, extra):
    do_update_firmware_policy({"max_image_bytes": MIB}, actor=None, tenant=acme)
    response = cockpit_client(acme_admin).post(
        admin_url(FirmwareImage, "add"), upload_form([sensor], content=b"x" * (MIB + extra))
    )
    assert response.status_code == 413
    assert str(MIB) in response.content.decode() and "<html" in response.content.decode().lower()
    assert not FirmwareImage.objects.exists()
    assert stored_files(firmware_dir) == []


def test_the_add_page_takes_bodies_as_large_as_firmware_may_be(acme_admin, sensor, settings):
    # Other cockpit pages stop at COT_MAX_REQUEST_BYTES / COT_MAX_UPLOAD_BYTES; this one is marked
    # for cot.body_limits with COT_MAX_FIRMWARE_BYTES (and then the tenant's own limit).
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = settings.COT_MAX_UPLOAD_BYTES = MIB
    content = b"y" * (2 * MIB)
    response = cockpit_client(acme_admin).post(admin_url(FirmwareImage, "add"), upload_form([sensor], content=content))
    assert response.status_code == 302, response.content[:300]
    assert FirmwareImage.objects.get().size == 2 * MIB
    settings.COT_MAX_FIRMWARE_BYTES = MIB
    refused = cockpit_client(acme_admin).post(
        admin_url(FirmwareImage, "add"), upload_form([sensor], content=content, version="2.0.0")
    )
    assert refused.status_code == 413 and FirmwareImage.objects.count() == 1


def test_the_upload_is_hashed_before_the_csrf_check_which_still_applies(acme_admin, sensor, firmware_dir):
    client = cockpit_client(acme_admin)
    client.handler.enforce_csrf_checks = True
    refused = client.post(admin_url(FirmwareImage, "add"), upload_form([sensor]))
    assert refused.status_code == 403
    assert not FirmwareImage.objects.exists() and stored_files(firmware_dir) == []
    page = client.get(admin_url(FirmwareImage, "add"))
    token = page.context["csrf_token"]
    accepted = client.post(admin_url(FirmwareImage, "add"), {**upload_form([sensor]), "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302, accepted.content
    assert FirmwareImage.objects.get().sha256 == hashlib.sha256(IMAGE).hexdigest()


def test_a_draft_changes_notes_expiry_and_security_version_only(acme, acme_admin):
    image = make_image(acme)
    client = cockpit_client(acme_admin)
    data = {"release_notes": "New notes", "expires_at_0": "", "expires_at_1": "", "security_version": "5"}
    response = client.post(object_url(image), data)
    assert response.status_code == 302, response.content
    image.refresh_from_db()
    assert (image.release_notes, image.security_version) == ("New notes", 5)
    entry = AuditEntry.objects.get(event="firmware.update")
    assert entry.actor == acme_admin


def test_a_released_image_is_read_only(acme, acme_admin):
    image = released(acme)
    client = cockpit_client(acme_admin)
    page = client.get(object_url(image))
    assert page.status_code == 200
    assert 'id="firmware-release"' not in page.content.decode()
    assert client.post(object_url(image), {"release_notes": "changed", "security_version": "9"}).status_code == 403
    image.refresh_from_db()
    assert image.release_notes == "" and image.security_version == 0


def test_release_with_a_valid_signature(acme, acme_admin, keypair):
    private, public = keypair
    key = do_add_signing_key(name="release", public_key=public, actor=acme_admin)
    image = make_image(acme)
    client = cockpit_client(acme_admin)
    page = client.get(object_url(image)).content.decode()
    assert 'id="firmware-manifest"' in page and 'data-copy="#firmware-manifest"' in page
    assert image.sha256 in page
    signature = signing.sign(private, selectors.manifest_for(image))
    url = reverse("cockpit:firmware_firmwareimage_release", args=[image.pk])
    response = client.post(url, {"signature": signature, "key_id": key.key_id})
    assert response.status_code == 302 and response["Location"] == object_url(image)
    assert any("Released" in text for text in messages_of(response))
    image.refresh_from_db()
    assert image.status == FirmwareImage.Status.RELEASED and image.signed_by == key
    assert AuditEntry.objects.get(event="firmware.release").actor == acme_admin


def test_release_with_a_bad_signature_is_refused(acme, acme_admin, keypair):
    key = do_add_signing_key(name="release", public_key=keypair[1], actor=acme_admin)
    image = make_image(acme)
    other_private, _ = signing.generate_key()
    bad = signing.sign(other_private, selectors.manifest_for(image))
    client = cockpit_client(acme_admin)
    url = reverse("cockpit:firmware_firmwareimage_release", args=[image.pk])
    for data in ({"signature": bad, "key_id": key.key_id}, {"signature": "", "key_id": ""}):
        response = client.post(url, data)
        assert response.status_code == 302
        assert any(text.startswith("Not released") for text in messages_of(response))
    image.refresh_from_db()
    assert image.status == FirmwareImage.Status.DRAFT
    assert client.get(url).status_code == 405


def test_withdraw_action(acme, acme_admin):
    image, draft = released(acme), make_image(acme, "2.0.0")
    response = run_action(cockpit_client(acme_admin), FirmwareImage, "withdraw", [image.pk, draft.pk])
    assert response.status_code == 302
    texts = messages_of(response)
    assert "Withdrawn: 1." in texts and any("only a released image" in text for text in texts)
    image.refresh_from_db()
    draft.refresh_from_db()
    assert image.status == FirmwareImage.Status.WITHDRAWN and draft.status == FirmwareImage.Status.DRAFT
    assert AuditEntry.objects.filter(event="firmware.withdraw").count() == 1


def test_delete_draft_but_not_released(acme, acme_admin, firmware_dir):
    client = cockpit_client(acme_admin)
    draft, image = make_image(acme), released(acme, "2.0.0")
    assert client.get(object_url(image, "delete")).status_code == 403
    assert client.post(object_url(image, "delete"), {"post": "yes"}).status_code == 403
    assert client.post(object_url(draft, "delete"), {"post": "yes"}).status_code == 302
    assert list(FirmwareImage.objects.all()) == [image]
    assert AuditEntry.objects.get(event="firmware.delete").actor == acme_admin
    assert len(stored_files(firmware_dir)) == 1  # the same bytes, still named by the released image


def test_standard_user_reads_but_writes_nothing(acme, sensor):
    image = make_image(acme)
    client = cockpit_client(make_user(acme, Role.Kind.STANDARD))
    assert image.pk in changelist_pks(client.get(admin_url(FirmwareImage, "changelist")))
    page = client.get(object_url(image))
    assert page.status_code == 200 and 'id="firmware-release"' not in page.content.decode()
    assert client.get(admin_url(FirmwareImage, "add")).status_code == 403
    assert client.post(admin_url(FirmwareImage, "add"), upload_form([sensor], version="2.0.0")).status_code == 403
    assert FirmwareImage.objects.count() == 1


def test_support_engineer_under_a_write_grant_writes_nothing(acme, sensor, support_client, firmware_dir):
    image, done = make_image(acme), released(acme, "3.0.0")
    client = support_client
    assert image.pk in changelist_pks(client.get(admin_url(FirmwareImage, "changelist")))
    assert client.get(admin_url(FirmwareImage, "add")).status_code == 403
    assert client.post(admin_url(FirmwareImage, "add"), upload_form([sensor], version="2.0.0")).status_code == 403
    assert client.post(object_url(image), {"release_notes": "x", "security_version": "1"}).status_code == 403
    release = reverse("cockpit:firmware_firmwareimage_release", args=[image.pk])
    assert client.post(release, {"signature": "", "key_id": ""}).status_code == 403
    assert client.post(object_url(image, "delete"), {"post": "yes"}).status_code == 403
    run_action(client, FirmwareImage, "withdraw", [done.pk])
    assert {i.status for i in FirmwareImage.objects.all()} == {"draft", "released"}
    assert not AuditEntry.objects.filter(event__in=["firmware.update", "firmware.withdraw", "firmware.delete"]).exists()
    assert len(stored_files(firmware_dir)) == 1

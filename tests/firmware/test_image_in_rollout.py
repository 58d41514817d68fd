"""An image a rollout uses cannot be withdrawn while the rollout is not over, nor deleted at all."""

from __future__ import annotations

from typing import Any

import pytest

from cot.exceptions import Conflict
from firmware.models import FirmwareImage
from firmware.services import (
    do_cancel_rollout,
    do_create_rollout,
    do_delete_firmware_image,
    do_withdraw_firmware_image,
)
from tests.factories import verified_client
from tests.firmware.rollout_scene import planned
from tests.firmware.test_rollout_planning import image_for

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


@pytest.fixture
def image(acme: Any, sensor: Any) -> FirmwareImage:
    return image_for(acme, sensor)


def test_an_image_of_a_draft_rollout_is_not_withdrawn(acme, image):
    do_create_rollout(image=image, name="Spring update", waves=[{}], actor=None, tenant=acme)
    with pytest.raises(Conflict, match="rollouts use it: Spring update \\(draft\\)"):
        do_withdraw_firmware_image(image, actor=None)
    image.refresh_from_db()
    assert image.status == FirmwareImage.Status.RELEASED


def test_once_the_rollout_is_over_the_image_is_withdrawn_but_never_deleted(acme, image, sensor):
    rollout = planned(image, 3, device_type=sensor)
    with pytest.raises(Conflict, match="ready"):
        do_withdraw_firmware_image(image, actor=None)
    do_cancel_rollout(rollout, actor=None)
    assert do_withdraw_firmware_image(image, actor=None).status == FirmwareImage.Status.WITHDRAWN
    with pytest.raises(Conflict, match="cannot be deleted: rollouts use it: Spring update \\(canceled\\)"):
        do_delete_firmware_image(image, actor=None)
    assert FirmwareImage.objects.filter(pk=image.pk).exists()


def test_the_api_answers_409_with_the_rollouts_named(acme, acme_admin, image):
    do_create_rollout(image=image, name="Spring update", waves=[{}], actor=None, tenant=acme)
    client = verified_client(acme_admin)
    answer = client.post(f"/api/v1/firmware/{image.pk}/withdraw/", content_type="application/json")
    assert answer.status_code == 409
    assert answer.json() == {"detail": ["Image 2.0.0 cannot be withdrawn: rollouts use it: Spring update (draft)."]}

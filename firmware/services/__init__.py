"""Every write to firmware images, signing keys, the firmware policy and rollouts.

Each ``do_*`` function checks access through ``tenants.access``, changes state and
records the audit event in one transaction; ``actor=None`` is the platform itself (a
management command). Split by subject; callers import from ``firmware.services``.
"""

from firmware.services.images import (
    do_delete_firmware_image,
    do_release_firmware_image,
    do_update_firmware_image,
    do_upload_firmware_image,
    do_withdraw_firmware_image,
)
from firmware.services.keys import do_add_signing_key, do_revoke_signing_key
from firmware.services.policy import do_update_firmware_policy
from firmware.services.rollout_actions import (
    do_advance_wave,
    do_cancel_rollout,
    do_pause_rollout,
    do_resume_rollout,
    do_retry_failed_targets,
    do_start_rollout,
)
from firmware.services.rollouts import do_create_rollout, do_plan_rollout

__all__ = [
    "do_add_signing_key",
    "do_advance_wave",
    "do_cancel_rollout",
    "do_create_rollout",
    "do_delete_firmware_image",
    "do_pause_rollout",
    "do_plan_rollout",
    "do_release_firmware_image",
    "do_resume_rollout",
    "do_retry_failed_targets",
    "do_revoke_signing_key",
    "do_start_rollout",
    "do_update_firmware_image",
    "do_update_firmware_policy",
    "do_upload_firmware_image",
    "do_withdraw_firmware_image",
]

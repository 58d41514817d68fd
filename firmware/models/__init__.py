"""The firmware app's models, one module per subject; explicit re-exports."""

from firmware.models.images import FirmwareImage, FirmwareImageType, SigningKey
from firmware.models.policy import FirmwarePolicy
from firmware.models.rollouts import Rollout, RolloutTarget, RolloutWave

__all__ = [
    "FirmwareImage",
    "FirmwareImageType",
    "FirmwarePolicy",
    "Rollout",
    "RolloutTarget",
    "RolloutWave",
    "SigningKey",
]

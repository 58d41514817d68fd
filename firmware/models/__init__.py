"""The firmware app's models, one module per subject; explicit re-exports."""

from firmware.models.images import FirmwareImage, FirmwareImageType, SigningKey
from firmware.models.policy import FirmwarePolicy
from firmware.models.rollouts import Rollout, RolloutCounter, RolloutTarget, RolloutWave

__all__ = [
    "FirmwareImage",
    "FirmwareImageType",
    "FirmwarePolicy",
    "Rollout",
    "RolloutCounter",
    "RolloutTarget",
    "RolloutWave",
    "SigningKey",
]

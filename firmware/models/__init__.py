"""The firmware app's models, one module per subject; explicit re-exports."""

from firmware.models.images import FirmwareImage, FirmwareImageType, SigningKey
from firmware.models.policy import FirmwarePolicy

__all__ = ["FirmwareImage", "FirmwareImageType", "FirmwarePolicy", "SigningKey"]

"""Access rules of the firmware app's models, registered with ``tenants.access``.

Every member of a tenant may read its firmware catalogue (images, their device types,
the public keys and the policy): nothing in it is secret, and Standard users who may
run rollouts need to see what they roll out. Only the tenant's administrators change
it, and never a support engineer, whatever the grant's scope: an image, a key or the
signature policy decides what code the whole fleet will run. Rollouts (with their waves
and device targets) follow the same rules: they decide which devices run which code.
"""

from __future__ import annotations

from tenants.access import administrators, register, tenant_readable


def register_rules() -> None:
    """The firmware app's models (called from ``FirmwareConfig.ready``)."""
    register("firmware.FirmwareImage", tenant_readable, add=administrators, support_never_writes=True)
    register("firmware.FirmwareImageType", tenant_readable, add=administrators, support_never_writes=True)
    register("firmware.SigningKey", tenant_readable, add=administrators, support_never_writes=True)
    register("firmware.FirmwarePolicy", tenant_readable, add=administrators, support_never_writes=True)
    # Rollouts decide which devices run which code: the same rules as the catalogue.
    for label in ("firmware.Rollout", "firmware.RolloutWave", "firmware.RolloutTarget", "firmware.RolloutCounter"):
        register(label, tenant_readable, add=administrators, support_never_writes=True)

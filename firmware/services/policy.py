"""A tenant's firmware policy, changed by its own administrators only."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from cot.updates import save_changes
from firmware.models import FirmwarePolicy
from tenants.access import tenant_for_add
from tenants.models import Tenant, User

POLICY_FIELDS = ("require_signatures", "max_image_bytes", "standard_users_roll_out")


@transaction.atomic
def do_update_firmware_policy(
    changes: dict[str, Any], *, actor: User | None, tenant: Tenant | None = None
) -> FirmwarePolicy:
    """Change the caller's tenant's firmware policy (its row is created on the first change)."""
    tenant = tenant_for_add(actor, FirmwarePolicy, tenant)
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "Not a firmware policy setting."))
    FirmwarePolicy.objects.get_or_create(tenant=tenant)
    policy = FirmwarePolicy.objects.select_for_update().get(tenant=tenant)
    return save_changes(policy, changes, audit_event="firmware.policy", tenant=tenant, actor=actor)

"""The rights rewrite of the incident replay (tests/tenants/test_incident_replay.py), runnable in a thread or a process.

Step 1 gives the tenant's Standard role ``view`` on every listed group, broader than
meant; step 2 narrows it to the groups it keeps and drops the user's own right. Between
the steps the rewrite pauses (``pause``), and it may fail there (``fail``: a statement
errors), as the report's slow step and parallel error did. All of it inside
``tenants.maintenance.maintenance_during``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection

from cot.database.scope import tenant_scope
from devices.models import DeviceGroup
from devices.services import do_set_device_group_rights
from tenants.maintenance import maintenance_during
from tenants.models import Role, Tenant, User


def rewrite_in_steps(
    tenant_id: int, user_id: int, every: list[int], dropped: list[int], *, pause: Callable[[], None], fail: bool
) -> None:
    """Rewrite the rights (see the module's docstring); raises if ``fail``."""
    with tenant_scope(tenant_id):  # a data migration of one tenant works in that tenant
        _rewrite(tenant_id, user_id, every, dropped, pause=pause, fail=fail)


def _rewrite(
    tenant_id: int, user_id: int, every: list[int], dropped: list[int], *, pause: Callable[[], None], fail: bool
) -> None:
    tenant = Tenant.objects.get(pk=tenant_id)
    role = Role.objects.get(tenant=tenant, kind=Role.Kind.STANDARD)
    user = User.objects.get(pk=user_id)
    with maintenance_during([tenant_id], reason="rights move to roles"):
        for group in DeviceGroup.objects.filter(pk__in=every):
            do_set_device_group_rights(group, rights=["view"], role=role, actor=None)
        pause()
        if fail:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")  # the parallel error: a statement fails mid-change
        for group in DeviceGroup.objects.filter(pk__in=dropped):
            do_set_device_group_rights(group, rights=[], role=role, actor=None)
        for group in DeviceGroup.objects.filter(pk__in=every):
            do_set_device_group_rights(group, rights=[], user=user, actor=None)

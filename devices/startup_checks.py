"""The devices app's startup check (``cot.checks.STARTUP``): the permissions rights on groups are made of."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.core import checks
from django.db import DEFAULT_DB_ALIAS, DatabaseError

from cot.checks import STARTUP, startup_checks_apply
from tenants.models import DEVICE_GROUP_RIGHTS


@checks.register(STARTUP, checks.Tags.database)
def device_group_permissions_exist(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Rights on device groups are guardian rows naming ``<right>_devicegroup``; Django creates those after migrating.

    Without them a right could be neither granted (a 500) nor read (nobody would see a
    group they were given): the process refuses to start instead.
    """
    if not startup_checks_apply(databases) or DEFAULT_DB_ALIAS not in databases:
        return []
    wanted = {f"{right}_devicegroup" for right in DEVICE_GROUP_RIGHTS}
    try:
        present = set(
            Permission.objects.filter(content_type__app_label="devices", codename__in=wanted).values_list(
                "codename", flat=True
            )
        )
    except DatabaseError as exc:
        return [checks.Error(f"Cannot read the permissions: {exc}", id="cot.E006")]
    missing = sorted(wanted - present)
    if not missing:
        return []
    return [
        checks.Error(
            f"The permissions {', '.join(missing)} do not exist, so rights on device groups can be neither "
            "granted nor read.",
            hint="Run manage.py migrate to the end: Django creates permissions after the last migration.",
            id="cot.E006",
        )
    ]

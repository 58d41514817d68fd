"""Changing tenants' roles and rights behind a closed door (data migrations, scripted repairs).

The incident this answers (docs/security.md, "Failing closed"): a migration rewrote
permissions in steps, one step was slow, a parallel error hit, and a customer saw more
than they should while the rows were half-changed. Here the tenants being changed are
closed for maintenance in a transaction of their own, committed before the change
starts, so every request from then on sees the notice and nothing else; the change runs
in one transaction; the tenants open again only after it committed or was rolled back,
so what their people see next is the whole change or none of it. If the process dies
mid-change, PostgreSQL rolls the change back and the tenants stay closed (fail closed)
until an operator ends the maintenance or the change runs again.

Use it in a data migration with ``atomic = False`` (inside one migration transaction the
maintenance would be invisible to everyone else until the end)::

    def forwards(apps, schema_editor):
        with maintenance_during(tenant_ids, reason="roles move to the new rights model"):
            ...  # the rewrite; raises to roll back

It uses the current models and services, so it belongs in migrations written against
the schema they run on (the latest ones), not in old ones replayed on a new database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction

from tenants.models import Tenant
from tenants.services import do_set_tenant_maintenance


@contextmanager
def maintenance_during(tenant_ids: Iterable[int], *, reason: str) -> Iterator[None]:
    """Close ``tenant_ids`` (committed), run the block in one transaction, then reopen what this call closed.

    Reopening restores the mode each tenant had before, but only where the tenant is
    still closed with this change's reason: an operator who changed the maintenance in
    the meantime keeps their choice. A tenant found closed with this same reason (a
    run of the same change that died) counts as open before, so running the change
    again opens it once the change is through.
    """
    if connection.in_atomic_block:
        raise RuntimeError("maintenance_during commits on its own: run it outside a transaction (atomic = False).")
    closed, reason = Tenant.Maintenance.CLOSED, reason.strip()[:200]  # as the tenant row stores it
    with transaction.atomic():
        before = {}
        for tenant in Tenant.objects.select_for_update().filter(pk__in=list(tenant_ids)):
            died_before = tenant.maintenance == closed and tenant.maintenance_reason == reason
            before[tenant.pk] = ("", "") if died_before else (tenant.maintenance, tenant.maintenance_reason)
            do_set_tenant_maintenance(tenant, closed, reason=reason)
    try:
        with transaction.atomic():
            yield
    finally:
        # Completed or rolled back: the rows are whole either way, so the door opens again.
        with transaction.atomic():
            still_ours = Tenant.objects.select_for_update().filter(
                pk__in=before, maintenance=closed, maintenance_reason=reason
            )
            for tenant in still_ours:
                mode, previous_reason = before[tenant.pk]
                do_set_tenant_maintenance(tenant, mode, reason=previous_reason)

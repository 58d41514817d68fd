"""The access layer: tenant pinning, roles, object rights, and failing closed."""

import pytest
from django.contrib.auth.models import Permission

from devices.models import Device, DeviceGroup, DeviceGroupRolePermission, DeviceGroupUserPermission
from tenants.access import can_add, limit_to_read
from tenants.models import Action, Role, Tenant, User
from tenants.services import do_set_tenant_status
from tests.factories import grant, make_device, make_group, make_user

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def visible(user, model=DeviceGroup, action=Action.VIEW):
    return set(model.objects.restrict(user, action).values_list("pk", flat=True))


def test_administrator_sees_all_groups_of_own_tenant_only(acme, globex, acme_admin):
    mine, theirs = make_group(acme), make_group(globex)
    assert visible(acme_admin) == {mine.pk}
    assert theirs.pk not in visible(acme_admin, action=Action.DELETE)


def test_standard_user_sees_only_granted_groups(acme):
    user = make_user(acme, Role.Kind.STANDARD)
    granted, other = make_group(acme), make_group(acme)
    grant(granted, ["view", "change"], user=user)
    assert visible(user) == {granted.pk}
    assert visible(user, action=Action.CHANGE) == {granted.pk}
    assert visible(user, action=Action.DELETE) == set()
    assert other.pk not in visible(user)


def test_rights_granted_to_a_role_reach_its_members(acme):
    role = Role.objects.get(tenant=acme, kind=Role.Kind.BUSINESS)
    member = make_user(acme, role)
    group = make_group(acme)
    grant(group, ["view"], role=role)
    assert visible(member) == {group.pk}


def test_business_user_never_writes_even_with_change_granted(acme):
    user = make_user(acme, Role.Kind.BUSINESS)
    group = make_group(acme)
    grant(group, ["view", "change", "delete"], user=user)
    assert visible(user) == {group.pk}
    assert visible(user, action=Action.CHANGE) == set()
    assert not can_add(user, DeviceGroup)


def test_read_only_credential_keeps_only_view(acme, acme_admin):
    group = make_group(acme)
    limit_to_read(acme_admin)
    assert visible(acme_admin) == {group.pk}
    assert visible(acme_admin, action=Action.CHANGE) == set()
    assert not can_add(acme_admin, DeviceGroup)


def test_no_rights_without_a_grant_deny_by_default(acme):
    user = make_user(acme, Role.Kind.STANDARD)
    make_group(acme)
    assert visible(user) == set()


def test_provider_superuser_and_operator_see_no_customer_rows(acme, provider):
    make_group(acme)
    operator = make_user(provider, Role.Kind.OPERATOR)
    operator.is_superuser = True
    operator.save()
    support = make_user(provider, Role.Kind.SUPPORT)
    for user in (operator, support):
        assert visible(user) == set()
        assert set(User.objects.restrict(user, Action.VIEW).values_list("tenant", flat=True)) <= {provider.pk}
    # Operators manage tenants themselves (not their data).
    assert acme.pk in set(Tenant.objects.restrict(operator, Action.CHANGE).values_list("pk", flat=True))
    assert set(Tenant.objects.restrict(support, Action.VIEW).values_list("pk", flat=True)) == {provider.pk}


def test_suspended_tenant_sees_nothing(acme, acme_admin):
    make_group(acme)
    do_set_tenant_status(acme, Tenant.Status.SUSPENDED)
    acme_admin.refresh_from_db()
    assert visible(acme_admin) == set()


def test_user_without_role_sees_nothing(acme, acme_admin):
    make_group(acme)
    User.objects.filter(pk=acme_admin.pk).update(role=None)
    acme_admin.refresh_from_db()
    assert visible(acme_admin) == set()


def test_half_applied_migration_fails_closed(acme, globex, rows_past_the_constraints):
    """The report's incident: rights rows that point across tenants grant nothing.

    A user whose role row still points at another tenant's role, or a right whose group
    was moved to another tenant, must not widen anyone's access.
    """
    user = make_user(acme, Role.Kind.STANDARD)
    group = make_group(acme)
    grant(group, ["view"], user=user)
    # Role switched to another tenant's administrator role mid-migration:
    foreign_admin = Role.objects.get(tenant=globex, kind=Role.Kind.ADMINISTRATOR)
    User.objects.filter(pk=user.pk).update(role=foreign_admin)
    user.refresh_from_db()
    assert visible(user) == set()
    assert visible(user, model=User) == set()
    # A custom role with a stored right it may not have, e.g. a bogus value: ignored.
    User.objects.filter(pk=user.pk).update(role=Role.objects.get(tenant=acme, kind=Role.Kind.STANDARD))
    user.refresh_from_db()
    DeviceGroup.objects.filter(pk=group.pk).update(tenant=globex)
    assert visible(user) == set()
    # A device of this tenant left in another tenant's group, whose right rows name this
    # user and their role (half-copied): the device stays out of reach, the group too.
    foreign_group = make_group(globex)
    device, _ = make_device(acme)
    Device.objects.filter(pk=device.pk).update(group=foreign_group)
    view = Permission.objects.get(content_type__app_label="devices", codename="view_devicegroup")
    DeviceGroupUserPermission.objects.create(content_object=foreign_group, user=user, permission=view)
    role = Role.objects.get(tenant=acme, kind=Role.Kind.STANDARD)
    DeviceGroupRolePermission.objects.create(content_object=foreign_group, group=role.group, permission=view)
    assert visible(user, model=Device) == set()
    assert foreign_group.pk not in visible(user)


def test_builtin_role_rights_come_from_code_not_the_database(acme):
    business = Role.objects.get(tenant=acme, kind=Role.Kind.BUSINESS)
    Role.objects.filter(pk=business.pk).update(rights=["view", "change", "delete"])
    user = make_user(acme, business)
    group = make_group(acme)
    grant(group, ["view", "change"], user=user)
    assert visible(user, action=Action.CHANGE) == set()


def test_custom_role_rights_limit_what_grants_give(acme):
    from tenants.services import do_create_role

    viewer = do_create_role(name="Viewers", rights=["view"], actor=None, tenant=acme)
    user = make_user(acme, viewer)
    group = make_group(acme)
    grant(group, ["view", "change"], user=user)
    assert visible(user) == {group.pk}
    assert visible(user, action=Action.CHANGE) == set()


def test_rights_change_atomically(acme):
    user = make_user(acme, Role.Kind.STANDARD)
    group = make_group(acme)
    grant(group, ["view"], user=user)
    with pytest.raises(Exception, match="Unknown rights"):
        grant(group, ["change", "fly"], user=user)
    assert visible(user) == {group.pk}


def test_other_tenants_user_cannot_be_granted(acme, globex):
    stranger = make_user(globex, Role.Kind.STANDARD)
    with pytest.raises(Exception, match="Unknown user"):
        grant(make_group(acme), ["view"], user=stranger)


def test_operators_set_quotas_and_administrators_set_policy(acme, acme_admin, provider):
    from django.core.exceptions import PermissionDenied

    from tenants.services import do_update_tenant_policy

    operator = make_user(provider, Role.Kind.OPERATOR)
    do_update_tenant_policy(acme, {"rate_limits": {"device": {"second": "50/s"}}}, actor=operator)
    with pytest.raises(PermissionDenied, match="require_2fa"):
        do_update_tenant_policy(acme, {"require_2fa": False}, actor=operator)
    do_update_tenant_policy(acme, {"session_idle_minutes": 15}, actor=acme_admin)
    with pytest.raises(PermissionDenied, match="rate_limits"):
        do_update_tenant_policy(acme, {"rate_limits": {}}, actor=acme_admin)
    acme.refresh_from_db()
    assert (acme.require_2fa, acme.session_idle_minutes) == (True, 15)
    assert acme.rate_limits == {"device": {"second": "50/s"}}

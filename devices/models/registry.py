"""The device registry. Device groups carry the per-object rights that devices inherit."""

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from tenants.models import Tenant
from tenants.querysets import TenantQuerySet


class DeviceGroup(models.Model):
    """A set of devices; the unit on which Standard and Business users are granted rights."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="device_groups")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="devices_group_unique_name")]

    def __str__(self) -> str:
        return self.name


class DeviceGroupUserPermission(UserObjectPermissionBase):
    """Guardian's direct foreign-key table: a right on one group granted to one user."""

    content_object = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, related_name="user_permissions")


class DeviceGroupRolePermission(GroupObjectPermissionBase):
    """Guardian's direct foreign-key table: a right on one group granted to a role's group."""

    content_object = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, related_name="role_permissions")

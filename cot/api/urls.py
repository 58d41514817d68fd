"""``/api/v1/``: one router for every app's endpoints."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from audit.api.views import AuditEntryViewSet
from devices.api.views import (
    AlarmViewSet,
    DeviceGroupViewSet,
    DeviceRegistrationViewSet,
    DeviceTypeViewSet,
    DeviceViewSet,
    EventViewSet,
    MeasurementViewSet,
    OperationViewSet,
)
from tenants.api.support import SupportGrantViewSet
from tenants.api.views import ApiTokenViewSet, MeView, RoleViewSet, UserViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("users", UserViewSet, basename="user")
router.register("roles", RoleViewSet, basename="role")
router.register("tokens", ApiTokenViewSet, basename="apitoken")
router.register("device-groups", DeviceGroupViewSet, basename="devicegroup")
router.register("device-types", DeviceTypeViewSet, basename="devicetype")
router.register("devices", DeviceViewSet, basename="device")
router.register("registrations", DeviceRegistrationViewSet, basename="deviceregistration")
router.register("measurements", MeasurementViewSet, basename="measurement")
router.register("events", EventViewSet, basename="event")
router.register("alarms", AlarmViewSet, basename="alarm")
router.register("operations", OperationViewSet, basename="operation")
router.register("audit", AuditEntryViewSet, basename="auditentry")
router.register("support-grants", SupportGrantViewSet, basename="supportgrant")

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    path("", include(router.urls)),
]

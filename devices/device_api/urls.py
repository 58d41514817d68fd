"""``/api/device/v1/``: only device credentials authenticate here.

Higher apps (firmware) add their device endpoints through ``devices.device_api.routes``;
this module is first imported after every app is ready, so they are all here.
"""

from django.urls import path

from devices.device_api import openapi, routes, views

urlpatterns = [
    path("schema", openapi.schema_view, name="device-schema"),
    path("register", views.register, name="device-register"),
    path("measurements", views.measurements, name="device-measurements"),
    path("events", views.events, name="device-events"),
    path("alarms", views.alarms, name="device-alarms"),
    path("location", views.location, name="device-location"),
    path("heartbeat", views.heartbeat, name="device-heartbeat"),
    path("operations", views.pending_operations, name="device-operations"),
    path("operations/<int:operation_id>", views.operation_status, name="device-operation-status"),
    path("credential/rotate", views.rotate_credential, name="device-credential-rotate"),
]

urlpatterns += routes.patterns

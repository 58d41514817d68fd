"""API exceptions that the permission class raises (no import of DRF's views: settings load it)."""

from rest_framework import exceptions, status


class MaintenanceError(exceptions.APIException):
    """503: the caller's tenant is closed for maintenance; the answer says so and when to retry."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "tenant_maintenance"
    #: DRF's handler answers ``Retry-After`` with this many seconds
    wait = 60

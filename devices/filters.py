"""Filters of the device and payload lists (API and cockpit)."""

from typing import Any

import django_filters

from cot.api.filters import IdFilter, ScopedFilterSet, StrictBooleanFilter, StrictDateTimeFilter
from devices.models import Alarm, Device, Event, Measurement, Operation
from devices.selectors import filter_online


class DeviceFilter(ScopedFilterSet):
    """Group, type, status, firmware version, online, and a search over id and name."""

    online = StrictBooleanFilter(method="filter_online")
    search = django_filters.CharFilter(method="filter_search")

    class Meta:
        model = Device
        fields = ["group", "type", "status", "firmware_version", "online", "search"]

    def filter_online(self, queryset: Any, name: str, value: bool) -> Any:
        return filter_online(queryset, value)

    def filter_search(self, queryset: Any, name: str, value: str) -> Any:
        from django.db.models import Q

        return queryset.filter(Q(external_id__icontains=value) | Q(name__icontains=value))


class _PayloadFilter(ScopedFilterSet):
    device = IdFilter(field_name="device_id")
    type = django_filters.CharFilter()
    since = StrictDateTimeFilter(field_name="time", lookup_expr="gte")
    until = StrictDateTimeFilter(field_name="time", lookup_expr="lt")


class MeasurementFilter(_PayloadFilter):
    """Device, type, series and time range."""

    series = django_filters.CharFilter()

    class Meta:
        model = Measurement
        fields = ["device", "type", "series", "since", "until"]


class EventFilter(_PayloadFilter):
    """Device, type and time range."""

    class Meta:
        model = Event
        fields = ["device", "type", "since", "until"]


class AlarmFilter(ScopedFilterSet):
    """Device, type, severity, status and last-time range."""

    device = IdFilter(field_name="device_id")
    since = StrictDateTimeFilter(field_name="last_time", lookup_expr="gte")
    until = StrictDateTimeFilter(field_name="last_time", lookup_expr="lt")

    class Meta:
        model = Alarm
        fields = ["device", "type", "severity", "status", "since", "until"]


class OperationFilter(ScopedFilterSet):
    """Device and status."""

    class Meta:
        model = Operation
        fields = ["device", "status", "kind"]

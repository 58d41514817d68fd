"""Filters on the audit trail for the API (its list and its export); the cockpit filters through its changelist."""

import django_filters

from audit.models import AuditEntry
from cot.api.filters import ScopedFilterSet, StrictDateTimeFilter


class AuditEntryFilter(ScopedFilterSet):
    """``event``, ``actor`` (label contains), ``since``/``until`` and the object."""

    event = django_filters.CharFilter(field_name="event", lookup_expr="startswith")
    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="icontains")
    since = StrictDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = StrictDateTimeFilter(field_name="timestamp", lookup_expr="lt")
    object_type = django_filters.CharFilter(field_name="content_type__model")
    object_pk = django_filters.CharFilter(field_name="object_pk")

    class Meta:
        model = AuditEntry
        fields = ["event", "actor", "since", "until", "object_type", "object_pk"]

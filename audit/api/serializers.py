"""API representation of audit entries."""

from typing import Any

from rest_framework import serializers

from audit.export import EXPORT_FIELDS
from audit.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer[Any]):
    """One entry of the caller's tenant trail."""

    object_type = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = list(EXPORT_FIELDS)
        read_only_fields = fields

    def get_object_type(self, entry: AuditEntry) -> str | None:
        return entry.content_type.model if entry.content_type_id else None

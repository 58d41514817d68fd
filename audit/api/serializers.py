"""API representation of audit entries."""

from typing import Any

from rest_framework import serializers

from audit.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer[Any]):
    """One entry of the caller's tenant trail."""

    object_type = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "seq",
            "timestamp",
            "event",
            "actor_kind",
            "actor_label",
            "object_type",
            "object_pk",
            "object_repr",
            "changes",
            "additional_data",
            "remote_addr",
            "cid",
            "entry_hash",
        ]
        read_only_fields = fields

    def get_object_type(self, entry: AuditEntry) -> str | None:
        return entry.content_type.model if entry.content_type_id else None

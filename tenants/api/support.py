"""Support grants over the API: customer administrators create, list, revoke and review them."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.serializers import AuditEntrySerializer
from audit.models import AuditEntry
from cot.api.serializers import StrictModelSerializer
from cot.api.views import ReadCreateViewSet
from tenants import services
from tenants.models import Action, SupportGrant


class SupportGrantSerializer(StrictModelSerializer):
    """A grant; ``link`` appears once, in the response that creates it."""

    engineer = serializers.EmailField(source="engineer_email", required=False, allow_blank=True)
    bound_engineer = serializers.EmailField(source="engineer.email", read_only=True, default=None, allow_null=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    status = serializers.CharField(read_only=True)
    device_groups = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=1000,
        help_text="Ids of device groups the grant is limited to (their devices and data); empty: the whole tenant.",
    )

    class Meta:
        model = SupportGrant
        fields = [
            "id",
            "duration_hours",
            "scope",
            "device_groups",
            "reason",
            "engineer",
            "bound_engineer",
            "status",
            "created_by",
            "created_at",
            "expires_at",
            "bound_at",
            "revoked_at",
        ]
        read_only_fields = ["created_at", "expires_at", "bound_at", "revoked_at"]
        # The caller says how long (1 to 24 hours): no default, least of all the longest.
        extra_kwargs = {"duration_hours": {"required": True}}

    def create(self, validated_data: dict[str, Any]) -> SupportGrant:
        grant, link = services.do_create_support_grant(actor=self.actor, **validated_data)
        grant.link = link  # type: ignore[attr-defined]
        return grant

    def to_representation(self, instance: SupportGrant) -> dict[str, Any]:
        data = super().to_representation(instance)
        link = getattr(instance, "link", None)
        if link:
            data["link"] = link
        return data


class SupportGrantViewSet(ReadCreateViewSet):
    """Grants of the caller's tenant (administrators only). Expiry is fixed; revoke ends access at once."""

    queryset = SupportGrant.objects.select_related("engineer", "created_by").all()
    serializer_class = SupportGrantSerializer

    @extend_schema(request=None, responses=SupportGrantSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def revoke(self, request: Request, pk: Any = None) -> Response:
        grant = services.do_revoke_support_grant(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(grant).data)

    @extend_schema(responses=AuditEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def activity(self, request: Request, pk: Any = None) -> Response:
        """Everything the engineer did under this grant, newest first."""
        grant = self.get_object()
        entries = AuditEntry.objects.restrict(request.user, Action.VIEW).filter(support_grant_id=grant.pk)
        page = self.paginate_queryset(entries.select_related("content_type"))
        serializer = AuditEntrySerializer(page, many=True)
        return self.get_paginated_response(serializer.data)

"""``/api/v1/notification-rules/``: the tenant's administrators manage rules and read their deliveries."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cot.api.views import ModelViewSet
from notifications import services
from notifications.api.serializers import DeliverySerializer, NotificationRuleSerializer
from notifications.models import Delivery, NotificationRule
from tenants.models import Action


class NotificationRuleViewSet(ModelViewSet):
    """Rules of the caller's tenant (administrators). A webhook rule's ``secret`` is in the answer that makes it."""

    queryset = NotificationRule.objects.all()
    serializer_class = NotificationRuleSerializer
    filterset_fields = ["channel", "enabled"]

    def perform_destroy(self, instance: NotificationRule) -> None:
        services.do_delete_notification_rule(instance, actor=self.actor)

    @extend_schema(request=None, responses=NotificationRuleSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret", access_action=Action.CHANGE)
    def rotate_secret(self, request: Request, pk: Any = None) -> Response:
        """A new signing secret (in this answer only); the old one stops signing at once."""
        rule, secret = services.do_rotate_webhook_secret(self.get_object(), actor=self.actor)
        rule.secret = secret  # type: ignore[attr-defined]
        return Response(self.get_serializer(rule).data)

    @extend_schema(responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: Any = None) -> Response:
        """The rule's deliveries, newest first, with each one's attempts and last response code."""
        rule = self.get_object()
        rows = Delivery.objects.restrict(request.user, Action.VIEW).filter(rule=rule.pk)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

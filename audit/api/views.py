"""The tenant's audit trail over the API, with filters and CSV/JSON export."""

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request

from audit.api.serializers import AuditEntrySerializer
from audit.export import EXPORT_FORMATS, ExportUnavailable, export_response
from audit.filters import AuditEntryFilter
from audit.models import AuditEntry
from cot.api.views import TenantScopedViewSet


class ServiceUnavailable(APIException):
    """503: the trail could not be read; retry later."""

    status_code = 503
    default_code = "unavailable"


class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Administrators read their own tenant's trail; nobody reads another's."""

    queryset = AuditEntry.objects.select_related("content_type").all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter

    @extend_schema(
        parameters=[OpenApiParameter("file_format", OpenApiTypes.STR, enum=list(EXPORT_FORMATS))],
        responses={
            (200, "application/json"): AuditEntrySerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
            503: OpenApiResponse(description="The trail could not be read; nothing was sent. Try again."),
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)  # the whole selection, streamed
    def export(self, request: Request, *args: Any, **kwargs: Any) -> StreamingHttpResponse:
        """Download the filtered trail as CSV or JSON (``?file_format=csv``)."""
        fmt = request.query_params.get("file_format", "csv")
        if fmt not in EXPORT_FORMATS:
            raise ValidationError({"file_format": f"Choose one of: {', '.join(EXPORT_FORMATS)}."})
        queryset = self.filter_queryset(self.get_queryset())
        try:
            return export_response(queryset, fmt, "audit-trail")
        except ExportUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc

"""The tenant's audit trail over the API, with filters and CSV/JSON export."""

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from audit.api.serializers import AuditEntrySerializer
from audit.export import EXPORT_FORMATS, export_response
from audit.filters import AuditEntryFilter
from audit.models import AuditEntry
from cot.api.views import TenantScopedViewSet


class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Administrators read their own tenant's trail; nobody reads another's."""

    queryset = AuditEntry.objects.select_related("content_type").all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter

    @extend_schema(
        parameters=[OpenApiParameter("file_format", OpenApiTypes.STR, enum=list(EXPORT_FORMATS))],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, "application/json"): OpenApiTypes.BINARY},
    )
    @action(detail=False, methods=["get"])
    def export(self, request: Request, *args: Any, **kwargs: Any) -> StreamingHttpResponse:
        """Download the filtered trail as CSV or JSON (``?file_format=csv``)."""
        fmt = request.query_params.get("file_format", "csv")
        if fmt not in EXPORT_FORMATS:
            raise ValidationError({"file_format": f"Choose one of: {', '.join(EXPORT_FORMATS)}."})
        queryset = self.filter_queryset(self.get_queryset())
        return export_response(queryset, fmt, "audit-trail")

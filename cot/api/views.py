"""The one base for every API view: access-layer querysets, write checks and named throttles."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, mixins, viewsets
from rest_framework.request import Request
from rest_framework.views import APIView

from cot.api.actions import access_action
from tenants.models import User


class NamedThrottleMixin:
    """A 429 that names the limit that was hit, with ``Retry-After``."""

    def check_throttles(self, request: Request) -> None:
        for throttle in self.get_throttles():  # type: ignore[attr-defined]
            if not throttle.allow_request(request, self):
                raise exceptions.Throttled(wait=throttle.wait(), detail=throttle.detail)


class CotAPIView(NamedThrottleMixin, APIView):
    """Base for API views that are not about one model."""


class TenantScopedViewSet(NamedThrottleMixin, viewsets.GenericViewSet[Any]):
    """Base viewset: the queryset is always ``restrict``-ed for the request's action.

    Subclasses set ``queryset`` to the unrestricted manager's queryset and implement
    writes by calling ``services``. Objects outside reach are simply not in the
    queryset, so detail, update and delete answer 404 for them. An ``@action`` may
    declare ``access_action`` when its HTTP method does not say what it does.
    """

    access_action: str | None = None
    # Every primary key is an integer: anything else in its place is an unknown URL (404),
    # never a value a view or service has to parse.
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> Any:
        qs: Any = super().get_queryset()
        return qs.restrict(self.request.user, access_action(self, self.request))

    @property
    def actor(self) -> User:
        """The authenticated caller (the permission class has already refused anyone else)."""
        user = self.request.user
        assert isinstance(user, User)
        return user


class ReadCreateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, TenantScopedViewSet):
    """List, read and create."""


class ModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantScopedViewSet,
):
    """Full CRUD; ``perform_destroy`` must be overridden to call a service."""

    def perform_destroy(self, instance: Any) -> None:
        raise NotImplementedError("Deletes go through services.")

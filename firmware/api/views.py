"""API endpoints for firmware images, signing keys and the firmware policy."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from cot.api.views import CotAPIView, ModelViewSet, ReadCreateViewSet
from cot.body_limits import accepts_uploads
from firmware import selectors, services, uploads
from firmware.api.serializers import (
    FirmwareImageSerializer,
    FirmwarePolicySerializer,
    FirmwareReleaseSerializer,
    FirmwareUploadSerializer,
    RolloutCreateSerializer,
    RolloutPreviewQuerySerializer,
    RolloutPreviewSerializer,
    RolloutSerializer,
    SigningKeySerializer,
)
from firmware.models import FirmwareImage, FirmwarePolicy, Rollout, SigningKey
from tenants.access import require_caller
from tenants.api.authentication import ApiTokenAuthentication
from tenants.models import Action


class FirmwareImageViewSet(ModelViewSet):
    """Firmware images of the caller's tenant; administrators upload, release, withdraw and delete them.

    Uploading is ``multipart/form-data`` (the file streams to disk while its SHA-256 is
    computed). A draft is released with ``/release/``: sign its ``/manifest/`` offline
    (``manage.py sign_firmware``) and send the signature with the key's id.
    """

    queryset = FirmwareImage.objects.select_related("signed_by").prefetch_related("device_types")
    serializer_class = FirmwareImageSerializer
    filterset_fields = ["status", "version"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if self.action == "create":
            # After authentication, before the body is parsed: the tenant's limit is known now.
            caller = require_caller(request.user)
            limit = min(int(settings.COT_MAX_FIRMWARE_BYTES), selectors.policy_for(caller.tenant).max_image_bytes)
            # Both refuse with 413 (uploads.FileTooLarge): by the declared length, or mid-stream.
            uploads.check_declared_length(request._request, limit)
            uploads.use_hashing_uploads(request._request, limit)

    def _action_name(self) -> str | None:
        # DRF asks for parsers and authenticators before it sets self.action, but the
        # viewset's view has already set self.request.
        request = getattr(self, "request", None)
        method = (getattr(request, "method", None) or "").lower()
        return getattr(self, "action", None) or getattr(self, "action_map", {}).get(method)

    def get_authenticators(self) -> list[Any]:
        # Uploads come with an API token only. A session's CSRF check would read the body
        # during authentication, before the hashing handler and the tenant's limit are in
        # place (and before anyone is refused); the cockpit has its own upload page.
        if self._action_name() == "create":
            return [ApiTokenAuthentication()]
        return super().get_authenticators()

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> NoReturn:
        if self._action_name() == "create" and request.successful_authenticator is None:
            raise exceptions.NotAuthenticated(
                "Upload firmware with an API token (Authorization: Bearer …), or on the cockpit's upload page."
            )
        super().permission_denied(request, message, code)

    def get_parsers(self) -> list[Any]:
        # Only the upload takes form data; everything else is JSON like the rest of the API.
        return [MultiPartParser()] if self._action_name() == "create" else [JSONParser()]

    @extend_schema(
        request={"multipart/form-data": FirmwareUploadSerializer},
        responses={201: FirmwareImageSerializer},
        description="Upload an image with an API token (a cockpit session uploads on the cockpit's page). "
        "Send Content-Length: a body of unknown length is refused with 411.",
    )
    @accepts_uploads(limit_setting="COT_MAX_FIRMWARE_BYTES")  # this action alone: cot.body_limits
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        upload = FirmwareUploadSerializer(data=request.data, context=self.get_serializer_context())
        upload.is_valid(raise_exception=True)
        data = dict(upload.validated_data)
        file = data.pop("file")
        image = services.do_upload_firmware_image(
            file=file,
            sha256=file.sha256,
            expected_sha256=data.pop("sha256", None),
            actor=self.actor,
            **data,
        )
        return Response(self.get_serializer(image).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: FirmwareImage) -> None:
        services.do_delete_firmware_image(instance, actor=self.actor)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def manifest(self, request: Request, pk: Any = None) -> Response:
        """The manifest a signature covers (RFC 8785 canonical JSON is what gets signed)."""
        return Response(selectors.manifest_for(self.get_object()))

    @extend_schema(request=FirmwareReleaseSerializer, responses=FirmwareImageSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def release(self, request: Request, pk: Any = None) -> Response:
        """Release a draft; it is immutable from now on."""
        image = self.get_object()
        body = FirmwareReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        released = services.do_release_firmware_image(image, actor=self.actor, **body.validated_data)
        return Response(self.get_serializer(released).data)

    @extend_schema(request=None, responses=FirmwareImageSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def withdraw(self, request: Request, pk: Any = None) -> Response:
        """Stop offering a released image."""
        return Response(
            self.get_serializer(services.do_withdraw_firmware_image(self.get_object(), actor=self.actor)).data
        )


class SigningKeyViewSet(ReadCreateViewSet):
    """The Ed25519 public keys that sign the tenant's firmware; administrators add and revoke them."""

    queryset = SigningKey.objects.all()
    serializer_class = SigningKeySerializer
    filterset_fields = ["key_id"]

    @extend_schema(request=None, responses=SigningKeySerializer)
    @action(detail=True, methods=["post"], access_action=Action.DELETE)
    def revoke(self, request: Request, pk: Any = None) -> Response:
        """No new release may be signed by this key; what it signed stays released."""
        return Response(self.get_serializer(services.do_revoke_signing_key(self.get_object(), actor=self.actor)).data)


class FirmwarePolicyView(CotAPIView):
    """The caller's tenant's firmware policy (the defaults until an administrator changes it)."""

    queryset = FirmwarePolicy.objects.all()

    @extend_schema(responses=FirmwarePolicySerializer)
    def get(self, request: Request) -> Response:
        return Response(FirmwarePolicySerializer(selectors.policy_for(require_caller(request.user).tenant)).data)

    @extend_schema(request=FirmwarePolicySerializer, responses=FirmwarePolicySerializer)
    def patch(self, request: Request) -> Response:
        body = FirmwarePolicySerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        policy = services.do_update_firmware_policy(dict(body.validated_data), actor=require_caller(request.user).user)
        return Response(FirmwarePolicySerializer(policy).data)


class RolloutViewSet(ReadCreateViewSet):
    """Staged rollouts of a released image: administrators create a draft, preview its reach and plan it.

    Planning assigns every matching device the planner may change to a wave (``ready``),
    or ends in ``plan_failed`` with the reason. Starting a rollout is not in the API yet.
    """

    queryset = Rollout.objects.prefetch_related("waves")  # in index order (RolloutWave.Meta.ordering)
    serializer_class = RolloutSerializer
    filterset_fields = ["status"]

    @extend_schema(request=RolloutCreateSerializer, responses={201: RolloutSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a draft rollout (administrators); the image must be a released image of your tenant."""
        body = RolloutCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        waves = [dict(wave) for wave in data.pop("waves")]
        rollout = services.do_create_rollout(actor=self.actor, waves=waves, **data)
        return Response(self.get_serializer(self._reloaded(rollout)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=RolloutSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def plan(self, request: Request, pk: Any = None) -> Response:
        """Plan a draft: every matching device you may change gets a wave (409 unless it is a draft)."""
        rollout = services.do_plan_rollout(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(self._reloaded(rollout)).data)

    @extend_schema(
        parameters=[RolloutPreviewQuerySerializer],
        responses={
            200: RolloutPreviewSerializer,
            414: OpenApiResponse(
                description="The query is longer than the server reads (a request line of 8190 bytes, "
                "deploy/gunicorn.conf.py): send fewer values, or create the rollout and plan it."
            ),
        },
        description="How many of your devices a rollout of the image with these targets would reach now, "
        "per group and type. An image id that is not your tenant's answers 400 like one that exists nowhere.",
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def preview(self, request: Request) -> Response:
        """Counts per group and type of the devices planning would reach now, and their total."""
        query = RolloutPreviewQuerySerializer.from_query(request.query_params, context=self.get_serializer_context())
        query.is_valid(raise_exception=True)
        spec = dict(query.validated_data)
        devices = selectors.rollout_devices(tenant=require_caller(request.user).tenant, actor=self.actor, **spec)
        rows = [
            {"group": row["group"], "type": row["type"], "count": row["devices"]}
            for row in selectors.rollout_preview(devices)
        ]
        return Response(RolloutPreviewSerializer({"total": sum(row["count"] for row in rows), "rows": rows}).data)

    def _reloaded(self, rollout: Rollout) -> Rollout:
        return Rollout.objects.prefetch_related("waves").get(pk=rollout.pk)

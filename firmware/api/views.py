"""API endpoints for firmware images, signing keys, the firmware policy and rollouts."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from cot.api.parsers import StrictJSONParser
from cot.api.views import CotAPIView, ModelViewSet, ReadCreateViewSet
from cot.body_limits import accepts_uploads
from firmware import counters, selectors, services, uploads
from firmware.api.serializers import (
    FirmwareImageSerializer,
    FirmwarePolicySerializer,
    FirmwareReleaseSerializer,
    FirmwareUploadSerializer,
    RolloutCreateSerializer,
    RolloutPauseSerializer,
    RolloutPreviewQuerySerializer,
    RolloutPreviewSerializer,
    RolloutRetrySerializer,
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
        return [MultiPartParser()] if self._action_name() == "create" else [StrictJSONParser()]

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


def _no_body(request: Request) -> None:
    """Refuse a body on an action that takes none (400), rather than ignore what the caller meant."""
    if request.data not in ({}, None, b"", ""):
        raise exceptions.ValidationError({"detail": "This action takes no request body."})


class RolloutViewSet(ReadCreateViewSet):
    """Staged rollouts of a released image: create a draft, preview its reach, plan it, then run it.

    Planning is a background job: ``/plan/`` answers 202 with the rollout in ``planning``;
    poll it until ``ready`` (or ``plan_failed`` with the reason). Then ``/start/``,
    ``/pause/``, ``/resume/``, ``/cancel/``, ``/retry/`` (failed devices whose retries are
    spent) and ``/advance/`` (the next wave after one without auto-advance). Each answers
    409 when the rollout's state does not allow it. Who may: the tenant's administrators,
    and Standard users with change on every targeted group when the firmware policy lets
    them (docs/rollouts.md).
    """

    queryset = Rollout.objects.prefetch_related("waves")  # in index order (RolloutWave.Meta.ordering)
    serializer_class = RolloutSerializer
    filterset_fields = ["status"]

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        # The waves' counts for every rollout shown, in one query (not one per wave).
        instance = args[0] if args else kwargs.get("instance")
        if instance is not None:
            rollouts = [instance] if isinstance(instance, Rollout) else list(instance)
            wave_ids = [wave.pk for rollout in rollouts for wave in rollout.waves.all()]
            context = kwargs.setdefault("context", self.get_serializer_context())
            context["wave_counts"] = counters.counts(wave_ids)
        return super().get_serializer(*args, **kwargs)

    @extend_schema(request=RolloutCreateSerializer, responses={201: RolloutSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a draft rollout (administrators); the image must be a released image of your tenant."""
        body = RolloutCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        waves = [dict(wave) for wave in data.pop("waves")]
        rollout = services.do_create_rollout(actor=self.actor, waves=waves, **data)
        return Response(self.get_serializer(self._reloaded(rollout)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: RolloutSerializer})
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def plan(self, request: Request, pk: Any = None) -> Response:
        """Queue the planning of a draft (202, ``planning``); every matching device you may change gets a wave.

        Poll the rollout: ``ready`` when planned, ``plan_failed`` with ``status_reason``
        when nothing matched or the image was withdrawn. 409 unless it is a draft.
        """
        _no_body(request)
        rollout = services.do_plan_rollout(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(self._reloaded(rollout)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=RolloutSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def start(self, request: Request, pk: Any = None) -> Response:
        """Start a ready rollout: its first wave begins on the engine's next tick once ``start_at`` has passed."""
        _no_body(request)
        rollout = services.do_start_rollout(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(self._reloaded(rollout)).data)

    @extend_schema(request=RolloutPauseSerializer, responses=RolloutSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def pause(self, request: Request, pk: Any = None) -> Response:
        """Pause a running rollout: nothing new is offered; devices already updating finish."""
        body = RolloutPauseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason = str(body.validated_data.get("reason", ""))
        rollout = services.do_pause_rollout(self.get_object(), actor=self.actor, reason=reason)
        return Response(self.get_serializer(self._reloaded(rollout)).data)

    @extend_schema(request=None, responses=RolloutSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def resume(self, request: Request, pk: Any = None) -> Response:
        """Resume a paused rollout (it pauses again on the next tick if a wave is still over its error threshold)."""
        _no_body(request)
        rollout = services.do_resume_rollout(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(self._reloaded(rollout)).data)

    @extend_schema(request=None, responses=RolloutSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def cancel(self, request: Request, pk: Any = None) -> Response:
        """Cancel: a draft or ready rollout at once; a running or paused one becomes ``canceling``.

        Devices not yet installing are withdrawn now; the rollout is ``canceled`` once no
        device is installing any more (a flashing device is never interrupted).
        """
        _no_body(request)
        rollout = services.do_cancel_rollout(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(self._reloaded(rollout)).data)

    @extend_schema(request=None, responses=RolloutRetrySerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def retry(self, request: Request, pk: Any = None) -> Response:
        """Offer the update again to failed and timed-out devices whose automatic retries are spent."""
        _no_body(request)
        retried = services.do_retry_failed_targets(self.get_object(), actor=self.actor)
        rollout = self._reloaded(self.get_object())
        context = {**self.get_serializer_context(), "wave_counts": counters.counts(w.pk for w in rollout.waves.all())}
        return Response(RolloutRetrySerializer({"retried": retried, "rollout": rollout}, context=context).data)

    @extend_schema(request=None, responses=RolloutSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def advance(self, request: Request, pk: Any = None) -> Response:
        """Begin the next wave after one that succeeded without auto-advance (409 otherwise)."""
        _no_body(request)
        services.do_advance_wave(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(self._reloaded(self.get_object())).data)

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

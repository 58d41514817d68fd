"""API representations of users, roles, tokens and the caller."""

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cot.api.serializers import ScopedRelatedField, StrictModelSerializer
from tenants import services, two_factor
from tenants.models import DEVICE_GROUP_RIGHTS, ApiToken, Role, User


class RoleSerializer(StrictModelSerializer):
    """A role; only custom roles are written."""

    rights = serializers.ListField(child=serializers.ChoiceField(choices=list(DEVICE_GROUP_RIGHTS)), required=False)

    class Meta:
        model = Role
        fields = ["id", "name", "kind", "rights", "description"]
        read_only_fields = ["kind"]

    def create(self, validated_data: dict[str, Any]) -> Role:
        return services.do_create_role(actor=self.actor, **validated_data)

    def update(self, instance: Role, validated_data: dict[str, Any]) -> Role:
        return services.do_update_role(instance, validated_data, actor=self.actor)


class UserSerializer(StrictModelSerializer):
    """A user of the caller's tenant. ``password`` is write-only and optional."""

    role = ScopedRelatedField(Role)
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})
    two_factor_enabled = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "role", "is_active", "date_joined", "two_factor_enabled", "password"]
        read_only_fields = ["date_joined"]
        # The service decides about taken addresses (one answer whichever tenant holds one, audited).
        extra_kwargs: ClassVar[dict[str, Any]] = {"email": {"validators": []}}

    def get_two_factor_enabled(self, user: User) -> bool:
        # Lists annotate it in one query; single objects fresh from a service ask directly.
        annotated = getattr(user, "has_two_factor", None)
        return two_factor.has_second_factor(user) if annotated is None else bool(annotated)

    def validate_email(self, value: str) -> str:
        if self.instance is not None and value.lower() != self.instance.email:
            raise serializers.ValidationError("The e-mail address cannot be changed.")
        return value

    def create(self, validated_data: dict[str, Any]) -> User:
        validated_data.pop("is_active", None)
        return services.do_create_user(actor=self.actor, **validated_data)

    def update(self, instance: User, validated_data: dict[str, Any]) -> User:
        validated_data.pop("email", None)
        role = validated_data.pop("role", None)
        password = validated_data.pop("password", None)
        if role is not None and role != instance.role:
            instance = services.do_change_user_role(instance, role, actor=self.actor)
        if password is not None:
            services.do_set_password(instance, password, actor=self.actor)
        if validated_data:
            instance = services.do_update_user(instance, validated_data, actor=self.actor)
        return instance


class ApiTokenSerializer(StrictModelSerializer):
    """A token's metadata; the secret appears once, in the response that creates it."""

    days = serializers.IntegerField(write_only=True, required=False, min_value=1)
    owner = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "scope",
            "days",
            "owner",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]

    def create(self, validated_data: dict[str, Any]) -> ApiToken:
        token, secret = services.do_create_api_token(user=self.actor, actor=self.actor, **validated_data)
        token.secret = secret  # type: ignore[attr-defined]
        return token

    def to_representation(self, instance: ApiToken) -> dict[str, Any]:
        data = super().to_representation(instance)
        secret = getattr(instance, "secret", None)
        if secret:
            data["token"] = secret
        return data


class _TenantBriefSerializer(serializers.Serializer[Any]):
    slug = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class _RoleBriefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()


class _TokenBriefSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    scope = serializers.CharField()
    expires_at = serializers.DateTimeField()


class MeSerializer(serializers.Serializer[Any]):
    """Who the caller is, as the API sees them, and the token they came with."""

    id = serializers.IntegerField(source="pk")
    email = serializers.EmailField()
    full_name = serializers.CharField()
    tenant = _TenantBriefSerializer()
    role = _RoleBriefSerializer(allow_null=True)
    two_factor_enabled = serializers.SerializerMethodField()
    token = serializers.SerializerMethodField()

    def get_two_factor_enabled(self, user: User) -> bool:
        return two_factor.has_second_factor(user)

    @extend_schema_field(_TokenBriefSerializer(allow_null=True))
    def get_token(self, user: User) -> dict[str, Any] | None:
        token = getattr(self.context["request"]._request, "cot_api_token", None)
        return _TokenBriefSerializer(token).data if token is not None else None

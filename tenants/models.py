"""Tenants, their users and roles, and the users' API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import Group, PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from tenants.querysets import TenantQuerySet


class Action(models.TextChoices):
    """What a caller wants to do with a row; the access layer's vocabulary."""

    VIEW = "view"
    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"


# Rights a role can carry on device groups granted to it (and their devices).
DEVICE_GROUP_RIGHTS = (Action.VIEW, Action.CHANGE, Action.DELETE)
DEVICE_GROUP_RIGHT_CHOICES = [(right.value, right.label) for right in DEVICE_GROUP_RIGHTS]


class Tenant(models.Model):
    """A customer (or the single provider) whose data is isolated from every other tenant."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    class Kind(models.TextChoices):
        CUSTOMER = "customer"
        PROVIDER = "provider", "provider (platform operators and support)"

    class Maintenance(models.TextChoices):
        """A change in progress: while it runs, the tenant's people read only, or nothing at all."""

        OFF = "", "none"
        READ_ONLY = "read_only", "read-only"
        CLOSED = "closed"

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CUSTOMER, editable=False)
    require_2fa = models.BooleanField(
        "require two-factor login for every user",
        default=True,
        help_text="Administrators, support staff and operators always need it.",
    )
    require_passkeys = models.BooleanField(
        "require passkeys as the second factor",
        default=False,
        help_text="Authenticator-app codes and backup codes then only confirm the enrolment of a first passkey.",
    )
    session_idle_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(720)]
    )
    api_token_max_days = models.PositiveIntegerField(
        "API token maximum lifetime (days)", default=90, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    certified_devices_only = models.BooleanField(
        "register certified device types only", default=False, help_text="Refuse registrations of uncertified types."
    )
    auto_accept_registrations = models.BooleanField(
        default=False, help_text="Accept expected devices on their first registration call without review."
    )
    payload_retention_days = models.PositiveIntegerField(
        "keep device payload data (days)", default=90, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    rate_limits = models.JSONField(
        default=dict,
        blank=True,
        help_text='Overrides of the platform rate limits, e.g. {"device": {"second": "20/s"}}.',
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    maintenance = models.CharField(max_length=16, choices=Maintenance.choices, default="", blank=True, editable=False)
    maintenance_reason = models.CharField(max_length=200, blank=True, editable=False)

    objects = TenantQuerySet.as_manager()
    tenant_lookup = "pk"
    audit_creation_event = "tenant.create"

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(kind="provider"), name="tenants_single_provider"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def clean(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ValidationError

        from cot.ratelimit import parse_rate

        if not isinstance(self.rate_limits, dict):
            raise ValidationError({"rate_limits": "A mapping of scope to windows."})
        for scope, windows in self.rate_limits.items():
            if scope not in settings.TENANT_RATE_SCOPES or not isinstance(windows, dict):
                raise ValidationError({"rate_limits": f"Unknown scope '{scope}'."})
            for window, rate in windows.items():
                if window not in settings.RATE_LIMITS[scope]:
                    raise ValidationError({"rate_limits": f"Unknown window '{window}' for '{scope}'."})
                try:
                    parse_rate(str(rate))
                except ValueError as exc:
                    raise ValidationError({"rate_limits": str(exc)}) from None

    def rates(self, scope: str) -> dict[str, str]:
        """The rate limits of ``scope`` (device, tenant_devices, token, tenant_api) in this tenant."""
        from django.conf import settings

        return {**settings.RATE_LIMITS[scope], **self.rate_limits.get(scope, {})}

    @property
    def is_provider(self) -> bool:
        return self.kind == self.Kind.PROVIDER


class Role(models.Model):
    """A named set of rights inside one tenant.

    Built-in kinds carry fixed meaning; custom roles carry only device-group rights.
    Each role owns an ``auth.Group`` so that guardian's group object-permission table
    can hold the role's per-group grants.
    """

    class Kind(models.TextChoices):
        ADMINISTRATOR = "administrator"
        STANDARD = "standard", "standard user"
        BUSINESS = "business", "business user"
        OPERATOR = "operator", "platform operator"
        SUPPORT = "support", "platform support"
        CUSTOM = "custom"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="roles")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CUSTOM)
    rights = ArrayField(
        models.CharField(max_length=16, choices=DEVICE_GROUP_RIGHT_CHOICES),
        default=list,
        blank=True,
        help_text="What members may do in device groups granted to them or to this role.",
    )
    description = models.TextField(blank=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, editable=False, related_name="cot_role")

    objects = TenantQuerySet.as_manager()
    audit_creation_event = "role.create"

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="tenants_role_unique_name"),
            # The target of composite keys that keep references inside the tenant (cot/database/constraints.py).
            models.UniqueConstraint(fields=["tenant", "id"], name="tenants_role_tenant_row"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return self.kind != self.Kind.CUSTOM


class UserManager(BaseUserManager["User"]):
    """Creates users; always through ``tenants.services`` outside of tests and migrations."""

    def get_queryset(self) -> TenantQuerySet:
        return TenantQuerySet(self.model, using=self._db)

    def restrict(self, user: Any, action: str) -> TenantQuerySet:
        return self.get_queryset().restrict(user, action)

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with e-mail and password; belongs to exactly one tenant.

    ``is_superuser`` marks a platform superuser. It grants nothing inside customer
    tenants: the access layer ignores it.
    """

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="users")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, null=True, blank=True, related_name="members")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now, editable=False)
    # Part of every session's auth hash: raising it ends all of the user's sessions for
    # good (deactivation), so a later reactivation does not revive them.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()
    # tenants.services records the creation as "user.create"; auditlog's own would repeat it.
    audit_creation_event = "user.create"

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def _get_session_auth_hash(self, secret: Any = None) -> str:
        # Django's hash covers the password (a change ends other sessions); the epoch adds
        # deactivation.
        return salted_hmac(
            "tenants.User.get_session_auth_hash",
            f"{self.password}:{self.session_epoch}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        # Django's superuser shortcut is switched off: rights come from tenants.access only.
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False

    @property
    def is_staff(self) -> bool:
        # Every active user works in the cockpit; what they see there is the access layer's call.
        return self.is_active


class ApiToken(models.Model):
    """A named, scoped, expiring API credential of one user.

    Only a keyed hash of the secret is stored; the secret is shown once at creation.
    ``prefix`` keeps the first characters so owners can tell tokens apart.
    """

    class Scope(models.TextChoices):
        READ = "read"
        WRITE = "write"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=16, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantQuerySet.as_manager()
    tenant_lookup = "user__tenant"
    secret_fields = ("digest",)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class SupportGrantQuerySet(TenantQuerySet):
    """Support grants, with the ones whose expiry has not been processed yet picked out."""

    def due_for_expiry(self, now: Any) -> SupportGrantQuerySet:
        return self.filter(expires_at__lte=now, expiry_processed_at__isnull=True, revoked_at__isnull=True)


class SupportGrant(models.Model):
    """A customer administrator's consent for platform support to work in their tenant.

    Expiry is fixed at creation (at most 24 hours later) and never extended. The link
    token is stored as a keyed hash and shown once; the first support engineer to open
    the link is bound to the grant and nobody else can use it.
    """

    MAX_HOURS = 24

    class Scope(models.TextChoices):
        READ = "read"
        WRITE = "write"

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        EXPIRED = "expired"
        REVOKED = "revoked"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="support_grants")
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # No default: the administrator chooses how long, so the least access is never a click
    # away from the most (a preselected 24 hours was what most grants ended up with).
    duration_hours = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_HOURS)],
        help_text=f"How long support may work in your tenant: 1 to {MAX_HOURS} hours. Choose the shortest time "
        "the ticket needs; you can revoke the grant earlier, but never extend it.",
    )
    expires_at = models.DateTimeField(editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    # Ids of device groups (the devices app's, which this app cannot name): empty for the whole tenant.
    device_groups = ArrayField(
        models.BigIntegerField(),
        default=list,
        blank=True,
        help_text="Limit support to the devices of these groups and their data; none chosen: the whole tenant.",
    )
    reason = models.CharField(max_length=200, help_text="Ticket reference or why support needs access.")
    engineer_email = models.EmailField(blank=True, help_text="Optional: only this support engineer may use it.")
    engineer = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    bound_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    expiry_processed_at = models.DateTimeField(null=True, blank=True, editable=False)
    link_digest = models.CharField(max_length=64, unique=True, editable=False)

    objects = SupportGrantQuerySet.as_manager()
    secret_fields = ("link_digest",)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__lte=models.F("created_at") + timedelta(hours=24)),
                name="tenants_support_grant_max_24h",
            ),
        ]

    def __str__(self) -> str:
        return f"Support grant {self.pk} ({self.reason})"

    def status_at(self, now: Any) -> str:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if now >= self.expires_at:
            return self.Status.EXPIRED
        return self.Status.ACTIVE if self.engineer_id else self.Status.PENDING

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    def usable_by(self, user: Any, now: Any = None) -> bool:
        """Whether ``user`` may work in the tenant under this grant right now."""
        now = now or timezone.now()
        return (
            self.revoked_at is None
            and now < self.expires_at
            and self.engineer_id is not None
            and self.engineer_id == user.pk
            and self.tenant.is_active
        )


class SupportSession(models.Model):
    """A session opened through a support grant, so expiry and revocation can end it."""

    grant = models.ForeignKey(SupportGrant, on_delete=models.CASCADE, related_name="sessions")
    session_key = models.CharField(max_length=40, db_index=True)
    opened_at = models.DateTimeField(default=timezone.now)

    secret_fields = ("session_key",)

    def __str__(self) -> str:
        return f"{self.grant_id}:{self.session_key[:6]}…"

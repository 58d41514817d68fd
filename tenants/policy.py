"""Tenant policy decisions about sessions: two-factor requirement and idle timeout."""

from typing import Any

from django_otp_webauthn.models import WebAuthnCredential

from tenants.models import Role

ALWAYS_TWO_FACTOR = frozenset({Role.Kind.ADMINISTRATOR, Role.Kind.OPERATOR, Role.Kind.SUPPORT})


def requires_two_factor(user: Any) -> bool:
    """Administrators, operators, support staff and superusers always; others per tenant policy."""
    role = user.role
    return bool(user.is_superuser or user.tenant.require_2fa or role is None or role.kind in ALWAYS_TWO_FACTOR)


def requires_passkey(user: Any) -> bool:
    """Whether ``user``'s tenant accepts only passkeys as the second factor."""
    return bool(user.tenant.require_passkeys)


def is_passkey(device: Any) -> bool:
    """Whether ``device`` (a session's verified django-otp device) is a passkey."""
    return isinstance(device, WebAuthnCredential)


def session_is_fully_authenticated(request: Any) -> bool:
    """A session counts only once its second factor is verified where policy asks for one.

    Where the tenant requires passkeys, only a session verified by a passkey counts: one
    verified by a code before the policy changed ends at its next request (fail closed).
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if requires_passkey(user):
        return verified_by_passkey(request)
    return not requires_two_factor(user) or bool(user.is_verified())


def verified_by_passkey(request: Any) -> bool:
    """Whether the session's second factor was a passkey (a tenant that requires them asks this)."""
    user = request.user
    return bool(user.is_verified()) and is_passkey(getattr(user, "otp_device", None))


PASSKEY_REQUIRED_FOR_SUPPORT = (
    "This customer requires passkeys: log in with a passkey (Passkeys, top right) to use the support grant."
)


def meets_support_tenant_policy(request: Any, tenant: Any) -> bool:
    """Whether a support engineer's session satisfies the customer tenant's factor policy.

    The engineer's own tenant decides their login; a customer that requires passkeys
    requires them of whoever enters its tenant, engineers included.
    """
    return not tenant.require_passkeys or verified_by_passkey(request)

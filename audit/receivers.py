"""Login, logout, failed-login and lockout events into the audit trail.

A failed password is chained once per attempt that reached the password check. Once an
account is locked out from an address, the attempts refused there are only counted (an
anonymous caller must not be able to grow a tenant's chain without bound); the count is
written into the account's next ``auth.login`` or ``auth.lockout`` entry.
"""

import hashlib
from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver

import audit
from audit.context import ActorKind
from cot.database.scope import cross_tenant


def _refused_key(email: str) -> str:
    # Hashed: the key must not carry (or grow with) what an anonymous caller typed.
    return "audit:login-refused:" + hashlib.sha256(email.lower().encode()).hexdigest()


def _refused_since_last_entry(email: str) -> int:
    """How many attempts the lockout refused for ``email`` since its last entry said so; resets the count."""
    key = _refused_key(email)
    refused = int(cache.get(key) or 0)
    if refused:
        cache.delete(key)
    return refused


def _account(email: str) -> Any:
    from tenants.models import User

    if not email:
        return None
    with cross_tenant("auth.failed_login"):
        return User.objects.filter(email__iexact=email).only("pk", "tenant_id", "email").first()


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    refused = _refused_since_last_entry(user.email)
    data: dict[str, Any] = {"refused_while_locked_out": refused} if refused else {}
    # The cockpit's login names what verified it (password, authenticator app, backup code, passkey).
    factor = getattr(request, "cot_login_factor", None)
    if factor:
        data["factor"] = factor
    audit.record("auth.login", tenant=user.tenant_id, target=user, actor=user, data=data or None)


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record("auth.logout", tenant=user.tenant_id, target=user, actor=user)


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    email = str(credentials.get("username") or credentials.get("email") or "")[:254]
    if request is not None and not getattr(request, "cot_password_checked", False):
        # Refused by the lockout before the password was looked at: counted, not chained.
        key = _refused_key(email)
        cache.add(key, 0, timeout=int(settings.AXES_COOLOFF_TIME.total_seconds()) * 4)
        cache.incr(key)
        return
    user = _account(email)
    # Failures for an existing account go to its tenant, so its administrators see them;
    # unknown e-mails go to the platform's own chain (tenant NULL).
    audit.record(
        "auth.login_failed",
        tenant=user.tenant_id if user else None,
        target=user,
        data={"email": email, "stage": credentials.get("stage", "password")},
        actor_kind=ActorKind.ANONYMOUS,
        actor_label=email or "anonymous",
    )


@receiver(user_locked_out)
def _locked_out(sender: Any, request: Any = None, username: str | None = None, **kwargs: Any) -> None:
    # axes signals every refused attempt too; only the attempt that reached the limit is the lockout.
    if request is None or not getattr(request, "cot_password_checked", False):
        return
    email = str(username or "")[:254]
    user = _account(email)
    data = {"email": email, "refused_while_locked_out": _refused_since_last_entry(email)}
    audit.record(
        "auth.lockout",
        tenant=user.tenant_id if user else None,
        target=user,
        data=data,
        actor_kind=ActorKind.ANONYMOUS,
        actor_label=email or "anonymous",
    )

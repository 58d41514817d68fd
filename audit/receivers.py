"""Login, logout and failed-login events into the audit trail."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

import audit
from audit.context import ActorKind


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record("auth.login", tenant=user.tenant_id, target=user, actor=user)


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record("auth.logout", tenant=user.tenant_id, target=user, actor=user)


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from tenants.models import User

    email = str(credentials.get("username") or credentials.get("email") or "")[:254]
    user = User.objects.filter(email__iexact=email).only("pk", "tenant_id", "email").first() if email else None
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

"""Who is acting right now, for the audit trail: a request's user or token, or a job.

The web middleware, the API authentication and Celery tasks set it; ``audit.record``
and auditlog's model-change entries read it. A ``ContextVar`` keeps concurrent
requests apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


class ActorKind:
    """How the actor of an entry authenticated."""

    USER = "user"
    TOKEN = "token"  # noqa: S105 (an actor kind, not a secret)
    DEVICE = "device"
    SUPPORT = "support"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


@dataclass
class AuditContext:
    """The request or job an audit entry is written in."""

    request: Any = None
    job: str | None = None
    source: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Refusals to record once the request's transactions are over (``audit.refusals``).
    refusals: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Actor:
    """Resolved actor of one entry."""

    kind: str
    label: str
    user: Any = None
    support_grant_id: int | None = None
    #: the grant's tenant: only entries in that tenant's chain name the grant
    support_grant_tenant_id: int | None = None


_current: ContextVar[AuditContext | None] = ContextVar("cot_audit_context", default=None)


@contextmanager
def audit_context(**kwargs: Any) -> Iterator[AuditContext]:
    """Run a block as one request or job: entries inside carry its actor and request id."""
    ctx = AuditContext(**kwargs)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def current_context() -> AuditContext | None:
    return _current.get()


def current_actor() -> Actor:
    """The actor of the running request or job, or ``system`` outside of both."""
    ctx = _current.get()
    if ctx is None:
        return Actor(ActorKind.SYSTEM, "system")
    if ctx.job:
        return Actor(ActorKind.SYSTEM, f"job {ctx.job}")
    request = ctx.request
    device = getattr(request, "cot_device", None)
    if device is not None:
        return Actor(ActorKind.DEVICE, f"device {device.external_id} (id {device.pk})")
    user = getattr(request, "user", None) if request is not None else None
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(ActorKind.ANONYMOUS, "anonymous")
    from tenants.access import active_support_grant

    grant = active_support_grant(user)
    if grant is not None:
        return Actor(ActorKind.SUPPORT, f"{user.email} via support grant {grant.pk}", user, grant.pk, grant.tenant_id)
    token = getattr(request, "cot_api_token", None)
    if token is not None:
        return Actor(ActorKind.TOKEN, f"{user.email} via API token {token.prefix}", user)
    return Actor(ActorKind.USER, user.email, user)

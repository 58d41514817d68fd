"""The audit trail. Call ``audit.record(...)`` for every security event."""

from typing import Any

from audit.refusals import Refusal, atomic_keeping_refusals

__all__ = ["Refusal", "atomic_keeping_refusals", "record"]


def record(event: str, *, tenant: Any, target: Any = None, **kwargs: Any) -> Any:
    """Append one security event to ``tenant``'s trail; see ``audit.services.record``."""
    from audit.services import record as _record

    return _record(event, tenant=tenant, target=target, **kwargs)

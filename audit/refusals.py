"""Refusals that stay in the trail although the transaction they happened in rolls back.

A service that refuses (a support link used by the wrong engineer, a user whose e-mail
is taken) raises, so its transaction rolls back, and with it any audit entry written
inside. ``Refusal`` carries the entry out; ``atomic_keeping_refusals`` records it after
the rollback, in a transaction of its own, and raises the caller's error.

When the service ran inside an outer transaction of a web request (the admin wraps its
forms in one), that transaction rolls back too as the error travels up; the entry then
waits in the request's audit context and ``audit.middleware`` records it once the
request's transactions are over.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from django.db import transaction

from audit.context import current_context

P = ParamSpec("P")
R = TypeVar("R")


class Refusal(Exception):
    """Raised inside an ``atomic_keeping_refusals`` function: the error for the caller and the entry to keep."""

    def __init__(self, error: Exception, event: str, *, tenant: Any, **entry: Any) -> None:
        super().__init__(str(error))
        self.error = error
        self.event = event
        self.tenant = tenant
        self.entry = entry

    def record(self) -> None:
        """Write the entry, in a transaction of its own."""
        from audit.services import record

        with transaction.atomic():
            record(self.event, tenant=self.tenant, **self.entry)


def atomic_keeping_refusals(func: Callable[P, R]) -> Callable[P, R]:
    """``transaction.atomic`` for a service, except that a ``Refusal``'s audit entry survives the rollback.

    Services are the outermost transaction of their request; called inside an outer
    ``atomic`` block, the entry would belong to that block and share its fate.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with transaction.atomic():
                return func(*args, **kwargs)
        except Refusal as refusal:
            context = current_context()
            if transaction.get_connection().in_atomic_block and context is not None and context.request is not None:
                context.refusals.append(refusal)
            else:
                refusal.record()
            raise refusal.error from None

    return wrapper

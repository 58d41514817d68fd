"""The cockpit's home page: panels registered by the apps, each read through the access layer.

The cockpit framework knows no app above it (``lint-imports`` says so), so every app
registers the panels it has to show, as apps register notices and device page sections:
``register_panel(DashboardPanel(...))`` when its cockpit package is imported. A panel's
``context`` callable receives the request (of a signed-in user) and returns what its template shows, or
``None`` to be left out for that caller (a Standard user sees no security events). Each
callable reads its rows through ``Model.objects.restrict`` and answers with aggregates
(one query per number, never a loop over devices).

Numbers are cached briefly per caller, so a page full of counters over a large fleet
costs its queries once per ``COCKPIT_DASHBOARD_CACHE_SECONDS``, however many tabs poll
it. The cache key names everything that decides the caller's reach: the user, their
role, the support grant they act under and, where a panel depends on more (a Standard
user's device groups), the panel's own ``reach`` fingerprint. A change of rights thus
reads afresh at once instead of showing a previous reach's numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils import timezone

from tenants.access import caller_for

PanelContext = Callable[[HttpRequest], dict[str, Any] | None]
PanelReach = Callable[[HttpRequest], str]


@dataclass(frozen=True)
class DashboardPanel:
    """One panel of the home page: an id (``panel-<key>`` in the page), a title and a template.

    ``context(request)`` returns the template's context (plain values: it is cached) or
    ``None`` for callers who should not see the panel. ``reach(request)``, when given, names
    the part of the caller's rights the numbers depend on beyond user, role and grant.
    ``wide`` panels take a whole row. A ``lazy`` panel (a costly aggregate over a large
    fleet's payload) is not read while the page is built: the page asks for it once
    loaded (``cockpit:dashboard_panel``), so the rest shows at once. A panel that is not
    ``refreshed`` stays as first drawn while the page refreshes the others (a map the
    operator has zoomed).
    """

    key: str
    title: str
    template: str
    context: PanelContext
    order: int = 100
    wide: bool = False
    reach: PanelReach | None = None
    lazy: bool = False
    refreshed: bool = True


@dataclass(frozen=True)
class RenderedPanel:
    """A panel with what it shows to one caller and when that was read (``None``: not read yet, lazy)."""

    panel: DashboardPanel
    context: dict[str, Any] | None
    read_at: datetime | None


_PANELS: dict[str, DashboardPanel] = {}


def register_panel(panel: DashboardPanel) -> None:
    """Add ``panel`` to the home page; registering the same panel again is harmless."""
    known = _PANELS.get(panel.key)
    if known is not None and known != panel:
        raise ImproperlyConfigured(f"A different dashboard panel {panel.key!r} is registered already.")
    _PANELS[panel.key] = panel


def registered_panels() -> list[DashboardPanel]:
    """The registered panels, in page order."""
    return sorted(_PANELS.values(), key=lambda panel: (panel.order, panel.key))


def per_request(function: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    """``function(request)`` computed once per request: for what several panels ask alike (the caller's reach)."""
    name = f"_cot_per_request_{function.__module__}.{function.__qualname__}"

    @wraps(function)
    def once(request: HttpRequest) -> Any:
        if not hasattr(request, name):
            setattr(request, name, function(request))
        return getattr(request, name)

    return once


def digest(values: Any) -> str:
    """A short fingerprint of ``values`` (for ``reach`` callables): equal values, equal digest."""
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


def _caller_fingerprint(user: Any) -> str:
    """What decides the caller's reach for every panel: tenant, role and its rights, grant."""
    caller = caller_for(user)
    if caller is None:
        return "nobody"
    grant = caller.support_grant
    return digest(
        (
            user.pk,
            caller.tenant.pk,
            caller.role.pk,
            caller.role.kind,
            sorted(caller.rights),
            caller.acts_as_admin,
            grant.pk if grant is not None else None,
            grant.scope if grant is not None else None,
        )
    )


def _read(request: HttpRequest, panel: DashboardPanel, caller: str, *, compute: bool) -> RenderedPanel | None:
    """The panel as the caller sees it: from the cache, else computed (or left unread); ``None`` if not for them."""
    seconds = settings.COCKPIT_DASHBOARD_CACHE_SECONDS
    reach = panel.reach(request) if panel.reach is not None else ""
    key = f"cot:dashboard:{panel.key}:{caller}:{reach}"
    cached = cache.get(key) if seconds > 0 else None
    if cached is None:
        if not compute:
            return RenderedPanel(panel, None, None)
        cached = (timezone.now(), panel.context(request))
        if seconds > 0:
            cache.set(key, cached, seconds)
    read_at, context = cached
    return None if context is None else RenderedPanel(panel, context, read_at)


def dashboard_panels(request: HttpRequest) -> list[RenderedPanel]:
    """The panels the request's user sees, each from the cache when read less than a few seconds ago.

    Lazy panels not in the cache are left unread (``context`` ``None``): the page asks for them.
    """
    caller = _caller_fingerprint(request.user)
    panels = (_read(request, panel, caller, compute=not panel.lazy) for panel in registered_panels())
    return [rendered for rendered in panels if rendered is not None]


def dashboard_panel(request: HttpRequest, key: str) -> RenderedPanel | None:
    """One panel, read now unless cached; ``None`` for a panel the caller does not see (or no such panel)."""
    panel = _PANELS.get(key)
    if panel is None:
        return None
    return _read(request, panel, _caller_fingerprint(request.user), compute=True)

"""The cockpit: a Django admin site that admits only fully authenticated tenant users.

The login steps are ``tenants.views.auth``'s; this module wires them into the site and
answers django-axes' lockouts (``lockout_response``) with the site's login page.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRefresh

import audit
from cot.cockpit.dashboard import dashboard_panel, dashboard_panels
from tenants import grant_scopes, two_factor
from tenants.access import caller_for
from tenants.policy import session_is_fully_authenticated
from tenants.support_middleware import mark_live_refresh
from tenants.views import auth, passkeys

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


class CockpitSite(AdminSite):
    """The web cockpit; two-factor verified where policy requires it.

    Login is our own two-step flow (``tenants.views.auth``) instead of the admin's
    single password form, and logout is allowed to anyone holding a session, even one
    the cockpit would no longer admit.
    """

    site_header = "cot cockpit"
    site_title = "cot"
    index_title = "Overview"
    # The cockpit is the whole site; a "View site" link would only lead back here.
    site_url = None
    index_template = "admin/cockpit/dashboard.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self._notice_sources: list[Callable[[HttpRequest], list[str]]] = []

    def register_notices(self, source: Callable[[HttpRequest], list[str]]) -> None:
        """Show what ``source(request)`` returns (plain text, one notice each) on top of every page.

        Apps register their own (an app above this one cannot be imported here); each
        source decides who sees its notices, through the access layer.
        """
        self._notice_sources.append(source)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        # How often the live parts of pages ask for fresh figures (static/cockpit/live.js).
        context["refresh_seconds"] = settings.COCKPIT_REFRESH_SECONDS
        grant = getattr(request, "support_grant", None)
        if grant is not None and grant.device_groups:
            # The support banner names the groups a limited grant keeps the engineer to.
            context["support_groups"] = grant_scopes.device_group_names(request.user, grant.device_groups)
        if self.has_permission(request):
            context["cockpit_notices"] = [notice for source in self._notice_sources for notice in source(request)]
        return context

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        """The pages the caller may open, worked out once per request.

        The home page lists them beside its panels and ``each_context`` again for the
        navigation; each list asks every model's access rule, so the second is the first.
        """
        memo = request.__dict__.setdefault("_cot_app_lists", {})
        if app_label not in memo:
            memo[app_label] = super().get_app_list(request, app_label)
        return memo[app_label]

    def has_permission(self, request: Any) -> bool:
        return session_is_fully_authenticated(request) and caller_for(request.user) is not None

    def get_urls(self) -> list[URLResolver | URLPattern]:
        site = {"site": self}
        # Listed before the admin's own patterns, so these win for login/ and logout/.
        return [
            path("login/", self.login, name="login"),
            path("login/verify/", auth.verify_step, site, name="login_verify"),
            path("login/enrol/", auth.enrol_step, site, name="login_enrol"),
            path("logout/", self.logout, name="logout"),
            path("passkeys/", self.admin_view(passkeys.passkeys_page), site, name="passkeys"),
            path("passkeys/<int:pk>/remove/", self.admin_view(passkeys.remove_passkey), site, name="passkey_remove"),
            path("dashboard/panels/", self.admin_view(self.dashboard_fragment), name="dashboard_panels"),
            path(
                "dashboard/panels/<slug:key>/", self.admin_view(self.dashboard_panel_fragment), name="dashboard_panel"
            ),
            # The admin's "view on site" shortcut looks objects up outside the access
            # layer; the cockpit has no public pages to send anyone to anyway.
            *(p for p in super().get_urls() if getattr(p, "name", None) != "view_on_site"),
        ]

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        """The fleet dashboard (``cot.cockpit.dashboard``), the app list beside it."""
        return super().index(request, {**self._dashboard_context(request), **(extra_context or {})})

    def dashboard_fragment(self, request: HttpRequest) -> TemplateResponse:
        """The dashboard's panels alone, for the page's periodic refresh (htmx)."""
        mark_live_refresh(request)
        context = {**self._dashboard_context(request), "refreshing": True}
        return TemplateResponse(request, "admin/cockpit/_dashboard_panels.html", context)

    def dashboard_panel_fragment(self, request: HttpRequest, key: str) -> HttpResponse:
        """One (lazy) panel, asked for by the page once loaded; empty for a panel the caller does not see."""
        mark_live_refresh(request)
        rendered = dashboard_panel(request, key)
        if rendered is None:
            return HttpResponse("")
        return TemplateResponse(request, "admin/cockpit/_dashboard_panel.html", {"rendered": rendered})

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        """The admin's guard, and for htmx's background requests a reload instead of the login page.

        A live region (``static/cockpit/live.js``) whose session ended or lost its rights
        would otherwise paste the login form into the page; told to reload, the browser
        shows the login page as a page.
        """
        guarded = super().admin_view(view, cacheable)

        @wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if getattr(request, "htmx", False) and not self.has_permission(request):
                response = HttpResponseClientRefresh()
                add_never_cache_headers(response)
                return response
            return guarded(request, *args, **kwargs)

        return cast(_View, inner)

    def _dashboard_context(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "panels": dashboard_panels(request),
            "refresh_seconds": settings.COCKPIT_REFRESH_SECONDS,
        }

    def password_change(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        """Django's password change (with our validators), recorded in the audit trail."""
        response = super().password_change(request, extra_context)
        if request.method == "POST" and response.status_code == 302:
            user: Any = request.user
            two_factor.forget_pending_enrolments(user)
            audit.record("user.password", tenant=user.tenant_id, target=user, actor=user)
        return response

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Step 1 of the cockpit login (e-mail and password); see ``tenants.views.auth``."""
        return auth.password_step(request, site=self)

    # The stub says TemplateResponse; a redirect to the login page is the point here.
    def logout(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:  # type: ignore[override]
        """End the session (POST only) and show the login page again."""
        return auth.logout_view(request, site=self)


cockpit = CockpitSite(name="cockpit")


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None, *args: Any, **kwargs: Any
) -> HttpResponse:
    """What django-axes answers once an account or address is locked out (``AXES_LOCKOUT_CALLABLE``).

    AxesMiddleware calls this outside any view, so it names the site whose login page it shows.
    """
    return auth.lockout_page(request, cockpit)

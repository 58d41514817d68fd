"""The cockpit: a Django admin site that admits only fully authenticated tenant users."""

from typing import Any

from django.contrib.admin import AdminSite

from tenants.access import caller_for
from tenants.policy import session_is_fully_authenticated


class CockpitSite(AdminSite):
    """The web cockpit; two-factor verified where policy requires it."""

    site_header = "cot cockpit"
    site_title = "cot"
    index_title = "Overview"

    def has_permission(self, request: Any) -> bool:
        return session_is_fully_authenticated(request) and caller_for(request.user) is not None


cockpit = CockpitSite(name="cockpit")

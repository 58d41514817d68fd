"""Top-level URLs: the cockpit, the REST API and its schema."""

from django.conf import settings
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularSwaggerView

from cot.api.errors import api_not_found
from cot.api.schema import CachedSchemaView
from cot.cockpit.site import cockpit
from tenants.views.passkeys import ceremony_urls as passkey_ceremony_urls
from tenants.views.support import enter_support_grant, leave_support_grant

urlpatterns = [
    path("", RedirectView.as_view(url="/cockpit/", permanent=False)),
    # django-otp-webauthn's scripts reverse "otp_webauthn:…", so its ceremonies sit outside the site's namespace.
    path("cockpit/passkeys/ceremony/", include((passkey_ceremony_urls(cockpit), "otp_webauthn"))),
    path("cockpit/", cockpit.urls),
    path("support/enter/", enter_support_grant, name="support-enter"),
    path("support/leave/", leave_support_grant, name="support-leave"),
    path("api/v1/", include("cot.api.urls")),
    # Served by DeviceAPIMiddleware before the rest of the stack; listed here so reverse() knows the URLs.
    path("api/device/v1/", include("devices.device_api.urls")),
    path("api/schema/", CachedSchemaView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[], authentication_classes=[]),
        name="api-docs",
    ),
]

# Django's error pages, except under /api/, where errors are JSON like every API answer.
handler400 = "cot.api.errors.handler400"
handler403 = "cot.api.errors.handler403"
handler404 = "cot.api.errors.handler404"
handler500 = "cot.api.errors.handler500"

if settings.BENCH_ENDPOINTS:
    from cot.bench_views import noop

    urlpatterns.append(path("bench/noop", noop, name="bench-noop"))

# Last: anything else under /api/ is a JSON 404 (even with DEBUG on).
urlpatterns.append(re_path(r"^api/", api_not_found))

"""``/api/v1/``: one router for every app's endpoints (registered by the apps, see ``cot.api.routes``)."""

from django.urls import include, path

from cot.api.routes import paths, router

__all__ = ["router", "urlpatterns"]

urlpatterns = [
    *paths,
    path("", include(router.urls)),
]

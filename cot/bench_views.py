"""Reference endpoints for ``make bench``, mounted only with ``COT_BENCH_ENDPOINTS=1``.

``noop`` does no database or Redis work at all, yet passes through the full middleware
stack like every other request: the ceiling a real endpoint is compared against.
"""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def noop(request: HttpRequest) -> JsonResponse:
    """Read the body (as the device API does) and answer ``{"ok": true}``."""
    _ = request.body
    return JsonResponse({"ok": True})

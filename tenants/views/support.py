"""Support engineers enter a customer tenant through a grant link, and leave it again."""

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from tenants.models import Role
from tenants.policy import PASSKEY_REQUIRED_FOR_SUPPORT, meets_support_tenant_policy, session_is_fully_authenticated
from tenants.services import SupportLinkRefused, do_open_support_grant
from tenants.support_middleware import SUPPORT_GRANT_SESSION_KEY


@require_http_methods(["GET", "POST"])
def enter_support_grant(request: HttpRequest) -> HttpResponse:
    """GET shows what the link is for; POST (with the link's secret) binds it and starts the session.

    The secret travels in the link's fragment (``/support/enter/#cot_sgl_…``), which
    browsers never send, and reaches the server only in this POST body: it appears in no
    access log or Referer header. The page removes it from the address bar and history
    as soon as it has moved it into the form.
    """
    if not session_is_fully_authenticated(request):
        return redirect_to_login(request.get_full_path(), reverse("cockpit:login"))
    user = request.user
    role = getattr(user, "role", None)
    if role is None or role.kind != Role.Kind.SUPPORT:
        return render(request, "support/refused.html", status=404)
    if request.method == "GET":
        return render(request, "support/enter.html")
    # A pasted whole link works as well as the bare secret.
    secret = request.POST.get("secret", "").strip().rpartition("#")[2]
    if not request.session.session_key:
        request.session.save()
    try:
        grant = do_open_support_grant(secret, engineer=user, session_key=request.session.session_key or "")  # type: ignore[arg-type]
    except SupportLinkRefused:
        return render(request, "support/refused.html", status=404)
    if not meets_support_tenant_policy(request, grant.tenant):
        messages.error(request, PASSKEY_REQUIRED_FOR_SUPPORT)
        return HttpResponseRedirect(reverse("cockpit:index"))
    request.session[SUPPORT_GRANT_SESSION_KEY] = grant.pk
    messages.info(request, f"Support session in {grant.tenant.name} until {grant.expires_at:%Y-%m-%d %H:%M} UTC.")
    return HttpResponseRedirect(reverse("cockpit:index"))


@require_POST
def leave_support_grant(request: HttpRequest) -> HttpResponse:
    """End the current support session without ending the engineer's login."""
    request.session.pop(SUPPORT_GRANT_SESSION_KEY, None)
    messages.info(request, "You left the customer's tenant.")
    return HttpResponseRedirect(reverse("cockpit:index"))

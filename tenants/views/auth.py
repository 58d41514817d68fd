"""Cockpit login: password, then the second factor (enrolment on first login)."""

from typing import Any

from django.http import HttpResponse
from django.template.response import TemplateResponse

LOCKOUT_MESSAGE = "Too many failed logins. Try again later or ask your administrator."


def lockout_response(request: Any, credentials: Any = None, *args: Any, **kwargs: Any) -> HttpResponse:
    """What django-axes answers once an account or address is locked out (429, generic)."""
    return TemplateResponse(request, "cockpit/login.html", {"error": LOCKOUT_MESSAGE, "form": None}, status=429)

"""Cockpit bulk actions: one service call per row, or one for the whole selection.

``run_for_each`` suits actions whose rows stand alone (suspend these tenants): each row
succeeds or is refused on its own, and the user reads both. An action that needs input
(a target group, a confirmation) answers its first POST with ``action_page``; the page
posts the same selection back to the changelist with ``apply`` set, and the action then
calls its service once for the whole selection. Services are all or nothing, so a
refusal there means nothing changed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse

PREVIEW_ROWS = 20
APPLY_FIELD = "apply"


def applying(request: HttpRequest) -> bool:
    """Whether this POST comes from an action's intermediate page (not the first click)."""
    return APPLY_FIELD in request.POST


def action_page(
    model_admin: Any,
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: str,
    intro: str,
    form: forms.Form,
    submit: str,
    danger: bool = False,
) -> TemplateResponse:
    """The intermediate page of ``action``: the selection, ``form`` and a submit button."""
    select_across = request.POST.get("select_across") == "1"
    count = queryset.count()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "opts": model_admin.opts,
        "form": form,
        "action": action,
        "submit": submit,
        "danger": danger,
        "preview": list(queryset[:PREVIEW_ROWS]),
        "more": max(0, count - PREVIEW_ROWS),
        "count": count,
        "select_across": "1" if select_across else "0",
        "selected": [] if select_across else request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "apply_field": APPLY_FIELD,
        "form_action": request.get_full_path(),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/cockpit/action_form.html", context)


def report_refusal(model_admin: Any, request: HttpRequest, exc: Exception, what: str) -> None:
    """Tell the user a service refused the whole selection (so nothing changed)."""
    if isinstance(exc, ValidationError):
        reason = " ".join(exc.messages)
    elif isinstance(exc, (PermissionDenied, Http404)):
        reason = "You may not do that."
    else:  # pragma: no cover - callers pass only the exceptions above
        raise exc
    model_admin.message_user(request, f"{what}: {reason} Nothing was changed.", messages.ERROR)


def run_for_each(admin_obj: Any, request: HttpRequest, queryset: QuerySet[Any], step: Any, done: str) -> None:
    """Apply a service ``step`` to every selected row; report successes and refusals."""
    count = 0
    for row in queryset:
        try:
            step(row)
        except (ValidationError, PermissionDenied, Http404) as exc:
            reason = " ".join(exc.messages) if isinstance(exc, ValidationError) else "not allowed"
            admin_obj.message_user(request, f"{row}: {reason}", messages.ERROR)
        else:
            count += 1
    if count:
        admin_obj.message_user(request, f"{done}: {count}.", messages.SUCCESS)

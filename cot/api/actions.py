"""Which access-layer action an API request asks for."""

from typing import Any

from tenants.models import Action

METHOD_ACTIONS = {
    "GET": Action.VIEW,
    "HEAD": Action.VIEW,
    "OPTIONS": Action.VIEW,
    "POST": Action.ADD,
    "PUT": Action.CHANGE,
    "PATCH": Action.CHANGE,
    "DELETE": Action.DELETE,
}


def access_action(view: Any, request: Any) -> str:
    """An ``@action(access_action=...)``'s declared action, else the HTTP method's."""
    return getattr(view, "access_action", None) or METHOD_ACTIONS.get(request.method or "GET", Action.VIEW)

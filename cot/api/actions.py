"""Which access-layer action an API request asks for."""

from typing import Any

from rest_framework.exceptions import MethodNotAllowed

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
    """An ``@action(access_action=...)``'s declared action, else the HTTP method's.

    A method that names no action (``TRACE``, invented ones) is refused with 405 before
    any rule runs, rather than being read as the mildest action.
    """
    declared = getattr(view, "access_action", None)
    if declared:
        return str(declared)
    method = (request.method or "").upper()
    if method not in METHOD_ACTIONS:
        raise MethodNotAllowed(method)
    return METHOD_ACTIONS[method]

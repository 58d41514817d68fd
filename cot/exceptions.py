"""Errors every layer may raise and every door (API, cockpit) knows how to answer."""

from django.core.exceptions import ValidationError


class Conflict(ValidationError):
    """The request is well-formed but the row's state forbids it, or changed under it: HTTP 409.

    A ``ValidationError`` subclass, so the cockpit's forms and actions show its message
    as they show any refusal; the API answers 409 instead of 400.
    """

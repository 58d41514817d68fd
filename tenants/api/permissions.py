"""The API's permission class: a thin adapter over ``tenants.access``."""

from typing import Any

from rest_framework import permissions

from cot.api.actions import access_action
from tenants.access import caller_for, caller_may_add
from tenants.models import Action


class TenantAccessPermission(permissions.BasePermission):
    """Authenticated callers with access; model-level refusals are 403, row-level ones 404."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        caller = caller_for(user)
        if caller is None:
            self.message = "Your account has no access."
            return False
        action = access_action(view, request)
        model = getattr(getattr(view, "queryset", None), "model", None)
        if model is None:
            return True
        if not caller.allows(action, model._meta.label):
            self.message = "This credential is read-only."
            return False
        if action == Action.ADD and not getattr(view, "detail", False) and not caller_may_add(caller, model):
            self.message = f"You may not create {model._meta.verbose_name_plural}."
            return False
        return True

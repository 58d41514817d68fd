"""The API's permission class: a thin adapter over ``tenants.access``."""

from typing import Any

from rest_framework import permissions

from cot.api.actions import access_action
from cot.api.exceptions import MaintenanceError
from tenants.access import add_refusal, caller_for, closed_for_maintenance, maintenance_notice
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
            closed = closed_for_maintenance(user)
            if closed is not None:
                raise MaintenanceError(maintenance_notice(closed))
            self.message = "Your account has no access."
            return False
        action = access_action(view, request)
        model = getattr(getattr(view, "queryset", None), "model", None)
        if model is None:
            return True
        refusal = caller.refusal(action, model._meta.label)
        if refusal is None and action == Action.ADD and not getattr(view, "detail", False):
            refusal = add_refusal(caller, model)
        if refusal is not None:
            self.message = refusal
            return False
        return True

"""Keep device payload data (the ``telemetry`` alias) apart from customer and user data."""

from typing import Any

TELEMETRY_ALIAS = "telemetry"
# Listed by name, not marked on the class: migrations see historical models, which carry
# no custom class attributes.
TELEMETRY_MODELS = frozenset({"devices.measurement", "devices.event", "devices.alarm", "devices.operationresult"})


def is_telemetry_model(model: Any) -> bool:
    """Whether ``model`` holds device payload data."""
    return model._meta.label_lower in TELEMETRY_MODELS


class TelemetryRouter:
    """Routes payload models to ``telemetry`` and everything else to ``default``.

    Relations across the two stores are refused: payload rows reference devices and
    tenants by id only, so a device credential can never join its way into user data.
    """

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return TELEMETRY_ALIAS if is_telemetry_model(model) else "default"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return self.db_for_read(model)

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return is_telemetry_model(obj1) == is_telemetry_model(obj2)

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        if app_label == "auditlog":
            # auditlog's own LogEntry is swapped for audit.AuditEntry; its table would be an
            # unused second trail (and one Django's flush does not know about).
            return False
        if model_name is None:
            return db == "default"
        return (db == TELEMETRY_ALIAS) == (f"{app_label}.{model_name}" in TELEMETRY_MODELS)

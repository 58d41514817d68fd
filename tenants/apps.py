"""Tenants, users, roles, the access layer and the cockpit."""

from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        from tenants.access import register_rules

        register_rules()
        from tenants.api.routes import register_routes

        register_routes()
        from tenants.isolation import register_tenants_checks

        register_tenants_checks()
        from auditlog.registry import auditlog

        from cot import checks  # noqa: F401  (registers the platform's deployment checks)
        from tenants.api import schema  # noqa: F401  (registers the OpenAPI auth extensions)
        from tenants.models import Role, Tenant, User
        from tenants.services import POLICY_FIELDS

        auditlog.register(Tenant, include_fields=["slug", "name", "status", "kind", *POLICY_FIELDS])
        auditlog.register(Role, include_fields=["name", "kind", "rights", "description"])
        auditlog.register(User, include_fields=["email", "full_name", "tenant", "role", "is_active", "is_superuser"])

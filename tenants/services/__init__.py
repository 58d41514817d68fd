"""Every write to tenants, users, roles, rights and API tokens.

Each ``do_*`` function checks access through ``tenants.access``, changes state and
records the audit event in one transaction. ``actor=None`` means the platform itself
(a management command run by someone with shell access); every other caller passes the
acting user and is checked.

Split by subject: ``tenants``, ``roles``, ``users``, ``tokens`` and ``support`` (support
grants). Callers import from ``tenants.services`` only, so a subject can move between
modules without touching them. The reads they use with the writes (``builtin_role``,
``policy_fields_for``, ``POLICY_FIELDS``) live in ``tenants.selectors`` and are re-exported here.
"""

from tenants.selectors import POLICY_FIELDS, builtin_role, policy_fields_for
from tenants.services.roles import do_create_role, do_delete_role, do_update_role
from tenants.services.support import (
    SupportLinkRefused,
    do_create_support_grant,
    do_expire_support_grants,
    do_open_support_grant,
    do_revoke_support_grant,
)
from tenants.services.tenants import (
    do_create_tenant,
    do_set_tenant_maintenance,
    do_set_tenant_status,
    do_update_tenant_policy,
)
from tenants.services.tokens import do_create_api_token, do_revoke_api_token
from tenants.services.users import (
    EMAIL_IN_USE,
    do_change_user_role,
    do_create_user,
    do_reset_2fa,
    do_set_password,
    do_update_user,
)

__all__ = [
    "EMAIL_IN_USE",
    "POLICY_FIELDS",
    "SupportLinkRefused",
    "builtin_role",
    "do_change_user_role",
    "do_create_api_token",
    "do_create_role",
    "do_create_support_grant",
    "do_create_tenant",
    "do_create_user",
    "do_delete_role",
    "do_expire_support_grants",
    "do_open_support_grant",
    "do_reset_2fa",
    "do_revoke_api_token",
    "do_revoke_support_grant",
    "do_set_password",
    "do_set_tenant_maintenance",
    "do_set_tenant_status",
    "do_update_role",
    "do_update_tenant_policy",
    "do_update_user",
    "policy_fields_for",
]

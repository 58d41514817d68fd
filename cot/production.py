"""Start-up guard for ``COT_ENV=production``: refuse settings that are only safe on a laptop."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured

MIN_SECRET_KEY_LENGTH = 50
MIN_HASH_KEY_LENGTH = 32


def _shares_material(key: str, other: str) -> bool:
    # The development defaults are SECRET_KEY plus a suffix; containment either way also
    # catches keys made by hand from another one (equal, prefixed, suffixed, cut short).
    return bool(key) and bool(other) and (key in other or other in key)


def _own_key_problem(name: str, key: str, *, secret_key: str, development_secret_key: str) -> str | None:
    """What is wrong with a key that production needs set on its own, or None."""
    if not key:
        return f"{name} is not set"
    if len(key) < MIN_HASH_KEY_LENGTH or len(set(key)) < 5:
        return f"{name} is shorter than {MIN_HASH_KEY_LENGTH} characters or too repetitive"
    if _shares_material(key, secret_key):
        return f"{name} is not set on its own (it is derived from SECRET_KEY)"
    if _shares_material(key, development_secret_key):
        return f"{name} is derived from the built-in development key"
    return None


def enforce_production_settings(
    *,
    debug: bool,
    secret_key: str,
    allowed_hosts: list[str],
    development_secret_key: str,
    token_hash_key: str,
    audit_chain_key: str,
    databases: dict[str, dict[str, Any]],
    migration_databases: dict[str, dict[str, Any]],
) -> None:
    """Raise ``ImproperlyConfigured`` naming every problem at once, so one restart fixes them all.

    ``token_hash_key`` and ``audit_chain_key`` are the effective keys; in development they
    default to values derived from ``secret_key``, which production refuses: whoever learns
    the session signing key must not also learn the audit chain's or the token hashes' key.
    """
    problems = []
    if debug:
        problems.append("DEBUG is on")
    if secret_key == development_secret_key or secret_key.startswith("django-insecure"):
        problems.append("SECRET_KEY is the built-in development key")
    elif len(secret_key) < MIN_SECRET_KEY_LENGTH or len(set(secret_key)) < 5:
        problems.append(f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters or too repetitive")
    own_keys = {"COT_TOKEN_HASH_KEY": token_hash_key, "COT_AUDIT_CHAIN_KEY": audit_chain_key}
    key_problems = {
        name: _own_key_problem(name, key, secret_key=secret_key, development_secret_key=development_secret_key)
        for name, key in own_keys.items()
    }
    problems += [problem for problem in key_problems.values() if problem]
    if not any(key_problems.values()) and _shares_material(token_hash_key, audit_chain_key):
        problems.append("COT_TOKEN_HASH_KEY and COT_AUDIT_CHAIN_KEY are the same key (give each its own)")
    if not allowed_hosts:
        problems.append("ALLOWED_HOSTS is empty")
    problems += [
        f"{name} names the same role as the application's ({databases[alias].get('USER')}): "
        "migrations must run as the owner role, and the application must not own the tables"
        for alias, name in (("default", "MIGRATION_DATABASE_URL"), ("telemetry", "TELEMETRY_MIGRATION_DATABASE_URL"))
        if migration_databases[alias].get("USER") == databases[alias].get("USER")
    ]
    if problems:
        raise ImproperlyConfigured("COT_ENV=production refuses to start: " + "; ".join(problems) + ".")

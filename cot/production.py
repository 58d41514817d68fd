"""Start-up guard for ``COT_ENV=production``: refuse settings that are only safe on a laptop."""

from django.core.exceptions import ImproperlyConfigured

MIN_SECRET_KEY_LENGTH = 50


def enforce_production_settings(
    *, debug: bool, secret_key: str, allowed_hosts: list[str], development_secret_key: str
) -> None:
    """Raise ``ImproperlyConfigured`` naming every problem at once, so one restart fixes them all."""
    problems = []
    if debug:
        problems.append("DEBUG is on")
    if secret_key == development_secret_key or secret_key.startswith("django-insecure"):
        problems.append("SECRET_KEY is the built-in development key")
    elif len(secret_key) < MIN_SECRET_KEY_LENGTH or len(set(secret_key)) < 5:
        problems.append(f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters or too repetitive")
    if not allowed_hosts:
        problems.append("ALLOWED_HOSTS is empty")
    if problems:
        raise ImproperlyConfigured("COT_ENV=production refuses to start: " + "; ".join(problems) + ".")

"""Secrets shown once and stored as keyed hashes: API tokens (and, later, device credentials).

We write this instead of using DRF's ``TokenAuthentication`` (plain-text keys, one per
user) or django-rest-knox (no scopes, no per-tenant lifetime cap, no recognisable
prefix per credential kind): it is a few lines around ``secrets`` and ``hmac``.
"""

import hashlib
import hmac
import secrets

from django.conf import settings

SECRET_BYTES = 32
SHOWN_PREFIX_LENGTH = 12


def new_secret(prefix: str) -> str:
    """A high-entropy secret with a recognisable prefix for secret scanners."""
    return prefix + secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(secret: str) -> str:
    """Keyed hash under which a secret is stored and looked up (one indexed lookup)."""
    return hmac.new(settings.TOKEN_HASH_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()


def shown_prefix(secret: str) -> str:
    """The part of a secret that may be displayed to tell credentials apart."""
    return secret[:SHOWN_PREFIX_LENGTH]

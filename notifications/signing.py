"""Webhook signatures: HMAC-SHA256 over the timestamp and the body, with a secret derived per rule.

The secret is ``HMAC(server key, rule's salt)``: the server can always recompute it to
sign, yet the database holds only the salt, so a copy of the database signs nothing
(the key, ``COT_TOKEN_HASH_KEY``, lives outside it). It is shown once, when the rule is
made or its secret rotated (a new salt). Receivers check::

    expected = hex(HMAC-SHA256(secret, timestamp + "." + body))
    X-Cot-Signature == "sha256=" + expected, and |now - timestamp| small (replays)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

SECRET_PREFIX = "cot_whsec_"  # noqa: S105 (public prefix for secret scanners)
SIGNATURE_HEADER = "X-Cot-Signature"
TIMESTAMP_HEADER = "X-Cot-Timestamp"


def new_salt() -> str:
    """A fresh salt: a new secret."""
    return secrets.token_hex(32)


def secret_for(salt: str) -> str:
    """The signing secret of the rule with this salt."""
    key = f"{settings.TOKEN_HASH_KEY}:notifications.webhook".encode()
    return SECRET_PREFIX + hmac.new(key, salt.encode(), hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Cot-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"

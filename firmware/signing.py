"""Ed25519 signatures over firmware manifests: pure functions, no database, no Django.

A firmware image is described by a *manifest* (what it is, for whom, until when) and a
tenant signs that manifest, not the image bytes: the manifest carries the image's SHA-256
and size, so a signature over it binds the image too, and the signer never needs the image
itself. The server only ever holds public keys; private keys stay with the tenant (the
``manage.py sign_firmware`` command signs on the operator's own, possibly air-gapped,
machine).

The signature covers the RFC 8785 (JSON Canonicalization Scheme) serialization of the
manifest. JSON has many spellings of the same object (key order, whitespace, number and
string escapes); a device receives the manifest as JSON, parses it and must re-serialize it
to the very bytes that were signed, in whatever language its firmware is written in. RFC 8785
pins exactly one spelling and has implementations for most languages, so the server, the
signing tool and the device agree without sharing code.

This module imports nothing from Django, so the command (and anyone's own script) can use it
without a configured project.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST_FORMAT = "cot-firmware-manifest/1"

# The fields of a manifest of MANIFEST_FORMAT, no more and no fewer.
MANIFEST_FIELDS = frozenset(
    {"format", "tenant", "version", "security_version", "sha256", "size", "device_types", "expires_at"}
)

# RFC 8785 serializes numbers as IEEE 754 doubles (I-JSON, RFC 7493): only integers up to
# 2**53 - 1 survive a round trip through every JSON parser unchanged.
MAX_SAFE_INTEGER = 2**53 - 1

RAW_PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_EXPIRES_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
# One PEM block and nothing else around it (trailing text would be silently ignored by the
# PEM loader, and a pasted key with something appended is more likely a mistake than a key).
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n-----END \1-----")
# The DER prefix of an Ed25519 SubjectPublicKeyInfo, followed by the 32 raw bytes: someone
# who pastes the base64 body of a PEM without its BEGIN/END lines gets a hint.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class KeyProblem(ValueError):
    """A key that cannot be used, with a message meant for the person who supplied it.

    Messages never contain the key material (it could be a private key pasted by mistake).
    """


class KeyNeedsPassword(KeyProblem):
    """The private key is encrypted and no password was given."""


def build_manifest(
    *,
    tenant: str,
    version: str,
    security_version: int,
    sha256: str,
    size: int,
    device_types: Iterable[tuple[str, str]],
    expires_at: datetime | None,
) -> dict[str, Any]:
    """The manifest of one image, in its one canonical form.

    ``device_types`` are (manufacturer, model) pairs; they are sorted (and duplicates
    dropped) so that the same set of types always gives the same manifest, whatever order
    the database returned them in. ``expires_at`` must be aware; it is written in UTC to the
    second. Raises ``ValueError`` naming the offending field.
    """
    _require_text("tenant", tenant)
    _require_text("version", version)
    _require_safe_int("security_version", security_version)
    _require_safe_int("size", size)
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError("sha256 must be 64 hexadecimal characters (the SHA-256 of the image).")
    types: set[tuple[str, str]] = set()
    for pair in device_types:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError("device_types must be (manufacturer, model) pairs.")
        manufacturer, model = pair
        _require_text("device type manufacturer", manufacturer)
        _require_text("device type model", model)
        types.add((manufacturer, model))
    if expires_at is None:
        expires = None
    elif not isinstance(expires_at, datetime):
        raise ValueError("expires_at must be a datetime or None.")
    elif expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise ValueError("expires_at must be an aware datetime (with a time zone).")
    else:
        # Not strftime: its %Y does not pad years before 1000 to four digits on every platform.
        e = expires_at.astimezone(UTC)
        expires = f"{e.year:04d}-{e.month:02d}-{e.day:02d}T{e.hour:02d}:{e.minute:02d}:{e.second:02d}Z"
    return {
        "format": MANIFEST_FORMAT,
        "tenant": tenant,
        "version": version,
        "security_version": security_version,
        "sha256": sha256.lower(),
        "size": size,
        "device_types": [{"manufacturer": m, "model": d} for m, d in sorted(types)],
        "expires_at": expires,
    }


def check_manifest(manifest: Any) -> dict[str, Any]:
    """The manifest, if ``manifest`` (parsed JSON) is exactly one that ``build_manifest`` makes.

    Used before signing a manifest read from a file: signing something the server would
    build differently (another field, unsorted device types, an upper-case hash) yields a
    signature that never verifies, so it is refused here with the reason instead.
    Raises ``ValueError``.
    """
    if not isinstance(manifest, Mapping):
        raise ValueError("Not a firmware manifest: expected a JSON object.")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f'Not a firmware manifest: "format" must be "{MANIFEST_FORMAT}".')
    fields = set(manifest.keys())
    missing = sorted(MANIFEST_FIELDS - fields)
    if missing:
        raise ValueError(f"Not a firmware manifest: it lacks {', '.join(missing)}.")
    unexpected = sorted(str(key) for key in fields - MANIFEST_FIELDS)
    if unexpected:
        raise ValueError(f"Not a firmware manifest: unexpected field(s) {', '.join(unexpected)}.")
    raw_types = manifest["device_types"]
    if not isinstance(raw_types, list) or not all(
        isinstance(item, Mapping) and set(item.keys()) == {"manufacturer", "model"} for item in raw_types
    ):
        raise ValueError('device_types must be a list of {"manufacturer": …, "model": …} objects.')
    raw_expires = manifest["expires_at"]
    expires: datetime | None = None
    if raw_expires is not None:
        try:
            expires = datetime.strptime(raw_expires, _EXPIRES_FORMAT).replace(tzinfo=UTC)
        except (TypeError, ValueError):
            raise ValueError('expires_at must be null or a UTC time like "2030-01-31T12:00:00Z".') from None
    rebuilt = build_manifest(
        tenant=manifest["tenant"],
        version=manifest["version"],
        security_version=manifest["security_version"],
        sha256=manifest["sha256"],
        size=manifest["size"],
        device_types=[(item["manufacturer"], item["model"]) for item in raw_types],
        expires_at=expires,
    )
    for field, value in rebuilt.items():
        if manifest[field] != value:
            raise ValueError(
                f"The manifest's {field} is not in canonical form (e.g. device types sorted without duplicates, "
                "a lower-case sha256): sign the manifest exactly as the server serves it."
            )
    return rebuilt


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the RFC 8785 serialization of ``manifest``.

    RFC 8785, because a device re-serializes the manifest it received and must arrive at the
    same bytes, whatever JSON library either side uses (see the module docstring).
    """
    return rfc8785.dumps(manifest)


def parse_public_key(text: str) -> bytes:
    """The raw 32 bytes of the Ed25519 public key in ``text``.

    Accepts a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo, what ``openssl pkey -pubout`` and
    ``sign_firmware --generate-key`` print) or the base64 of the raw 32 bytes (standard or
    URL-safe alphabet, padded or not). Anything else raises ``KeyProblem``.
    """
    if not isinstance(text, str):
        raise KeyProblem("Not an Ed25519 public key: expected text (PEM or base64).")
    text = text.strip()
    if not text:
        raise KeyProblem("Not an Ed25519 public key: the key is empty.")
    if "PRIVATE KEY" in text:
        raise KeyProblem(
            "Not an Ed25519 public key: this is a private key. Register only the public key; "
            "the private key must never leave the signing machine (consider this one exposed)."
        )
    if text.startswith("-----"):
        return _public_key_from_pem(text)
    raw = _b64decode(text)
    if raw is None:
        raise KeyProblem("Not an Ed25519 public key: expected a PEM public key or the base64 of the raw 32-byte key.")
    if len(raw) == len(_ED25519_SPKI_PREFIX) + RAW_PUBLIC_KEY_BYTES and raw.startswith(_ED25519_SPKI_PREFIX):
        raise KeyProblem(
            "Not an Ed25519 public key: this looks like the body of a PEM public key; "
            "include its -----BEGIN PUBLIC KEY----- and -----END PUBLIC KEY----- lines."
        )
    if len(raw) != RAW_PUBLIC_KEY_BYTES:
        raise KeyProblem(
            f"Not an Ed25519 public key: the base64 decodes to {len(raw)} bytes, an Ed25519 public key has "
            f"{RAW_PUBLIC_KEY_BYTES}."
        )
    return raw


def key_id(raw_public: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex characters of its SHA-256.

    Derived from the key alone, so the operator's signing tool, the cockpit and the device
    all compute the same id without asking the server.
    """
    if len(raw_public) != RAW_PUBLIC_KEY_BYTES:
        raise ValueError(f"An Ed25519 public key has {RAW_PUBLIC_KEY_BYTES} bytes, not {len(raw_public)}.")
    return hashlib.sha256(raw_public).hexdigest()[:16]


def verify(raw_public: bytes, manifest: Mapping[str, Any], signature: str) -> bool:
    """Whether ``signature`` (base64 of 64 bytes) is ``raw_public``'s signature of ``manifest``.

    Never raises: a malformed signature, key or manifest is simply not a valid signature.
    Whether the key may sign (the tenant's, not revoked) is the caller's question.
    """
    if not isinstance(signature, str) or not isinstance(raw_public, bytes):
        return False
    raw_signature = _b64decode(signature.strip())
    if raw_signature is None or len(raw_signature) != SIGNATURE_BYTES or len(raw_public) != RAW_PUBLIC_KEY_BYTES:
        return False
    try:
        message = canonical_bytes(manifest)
        Ed25519PublicKey.from_public_bytes(raw_public).verify(raw_signature, message)
    except (InvalidSignature, rfc8785.CanonicalizationError, ValueError, TypeError):
        return False
    return True


def canonical_signature(signature: str) -> str:
    """``signature`` in the one spelling cot stores and serves: standard base64 of the 64 bytes, padded.

    Base64 has several spellings of the same bytes (URL-safe alphabet, missing padding,
    unused low bits set in the last character); devices with strict decoders accept only
    the canonical one. Raises ``ValueError`` for anything that is not 64 bytes of base64.
    """
    raw = _b64decode(signature.strip()) if isinstance(signature, str) else None
    if raw is None or len(raw) != SIGNATURE_BYTES:
        raise ValueError("A signature is the base64 of 64 bytes.")
    return base64.b64encode(raw).decode("ascii")


def load_private_key(private_pem: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``private_pem`` (PKCS#8 PEM, encrypted or not).

    Raises ``KeyNeedsPassword`` for an encrypted key without a password and ``KeyProblem``
    for everything else that is not a usable Ed25519 private key.
    """
    try:
        key = serialization.load_pem_private_key(private_pem, password=password)
    except TypeError as exc:
        if password is None:
            raise KeyNeedsPassword("The private key is encrypted and no password was given.") from None
        raise KeyProblem("A password was given but the private key is not encrypted.") from exc
    except UnsupportedAlgorithm:
        raise KeyProblem("Not an Ed25519 private key: its algorithm is not supported.") from None
    except ValueError:
        if password is not None and b"ENCRYPTED" in private_pem:
            raise KeyProblem("Cannot decrypt the private key: wrong password?") from None
        raise KeyProblem("Cannot read the private key: expected an Ed25519 private key in PEM (PKCS#8).") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"Not an Ed25519 private key: it is {_algorithm_name(key)} key.")
    return key


def sign(private_pem: bytes, manifest: Mapping[str, Any], password: bytes | None = None) -> str:
    """The base64 (standard alphabet, padded) Ed25519 signature of ``manifest``.

    For ``manage.py sign_firmware`` and tests: the server itself never signs.
    """
    key = load_private_key(private_pem, password)
    return base64.b64encode(key.sign(canonical_bytes(manifest))).decode("ascii")


def public_key_of(private_pem: bytes, password: bytes | None = None) -> bytes:
    """The raw public key belonging to the private key in ``private_pem``."""
    return load_private_key(private_pem, password).public_key().public_bytes_raw()


def generate_key(password: bytes | None = None) -> tuple[bytes, str]:
    """A new key pair: (private key as PKCS#8 PEM, public key as PEM text to register).

    The private PEM is unencrypted unless a ``password`` is given.
    """
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem.decode("ascii")


def _public_key_from_pem(text: str) -> bytes:
    match = _PEM.fullmatch(text)
    if match is None:
        raise KeyProblem("Not an Ed25519 public key: expected exactly one PEM block and nothing around it.")
    if match.group(1) != "PUBLIC KEY":
        raise KeyProblem(f'Not an Ed25519 public key: the PEM holds "{match.group(1)}", expected "PUBLIC KEY".')
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm):
        raise KeyProblem("Not an Ed25519 public key: the PEM block cannot be read.") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem(f"Not an Ed25519 public key: it is {_algorithm_name(key)} key.")
    return key.public_bytes_raw()


def _algorithm_name(key: object) -> str:
    kinds: tuple[tuple[tuple[type, ...], str], ...] = (
        ((rsa.RSAPublicKey, rsa.RSAPrivateKey), "an RSA"),
        ((ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey), "an elliptic-curve (ECDSA)"),
        ((dsa.DSAPublicKey, dsa.DSAPrivateKey), "a DSA"),
        ((ed448.Ed448PublicKey, ed448.Ed448PrivateKey), "an Ed448"),
    )
    for types, label in kinds:
        if isinstance(key, types):
            return label
    return "another kind of"


def _b64decode(text: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not; None when it is not base64."""
    if not _BASE64.fullmatch(text):
        return None
    unpadded = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _require_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field} must be a non-empty string.")


def _require_safe_int(field: str, value: object) -> None:
    # bool is an int in Python but true/false in JSON.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"{field} must be a whole number from 0 to {MAX_SAFE_INTEGER}.")

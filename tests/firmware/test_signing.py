"""Firmware manifest signatures (firmware.signing) and the offline ``manage.py sign_firmware``."""

import base64
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management import CommandError, call_command

from firmware import signing
from firmware.signing import (
    MANIFEST_FORMAT,
    KeyNeedsPassword,
    KeyProblem,
    build_manifest,
    canonical_bytes,
    check_manifest,
    generate_key,
    key_id,
    load_private_key,
    parse_public_key,
    sign,
    verify,
)

SHA = hashlib.sha256(b"image").hexdigest()


def manifest(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "tenant": "acme",
        "version": "1.2.3",
        "security_version": 4,
        "sha256": SHA,
        "size": 1024,
        "device_types": [("Acme", "T-1000"), ("Acme", "S-1")],
        "expires_at": datetime(2030, 1, 31, 12, 0, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return build_manifest(**fields)


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    private_pem, public_pem = generate_key()
    return private_pem, parse_public_key(public_pem)


def pem_of(key: Any, private: bool = False) -> str:
    if private:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# --- manifests ---------------------------------------------------------------------------


def test_build_manifest_shape():
    assert manifest() == {
        "format": MANIFEST_FORMAT,
        "tenant": "acme",
        "version": "1.2.3",
        "security_version": 4,
        "sha256": SHA,
        "size": 1024,
        "device_types": [{"manufacturer": "Acme", "model": "S-1"}, {"manufacturer": "Acme", "model": "T-1000"}],
        "expires_at": "2030-01-31T12:00:00Z",
    }
    assert MANIFEST_FORMAT == "cot-firmware-manifest/1"


def test_build_manifest_normalizes_time_hash_and_types():
    plus_two = timezone(timedelta(hours=2))
    built = manifest(
        expires_at=datetime(2030, 1, 31, 14, 0, 0, 999999, tzinfo=plus_two),
        sha256=SHA.upper(),
        device_types=[("B", "x"), ("A", "y"), ("B", "x")],
    )
    assert built["expires_at"] == "2030-01-31T12:00:00Z"
    assert built["sha256"] == SHA
    assert built["device_types"] == [{"manufacturer": "A", "model": "y"}, {"manufacturer": "B", "model": "x"}]
    assert manifest(expires_at=None)["expires_at"] is None
    assert manifest(size=0, security_version=2**53 - 1)["security_version"] == 2**53 - 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sha256": "abc"}, "sha256 must be 64 hexadecimal"),
        ({"sha256": "g" * 64}, "sha256 must be 64 hexadecimal"),
        ({"size": -1}, "size must be a whole number from 0 to 9007199254740991"),
        ({"size": 2**53}, "size must be a whole number"),
        ({"size": 1.0}, "size must be a whole number"),
        ({"security_version": True}, "security_version must be a whole number"),
        ({"security_version": -5}, "security_version must be a whole number"),
        ({"expires_at": datetime(2030, 1, 1)}, "expires_at must be an aware datetime"),
        ({"expires_at": "2030-01-01T00:00:00Z"}, "expires_at must be a datetime"),
        ({"tenant": ""}, "tenant must be a non-empty string"),
        ({"version": None}, "version must be a non-empty string"),
        ({"device_types": [("Acme",)]}, "device_types must be"),
        ({"device_types": [("Acme", "")]}, "device type model must be"),
    ],
)
def test_build_manifest_refuses_bad_input(overrides, message):
    with pytest.raises(ValueError, match=message):
        manifest(**overrides)


def test_canonical_bytes_ignore_key_order_and_whitespace():
    original = manifest()
    shuffled = json.loads(json.dumps(dict(reversed(list(original.items()))), indent=4))
    assert list(shuffled) != list(original)
    assert canonical_bytes(shuffled) == canonical_bytes(original)
    # RFC 8785: sorted keys, no whitespace.
    assert canonical_bytes({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    assert canonical_bytes(original).startswith(b'{"device_types":[{"manufacturer":"Acme","model":"S-1"}')


def test_check_manifest_accepts_what_build_manifest_makes():
    original = manifest()
    assert check_manifest(json.loads(json.dumps(original))) == original


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format="other/1"), '"format" must be "cot-firmware-manifest/1"'),
        (lambda m: m.pop("size"), "it lacks size"),
        (lambda m: m.update(signature="x"), "unexpected field"),
        (lambda m: m["device_types"].reverse(), "device_types is not in canonical form"),
        (lambda m: m.update(sha256=m["sha256"].upper()), "sha256 is not in canonical form"),
        (lambda m: m.update(device_types=[["Acme", "T"]]), "device_types must be a list of"),
        (lambda m: m.update(expires_at="tomorrow"), "expires_at must be null or a UTC time"),
        (lambda m: m.update(size="1024"), "size must be a whole number"),
    ],
)
def test_check_manifest_refusals(change, message):
    data = json.loads(json.dumps(manifest()))
    change(data)
    with pytest.raises(ValueError, match=message):
        check_manifest(data)
    with pytest.raises(ValueError, match="expected a JSON object"):
        check_manifest([])


# --- signatures --------------------------------------------------------------------------


def test_sign_and_verify_round_trip(keypair):
    private_pem, raw_public = keypair
    signature = sign(private_pem, manifest())
    assert len(base64.b64decode(signature, validate=True)) == 64
    assert verify(raw_public, manifest(), signature)
    # The device's view: the manifest parsed from JSON and re-ordered verifies just the same.
    reparsed = json.loads(json.dumps(dict(sorted(manifest().items(), reverse=True)), indent=2))
    assert verify(raw_public, reparsed, signature)


def test_signature_is_over_the_canonical_bytes(keypair):
    private_pem, raw_public = keypair
    signature = base64.b64decode(sign(private_pem, manifest()))
    ed25519.Ed25519PublicKey.from_public_bytes(raw_public).verify(signature, canonical_bytes(manifest()))


def test_verify_accepts_urlsafe_and_unpadded_signatures(keypair):
    private_pem, raw_public = keypair
    raw = base64.b64decode(sign(private_pem, manifest()))
    assert verify(raw_public, manifest(), base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert verify(raw_public, manifest(), base64.b64encode(raw).decode().rstrip("="))


@pytest.mark.parametrize(
    "overrides",
    [
        {"size": 1025},
        {"sha256": hashlib.sha256(b"other image").hexdigest()},
        {"security_version": 5},
        {"device_types": [("Acme", "T-1000")]},
        {"device_types": [("Acme", "T-1000"), ("Acme", "S-2")]},
        {"tenant": "globex"},
        {"expires_at": datetime(2031, 1, 31, 12, 0, 0, tzinfo=UTC)},
        {"expires_at": None},
        {"version": "1.2.4"},
    ],
)
def test_any_changed_field_invalidates(keypair, overrides):
    private_pem, raw_public = keypair
    signature = sign(private_pem, manifest())
    assert not verify(raw_public, manifest(**overrides), signature)


def test_wrong_key_does_not_verify(keypair):
    private_pem, _ = keypair
    _, other_public = generate_key()
    assert not verify(parse_public_key(other_public), manifest(), sign(private_pem, manifest()))


@pytest.mark.parametrize(
    "bad",
    ["", "not base64!", "AAAA", base64.b64encode(b"x" * 63).decode(), base64.b64encode(b"x" * 65).decode(), None, 7],
)
def test_malformed_signature_is_false_not_an_error(keypair, bad):
    _, raw_public = keypair
    assert verify(raw_public, manifest(), bad) is False


def test_verify_never_raises_on_bad_key_or_manifest(keypair):
    private_pem, raw_public = keypair
    signature = sign(private_pem, manifest())
    assert verify(raw_public[:31], manifest(), signature) is False
    assert verify(b"", manifest(), signature) is False
    assert verify(raw_public, {"x": 1.5e400 * 0}, signature) is False  # NaN cannot be canonicalized
    assert verify(raw_public, {"x": object()}, signature) is False


def test_sign_refuses_non_ed25519_and_unreadable_keys():
    rsa_pem = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048), private=True).encode()
    with pytest.raises(KeyProblem, match="Not an Ed25519 private key: it is an RSA key"):
        sign(rsa_pem, manifest())
    with pytest.raises(KeyProblem, match="Cannot read the private key"):
        sign(b"garbage", manifest())


def test_encrypted_private_key():
    encrypted_pem, public_pem = generate_key(b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in encrypted_pem
    with pytest.raises(KeyNeedsPassword):
        load_private_key(encrypted_pem)
    with pytest.raises(KeyProblem, match="wrong password"):
        load_private_key(encrypted_pem, b"wrong")
    signature = sign(encrypted_pem, manifest(), password=b"correct horse")
    assert verify(parse_public_key(public_pem), manifest(), signature)
    plain_pem, _ = generate_key()
    with pytest.raises(KeyProblem, match="not encrypted"):
        load_private_key(plain_pem, b"unneeded")


# --- public keys -------------------------------------------------------------------------


def test_parse_public_key_forms(keypair):
    private_pem, raw_public = keypair
    public_pem = pem_of(load_private_key(private_pem).public_key())
    assert parse_public_key(public_pem) == raw_public
    assert parse_public_key(f"\n  {public_pem}\n\n") == raw_public
    assert parse_public_key(public_pem.replace("\n", "\r\n")) == raw_public
    assert parse_public_key(base64.b64encode(raw_public).decode()) == raw_public
    assert parse_public_key(base64.b64encode(raw_public).decode().rstrip("=")) == raw_public
    assert parse_public_key(base64.urlsafe_b64encode(raw_public).decode()) == raw_public
    assert parse_public_key(base64.urlsafe_b64encode(raw_public).decode().rstrip("=")) == raw_public


def test_parse_public_key_refusals(keypair):
    private_pem, raw_public = keypair
    public_pem = pem_of(load_private_key(private_pem).public_key())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cases = [
        (pem_of(rsa_key.public_key()), "it is an RSA key"),
        (pem_of(ec_key.public_key()), "it is an elliptic-curve"),
        (private_pem.decode(), "this is a private key"),
        (pem_of(rsa_key, private=True), "this is a private key"),
        (base64.b64encode(raw_public[:31]).decode(), "decodes to 31 bytes"),
        (base64.b64encode(raw_public + b"\0").decode(), "decodes to 33 bytes"),
        ("definitely not a key", "expected a PEM public key or the base64"),
        ("", "the key is empty"),
        (public_pem + "trailing junk", "exactly one PEM block"),
        (public_pem + public_pem, "exactly one PEM block"),
        (public_pem.replace("PUBLIC KEY", "CERTIFICATE"), 'holds "CERTIFICATE"'),
        (public_pem.replace("MCowBQYDK2Vw", "MCowBQYDK2Vx"), "cannot be read"),
        ("".join(public_pem.splitlines()[1:-1]), "body of a PEM public key"),
    ]
    for text, message in cases:
        with pytest.raises(KeyProblem, match=message) as refused:
            parse_public_key(text)
        assert str(refused.value).startswith("Not an Ed25519 public key: "), text
    assert issubclass(KeyProblem, ValueError)


def test_private_key_material_never_in_messages(keypair):
    private_pem, _ = keypair
    body = "".join(private_pem.decode().splitlines()[1:-1])
    with pytest.raises(KeyProblem) as refused:
        parse_public_key(private_pem.decode())
    assert body[:20] not in str(refused.value)
    assert "private key" in str(refused.value)


def test_key_id_is_stable_and_short(keypair):
    _, raw_public = keypair
    assert key_id(raw_public) == hashlib.sha256(raw_public).hexdigest()[:16]
    assert key_id(bytes(32)) == "66687aadf862bd77"
    assert key_id(raw_public) != key_id(parse_public_key(generate_key()[1]))
    with pytest.raises(ValueError):
        key_id(b"short")


def test_signing_module_does_not_need_django():
    assert not any(name == "django" or name.startswith("django.") for name in signing.__dict__)
    source = Path(signing.__file__).read_text()
    assert "import django" not in source
    assert "from django" not in source


# --- manage.py sign_firmware -------------------------------------------------------------


def command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("sign_firmware", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_generate_key_writes_0600_and_prints_public_key(tmp_path):
    path = tmp_path / "private.pem"
    out, err = command("--generate-key", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert out.startswith("-----BEGIN PUBLIC KEY-----")
    raw_public = parse_public_key(out)
    assert raw_public == load_private_key(path.read_bytes()).public_key().public_bytes_raw()
    assert key_id(raw_public) in err
    assert "BEGIN PRIVATE KEY" not in out + err


def test_generate_key_refuses_to_overwrite(tmp_path):
    path = tmp_path / "private.pem"
    path.write_text("the only copy of a registered key")
    with pytest.raises(CommandError, match="already exists: refusing to overwrite"):
        command("--generate-key", str(path))
    assert path.read_text() == "the only copy of a registered key"
    with pytest.raises(CommandError, match="Cannot create"):
        command("--generate-key", str(tmp_path / "missing-dir" / "key.pem"))


def test_generate_encrypted_key(tmp_path, monkeypatch):
    monkeypatch.setenv("FW_KEY_PASSWORD", "s3cret-pass")
    path = tmp_path / "private.pem"
    command("--generate-key", str(path), "--password-env", "FW_KEY_PASSWORD")
    with pytest.raises(KeyNeedsPassword):
        load_private_key(path.read_bytes())
    load_private_key(path.read_bytes(), b"s3cret-pass")


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "private.pem"
    out, _ = command("--generate-key", str(path))
    return path, parse_public_key(out)


def test_sign_a_manifest_file(tmp_path, key_file):
    path, raw_public = key_file
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(manifest(), indent=2))
    out, err = command("--key", str(path), str(manifest_file))
    signature = out.strip()
    assert out == signature + "\n"  # the signature alone on stdout
    assert verify(raw_public, manifest(), signature)
    assert f"Signed with key {key_id(raw_public)}" in err


def test_sign_a_manifest_from_stdin(monkeypatch, key_file):
    path, raw_public = key_file
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(manifest())))
    out, _ = command("--key", str(path), "-")
    assert verify(raw_public, manifest(), out.strip())


def test_sign_with_an_encrypted_key(tmp_path, monkeypatch):
    encrypted_pem, public_pem = generate_key(b"pass phrase")
    path = tmp_path / "private.pem"
    path.write_bytes(encrypted_pem)
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(manifest()))
    with pytest.raises(CommandError, match=r"is encrypted: give its password .* --password-env NAME"):
        command("--key", str(path), str(manifest_file))
    with pytest.raises(CommandError, match="the environment variable FW_PASS is not set"):
        command("--key", str(path), "--password-env", "FW_PASS", str(manifest_file))
    monkeypatch.setenv("FW_PASS", "wrong")
    with pytest.raises(CommandError, match="wrong password"):
        command("--key", str(path), "--password-env", "FW_PASS", str(manifest_file))
    monkeypatch.setenv("FW_PASS", "pass phrase")
    out, _ = command("--key", str(path), "--password-env", "FW_PASS", str(manifest_file))
    assert verify(parse_public_key(public_pem), manifest(), out.strip())


def test_command_key_errors(tmp_path):
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(manifest()))
    with pytest.raises(CommandError, match="No such private key file"):
        command("--key", str(tmp_path / "absent.pem"), str(manifest_file))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(CommandError, match="Cannot read the private key"):
        command("--key", str(garbage), str(manifest_file))
    rsa_file = tmp_path / "rsa.pem"
    rsa_file.write_text(pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048), private=True))
    with pytest.raises(CommandError, match="Not an Ed25519 private key: it is an RSA key"):
        command("--key", str(rsa_file), str(manifest_file))
    with pytest.raises(CommandError, match="Cannot read the private key file"):
        command("--key", str(tmp_path), str(manifest_file))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Not a firmware manifest: not valid JSON"),
        ('{"format": "a", "format": "b"}', 'duplicate name "format"'),
        ('{"size": NaN}', "NaN is not JSON"),
        ("[]", "expected a JSON object"),
        ('{"hello": "world"}', '"format" must be'),
        (json.dumps({k: v for k, v in manifest().items() if k != "sha256"}), "it lacks sha256"),
        (json.dumps({**manifest(), "size": -1}), "size must be a whole number"),
    ],
)
def test_command_refuses_what_is_not_a_manifest(tmp_path, key_file, content, message):
    path, _ = key_file
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(content)
    with pytest.raises(CommandError, match=message) as refused:
        command("--key", str(path), str(manifest_file))
    assert str(manifest_file) in str(refused.value)


def test_command_argument_errors(tmp_path, key_file):
    path, _ = key_file
    with pytest.raises(CommandError, match="No such manifest file"):
        command("--key", str(path), str(tmp_path / "absent.json"))
    with pytest.raises(CommandError, match="Name the manifest file"):
        command("--key", str(path))
    with pytest.raises(CommandError, match="leave out the manifest"):
        command("--generate-key", str(tmp_path / "new.pem"), "manifest.json")
    with pytest.raises(CommandError, match="one of the arguments --key --generate-key is required"):
        command(str(tmp_path / "manifest.json"))


def test_command_is_offline():
    from firmware.management.commands.sign_firmware import Command

    assert Command.requires_system_checks == []
    assert Command.requires_migrations_checks is False


def test_manage_py_runs_without_database_or_redis(tmp_path):
    """The operator's air-gapped machine has the checkout but no server: nothing may connect."""
    root = Path(__file__).resolve().parents[2]
    nowhere = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "TELEMETRY_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    manage = [sys.executable, str(root / "manage.py"), "sign_firmware"]
    key = tmp_path / "private.pem"
    generated = subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [*manage, "--generate-key", str(key)], env=nowhere, capture_output=True, text=True, check=True
    )
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(manifest()))
    signed = subprocess.run(  # noqa: S603
        [*manage, "--key", str(key), str(manifest_file)], env=nowhere, capture_output=True, text=True, check=True
    )
    assert verify(parse_public_key(generated.stdout), manifest(), signed.stdout.strip())
    assert signed.stdout.count("\n") == 1

"""``manage.py sign_firmware``: sign a firmware manifest offline, or make a signing key.

    manage.py sign_firmware --key private.pem [--password-env NAME] manifest.json|-
    manage.py sign_firmware --generate-key private.pem [--password-env NAME]

Offline by design: it reads no settings beyond the defaults and never touches the database,
so an operator can run it from a checkout on an air-gapped machine where the private key
lives. The signature alone goes to stdout (to pipe it on); everything else goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from firmware.signing import (
    KeyNeedsPassword,
    KeyProblem,
    check_manifest,
    generate_key,
    key_id,
    parse_public_key,
    public_key_of,
    sign,
)


class Command(BaseCommand):
    help = (
        "Sign a firmware manifest (as served by GET /api/v1/firmware/{id}/manifest/) with an Ed25519 private key, "
        "offline: prints the base64 signature alone on stdout and the key id on stderr. Or, with --generate-key, "
        "write a new private key (mode 0600) and print its public key to register with the tenant."
    )
    # No system checks and no migration check: neither a database nor a configured server is needed.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--key", metavar="PRIVATE_PEM", help="the Ed25519 private key (PKCS#8 PEM) to sign with")
        action.add_argument(
            "--generate-key",
            metavar="PRIVATE_PEM",
            help="write a new Ed25519 private key to this file (never overwritten) and print its public key",
        )
        parser.add_argument(
            "--password-env",
            metavar="NAME",
            help="read the private key's password from this environment variable "
            "(with --generate-key: encrypt the new key with it)",
        )
        parser.add_argument("manifest", nargs="?", help="the manifest JSON file to sign, or - for stdin")

    def handle(
        self,
        *args: Any,
        key: str | None = None,
        generate_key: str | None = None,
        password_env: str | None = None,
        manifest: str | None = None,
        **options: Any,
    ) -> None:
        password = self._password(password_env)
        if generate_key is not None:
            if manifest is not None:
                raise CommandError("--generate-key makes a key and signs nothing: leave out the manifest.")
            self._generate(Path(generate_key), password)
            return
        assert key is not None  # the argument group requires one of the two
        if manifest is None:
            raise CommandError("Name the manifest file to sign (or - to read it from stdin).")
        self._sign(Path(key), manifest, password)

    def _sign(self, key_path: Path, manifest_name: str, password: bytes | None) -> None:
        private_pem = self._read_bytes(key_path, "private key")
        try:
            raw_public = public_key_of(private_pem, password)
        except KeyNeedsPassword:
            raise CommandError(
                f"The private key in {key_path} is encrypted: give its password in an environment variable "
                "named by --password-env NAME."
            ) from None
        except KeyProblem as exc:
            raise CommandError(f"{key_path}: {exc}") from None
        manifest = check_manifest_or_fail(self._read_manifest(manifest_name), manifest_name)
        signature = sign(private_pem, manifest, password)
        self.stderr.write(f"Signed with key {key_id(raw_public)}.")
        self.stdout.write(signature)

    def _generate(self, path: Path, password: bytes | None) -> None:
        private_pem, public_pem = generate_key(password)
        try:
            # O_EXCL: never overwrite a key (it may be the only copy of a registered one);
            # 0600 from the start, so the key is never readable by others, not even briefly.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise CommandError(f"{path} already exists: refusing to overwrite a key. Choose another file.") from None
        except OSError as exc:
            raise CommandError(f"Cannot create {path}: {exc.strerror}.") from None
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(private_pem)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise CommandError(f"Cannot write {path}: {exc.strerror}.") from None
        raw_public = parse_public_key(public_pem)
        encrypted = " (encrypted)" if password else ""
        self.stderr.write(
            f"Wrote the private key{encrypted} to {path} (mode 0600), key id {key_id(raw_public)}. Keep it offline; "
            "register the public key below with the tenant (/api/v1/firmware-keys/)."
        )
        self.stdout.write(public_pem, ending="")

    def _password(self, name: str | None) -> bytes | None:
        if name is None:
            return None
        value = os.environ.get(name)
        if value is None:
            raise CommandError(f"--password-env {name}: the environment variable {name} is not set.")
        if not value:
            raise CommandError(f"--password-env {name}: the environment variable {name} is empty.")
        return value.encode("utf-8")

    def _read_manifest(self, name: str) -> Any:
        if name == "-":
            text = sys.stdin.read()
            source = "stdin"
        else:
            text = self._read_bytes(Path(name), "manifest").decode("utf-8", errors="replace")
            source = name
        try:
            return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
        except ValueError as exc:
            raise CommandError(f"{source}: Not a firmware manifest: not valid JSON ({exc}).") from None

    def _read_bytes(self, path: Path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise CommandError(f"No such {what} file: {path}") from None
        except OSError as exc:
            raise CommandError(f"Cannot read the {what} file {path}: {exc.strerror}.") from None


def check_manifest_or_fail(data: Any, source: str) -> dict[str, Any]:
    try:
        return check_manifest(data)
    except ValueError as exc:
        raise CommandError(f"{'stdin' if source == '-' else source}: {exc}") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # I-JSON (which RFC 8785 builds on) forbids duplicate names; parsers disagree on which one wins.
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f'duplicate name "{name}"')
        result[name] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")

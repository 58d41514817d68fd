"""``COT_ENV=production``: refuses unsafe settings and passes ``check --deploy`` cleanly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "k3J8s9dQ2xZ7vB1nM4pL6tR0wY5uE8iO3aS2dF7gH1jK9lZ4xC6vB"
GOOD = {
    "COT_ENV": "production",
    "SECRET_KEY": SECRET_KEY,
    "COT_TOKEN_HASH_KEY": "Vq7nR2xL9pT4wK8sZ1mB6cH3jF5dG0yEo2W",
    "COT_AUDIT_CHAIN_KEY": "a8Fz3Qw6Ns1Yk4Lp9Xr2Tm7Cv5Bh0JdU4e",
    "ALLOWED_HOSTS": "cot.example.com",
    "COT_TRUSTED_PROXIES": "127.0.0.1",
    "DATABASE_URL": "postgres://cot_app@db.example.com/cot",
    "TELEMETRY_DATABASE_URL": "postgres://cot_app@db.example.com/cot_telemetry",
    "MIGRATION_DATABASE_URL": "postgres://cot_owner@db.example.com/cot",
    "TELEMETRY_MIGRATION_DATABASE_URL": "postgres://cot_owner@db.example.com/cot_telemetry",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", *GOOD)}
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, check=False
    )


def test_production_passes_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_no_proxy_is_trusted():
    env = {name: value for name, value in GOOD.items() if name != "COT_TRUSTED_PROXIES"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "cot.W001" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DEBUG": "true"}, "DEBUG is on"),
        ({"SECRET_KEY": "short-key"}, "SECRET_KEY is shorter"),
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is empty"),
        ({"COT_TOKEN_HASH_KEY": None}, "COT_TOKEN_HASH_KEY is not set on its own (it is derived from SECRET_KEY)"),
        ({"COT_AUDIT_CHAIN_KEY": None}, "COT_AUDIT_CHAIN_KEY is not set on its own (it is derived from SECRET_KEY)"),
        ({"COT_AUDIT_CHAIN_KEY": ""}, "COT_AUDIT_CHAIN_KEY is not set"),
        ({"COT_AUDIT_CHAIN_KEY": SECRET_KEY + ":audit"}, "COT_AUDIT_CHAIN_KEY is not set on its own"),
        ({"COT_TOKEN_HASH_KEY": SECRET_KEY}, "COT_TOKEN_HASH_KEY is not set on its own"),
        ({"COT_TOKEN_HASH_KEY": "x7Rk2Lq9Zp4Wm8Nc"}, "COT_TOKEN_HASH_KEY is shorter than 32 characters"),
        ({"COT_AUDIT_CHAIN_KEY": "a" * 40}, "COT_AUDIT_CHAIN_KEY is shorter than 32 characters or too repetitive"),
        ({"COT_AUDIT_CHAIN_KEY": GOOD["COT_TOKEN_HASH_KEY"]}, "are the same key"),
        ({"MIGRATION_DATABASE_URL": None}, "MIGRATION_DATABASE_URL names the same role as the application's (cot_app)"),
        (
            {"TELEMETRY_MIGRATION_DATABASE_URL": "postgres://cot_app@db.example.com/cot_telemetry"},
            "TELEMETRY_MIGRATION_DATABASE_URL names the same role",
        ),
    ],
)
def test_production_refuses_unsafe_settings(override, message):
    env = {**GOOD, **override}
    env = {name: value for name, value in env.items() if value is not None}
    result = manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_names_every_missing_key_at_once():
    env = {name: value for name, value in GOOD.items() if name not in ("COT_TOKEN_HASH_KEY", "COT_AUDIT_CHAIN_KEY")}
    result = manage("check", **env)
    assert result.returncode != 0
    refusal = result.stderr.strip().splitlines()[-1]
    assert "COT_TOKEN_HASH_KEY is not set on its own" in refusal
    assert "COT_AUDIT_CHAIN_KEY is not set on its own" in refusal


def test_development_still_derives_the_keys_from_secret_key():
    result = manage("shell", "-c", "from django.conf import settings as s; print(s.AUDIT_CHAIN_KEY, s.TOKEN_HASH_KEY)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        "cot-development-only-secret-key-not-for-production-use:audit",
        "cot-development-only-secret-key-not-for-production-use:tokens",
    ]

"""``COT_ENV=production``: refuses unsafe settings and passes ``check --deploy`` cleanly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "COT_ENV": "production",
    "SECRET_KEY": "k3J8s9dQ2xZ7vB1nM4pL6tR0wY5uE8iO3aS2dF7gH1jK9lZ4xC6vB",
    "ALLOWED_HOSTS": "cot.example.com",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "COT_ENV")}
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, check=False
    )


def test_production_passes_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DEBUG": "true"}, "DEBUG is on"),
        ({"SECRET_KEY": "short-key"}, "SECRET_KEY is shorter"),
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS is empty"),
    ],
)
def test_production_refuses_unsafe_settings(override, message):
    env = {**GOOD, **override}
    if override.get("SECRET_KEY") == "":
        env.pop("SECRET_KEY")
    result = manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr

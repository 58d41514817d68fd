"""The documented management commands."""

import io

import pytest
from django.core.management import CommandError, call_command

from tenants.models import ApiToken, Role, Tenant, User
from tests.factories import api_client

pytestmark = pytest.mark.django_db


def run(*args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    out = io.StringIO()
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_with_builtin_roles():
    run("create_tenant", "acme", "--name", "Acme Corp")
    tenant = Tenant.objects.get(slug="acme")
    assert tenant.kind == Tenant.Kind.CUSTOMER
    assert set(tenant.roles.values_list("kind", flat=True)) == {"administrator", "standard", "business"}
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "acme", "--name", "Again")


def test_only_one_provider_tenant():
    run("create_tenant", "platform", "--name", "cot", "--provider")
    assert set(Tenant.objects.get(slug="platform").roles.values_list("kind", flat=True)) == {"operator", "support"}
    with pytest.raises(CommandError, match="only one"):
        run("create_tenant", "platform2", "--name", "cot", "--provider")


def test_create_user_reads_password_from_stdin(monkeypatch):
    run("create_tenant", "acme", "--name", "Acme")
    out = run(
        "create_user",
        "Admin@Acme.example",
        "--tenant",
        "acme",
        "--role",
        "administrator",
        "--password-stdin",
        stdin="a-long-enough-passphrase\n",
        monkeypatch=monkeypatch,
    )
    assert "admin@acme.example" in out
    user = User.objects.get(email="admin@acme.example")
    assert user.check_password("a-long-enough-passphrase")
    assert user.role is not None
    assert user.role.kind == Role.Kind.ADMINISTRATOR


def test_create_user_refuses_weak_password_and_wrong_role_kind(monkeypatch):
    run("create_tenant", "acme", "--name", "Acme")
    with pytest.raises(CommandError, match=r"too short|too common"):
        run(
            "create_user", "a@acme.example", "--tenant", "acme", "--role", "standard", "--password-stdin",
            stdin="short\n", monkeypatch=monkeypatch,
        )  # fmt: skip
    with pytest.raises(CommandError, match="no 'operator' role"):
        run("create_user", "b@acme.example", "--tenant", "acme", "--role", "operator")
    with pytest.raises(CommandError, match="No tenant"):
        run("create_user", "c@acme.example", "--tenant", "nope", "--role", "standard")
    assert not User.objects.exists()


def test_create_api_token_prints_the_token_alone_on_the_last_line(monkeypatch):
    run("create_tenant", "acme", "--name", "Acme")
    run("create_user", "admin@acme.example", "--tenant", "acme", "--role", "administrator")
    out = run("create_api_token", "admin@acme.example", "--name", "ci", "--scope", "read", "--days", "7")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("cot_pat_")
    assert " " not in secret
    assert ApiToken.objects.get().scope == "read"
    assert api_client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    with pytest.raises(CommandError, match="between 1 and 90"):
        run("create_api_token", "admin@acme.example", "--name", "x", "--scope", "read", "--days", "400")

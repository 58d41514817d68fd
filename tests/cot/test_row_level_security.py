"""Row-level security, the second layer under the access layer: a statement sees its tenant's rows only.

The backstop tests deliberately bypass the application's tenant filter (a raw ``SELECT``,
a queryset without ``restrict``) in a request whose caller is one tenant's user, in both
databases: PostgreSQL alone keeps the other tenant's rows out.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connections, transaction
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from rest_framework.request import Request

from cot.database import scope
from cot.database.middleware import RequestScopeMiddleware
from cot.database.rls import POLICY
from cot.db_routers import TELEMETRY_ALIAS
from devices.device_api.auth import authenticate_device
from devices.models import Device, Measurement
from tenants.api.authentication import ApiTokenAuthentication
from tenants.auth_backends import TenantEmailBackend
from tests.factories import make_device, make_tenant, make_token, make_user
from tests.support.owner import owner_cursor

# Tenant tables without a tenant_id column (their tenant is their user's, group's or grant's).
WITHOUT_TENANT_COLUMN = [
    "tenants_tenant",
    "tenants_apitoken",
    "tenants_user_groups",
    "devices_devicegroupuserpermission",
    "devices_devicegrouprolepermission",
    "tenants_supportsession",
    "otp_totp_totpdevice",
    "otp_static_staticdevice",
    "otp_static_statictoken",
    "django_otp_webauthn_webauthncredential",
    "django_otp_webauthn_webauthnuserhandle",
    "django_otp_webauthn_webauthnattestation",
]
# Everything else without a tenant column holds no tenant's rows of its own (reference
# data, sessions, lockout counters) or is listed in docs/security.md as not yet covered.
TENANT_TABLES_SQL = """
    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
           EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s AND p.polcmd = '*')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
      AND (c.relname = ANY(%s)
           OR EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))
    ORDER BY c.relname
"""


def tables_without_policy(cursor: Any) -> list[str]:
    """Tenant tables (a ``tenant_id`` column, or the tenants themselves) lacking ENABLE, FORCE or the policy."""
    cursor.execute(TENANT_TABLES_SQL, [POLICY, WITHOUT_TENANT_COLUMN])
    return [name for name, enabled, forced, policy in cursor.fetchall() if not (enabled and forced and policy)]


def tenant_tables(cursor: Any) -> list[str]:
    cursor.execute(TENANT_TABLES_SQL, [POLICY, WITHOUT_TENANT_COLUMN])
    return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(databases=["default", TELEMETRY_ALIAS])
@pytest.mark.parametrize("alias", ["default", TELEMETRY_ALIAS])
def test_every_tenant_table_has_enable_force_and_the_policy(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        assert tables_without_policy(cursor) == []
        # The check reads the catalog: it finds the tables it should (not an empty list by mistake).
        found = tenant_tables(cursor)
    expected = {
        "default": {"tenants_user", "tenants_apitoken", "devices_device", "audit_auditentry", "firmware_rollouttarget"}
    }
    assert expected.get(alias, {"devices_measurement", "devices_alarm"}) <= set(found)


@pytest.mark.django_db(transaction=True)
def test_a_new_tenant_table_without_a_policy_is_found() -> None:
    with owner_cursor() as cursor:
        cursor.execute("CREATE TABLE rls_probe (id bigint PRIMARY KEY, tenant_id bigint NOT NULL)")
        try:
            assert tables_without_policy(cursor) == ["rls_probe"]
            cursor.execute("ALTER TABLE rls_probe ENABLE ROW LEVEL SECURITY")
            assert tables_without_policy(cursor) == ["rls_probe"]  # not forced: the owner would see every row
        finally:
            cursor.execute("DROP TABLE rls_probe")


@pytest.fixture
def two_tenants(db: Any) -> dict[str, Any]:
    acme, globex = make_tenant("acme"), make_tenant("globex")
    acme_device, acme_credential = make_device(acme)
    globex_device, _ = make_device(globex)
    for device in (acme_device, globex_device):
        Measurement.objects.create(
            tenant_id=device.tenant_id, device_id=device.pk, time="2026-12-05T10:00:00Z", type="t", series="s", value=1
        )
    user = make_user(acme, "standard")
    return {
        "acme": acme,
        "globex": globex,
        "user": user,
        "devices": (acme_device, globex_device),
        "entries": {
            # Where the tenant becomes known, for each kind of caller (docs/security.md).
            "session": lambda request: TenantEmailBackend().get_user(user.pk),
            "api token": _token_entry(make_token(user)),
            "device credential": _device_entry(acme_credential),
        },
    }


def _token_entry(secret: str) -> Callable[[HttpRequest], Any]:
    def enter(request: HttpRequest) -> Any:
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        return ApiTokenAuthentication().authenticate(Request(request))

    return enter


def _device_entry(credential: str) -> Callable[[HttpRequest], Any]:
    def enter(request: HttpRequest) -> Any:
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {credential}"
        return authenticate_device(request)

    return enter


def in_request_of(
    user: Any, view: Callable[[HttpRequest], Any], enter: Callable[[HttpRequest], Any] | None = None
) -> Any:
    """Run ``view`` in a request whose caller the real authentication resolved (by default: ``user``'s session)."""
    seen: dict[str, Any] = {}

    def handler(request: HttpRequest) -> HttpResponse:
        if enter is None:
            TenantEmailBackend().get_user(user.pk)  # where the tenant becomes known
        else:
            enter(request)
        seen["result"] = view(request)
        return HttpResponse()

    RequestScopeMiddleware(handler)(RequestFactory().get("/"))
    return seen["result"]


def raw_ids(alias: str, table: str) -> set[int]:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table}")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(databases=["default", TELEMETRY_ALIAS])
@pytest.mark.parametrize("caller", ["session", "api token", "device credential"])
def test_backstop_a_raw_select_in_a_request_sees_the_callers_tenant_only(
    two_tenants: dict[str, Any], caller: str
) -> None:
    acme_device = two_tenants["devices"][0]
    acme_measurement = Measurement.objects.get(device_id=acme_device.pk).pk

    def bypass(request: HttpRequest) -> tuple[set[int], set[int]]:
        return raw_ids("default", "devices_device"), raw_ids(TELEMETRY_ALIAS, "devices_measurement")

    devices, measurements = in_request_of(two_tenants["user"], bypass, two_tenants["entries"][caller])
    assert devices == {acme_device.pk}
    assert measurements == {acme_measurement}


@pytest.mark.django_db(databases=["default", TELEMETRY_ALIAS])
def test_backstop_a_queryset_without_restrict_sees_the_callers_tenant_only(two_tenants: dict[str, Any]) -> None:
    acme_device, globex_device = two_tenants["devices"]

    def bypass(request: HttpRequest) -> tuple[set[int], set[int], int]:
        return (
            set(Device.objects.values_list("pk", flat=True)),
            set(Measurement.objects.values_list("device_id", flat=True)),
            Device.objects.filter(pk=globex_device.pk).update(name="taken over"),
        )

    devices, measured, updated = in_request_of(two_tenants["user"], bypass)
    assert devices == {acme_device.pk}
    assert measured == {acme_device.pk}
    assert updated == 0
    assert Device.objects.get(pk=globex_device.pk).name != "taken over"


@pytest.mark.django_db(databases=["default", TELEMETRY_ALIAS])
def test_backstop_a_row_written_for_another_tenant_is_refused(two_tenants: dict[str, Any]) -> None:
    globex_device = two_tenants["devices"][1]

    def write(request: HttpRequest) -> str:
        try:
            with transaction.atomic(using=TELEMETRY_ALIAS):
                Measurement.objects.create(
                    tenant_id=globex_device.tenant_id,
                    device_id=globex_device.pk,
                    time="2026-12-05T11:00:00Z",
                    type="t",
                    series="s",
                    value=2,
                )
        except DatabaseError as error:
            return str(error)
        return ""

    assert "row-level security" in in_request_of(two_tenants["user"], write)


@pytest.mark.django_db(databases=["default", TELEMETRY_ALIAS])
def test_no_tenant_no_rows_and_nothing_left_after_the_request(two_tenants: dict[str, Any]) -> None:
    in_request_of(two_tenants["user"], lambda request: raw_ids("default", "devices_device"))
    token = scope._SCOPE.set("")
    try:
        # The same (persistent) connections, after the request: no tenant, no rows.
        assert raw_ids("default", "devices_device") == set()
        assert raw_ids(TELEMETRY_ALIAS, "devices_measurement") == set()
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT current_setting('cot.tenant_id', true)")
            assert cursor.fetchone()[0] in ("", None)
    finally:
        scope._SCOPE.reset(token)


@pytest.mark.django_db(databases=["default", TELEMETRY_ALIAS])
def test_the_tenant_holds_across_a_savepoint_rollback(two_tenants: dict[str, Any]) -> None:
    acme_device = two_tenants["devices"][0]

    def nested(request: HttpRequest) -> set[int]:
        with transaction.atomic():
            try:
                with transaction.atomic(), connections["default"].cursor() as cursor:
                    cursor.execute("SELECT 1/0")
            except DatabaseError:
                pass  # ROLLBACK TO SAVEPOINT went through unprefixed; the transaction lives on
            return raw_ids("default", "devices_device")

    assert in_request_of(two_tenants["user"], nested) == {acme_device.pk}


def test_a_cross_tenant_path_must_be_listed() -> None:
    with pytest.raises(scope.ScopeError), scope.cross_tenant("anything.goes"):
        pass


def test_a_tenant_is_an_id() -> None:
    for bad in (0, -1, "1; DROP TABLE x", True):
        with pytest.raises(scope.ScopeError), scope.tenant_scope(bad):  # type: ignore[arg-type]
            pass


def test_the_cross_tenant_paths_listed_are_the_ones_the_code_enters() -> None:
    """One list to review: no path entered that is not in it, none in it that nothing enters."""
    root = Path(__file__).resolve().parents[2]
    entered: set[str] = set()
    pattern = re.compile(r"""(?:cross_tenant\(|cross_tenant_path\s*=\s*)["']([\w.]+)["']""")
    for source in root.glob("*/**/*.py"):
        if source.parts[len(root.parts)] in {"tests", ".venv", "var"}:
            continue
        entered |= set(pattern.findall(source.read_text()))
    assert entered == set(scope.CROSS_TENANT_PATHS)


@pytest.mark.django_db(databases=["default", TELEMETRY_ALIAS])
def test_a_server_side_cursor_fetches_under_the_scope_it_was_declared_in(two_tenants: dict[str, Any]) -> None:
    acme_device = two_tenants["devices"][0]
    with scope.tenant_scope(two_tenants["acme"].pk), transaction.atomic():
        cursor = connections["default"].chunked_cursor()
        cursor.execute("SELECT id FROM devices_device")
        with scope.cross_tenant("commands"), connections["default"].cursor() as other:
            other.execute("SELECT count(*) FROM devices_device")  # sets every tenant for the transaction
            assert other.fetchone()[0] == 2
        assert {row[0] for row in cursor.fetchmany(10)} == {acme_device.pk}
        cursor.close()


def test_the_prefix_goes_on_every_statement_but_transaction_control_and_the_like() -> None:
    alone = ["SAVEPOINT s1", " -- why\n/* c */ ROLLBACK TO SAVEPOINT s1", "SET CONSTRAINTS ALL IMMEDIATE", "VACUUM t"]
    alone += ["CREATE DATABASE x", "create index concurrently i on t (a)", "RELEASE SAVEPOINT s1"]
    prefixed = ["SELECT 1", "/* c */ SELECT 1", "EXPLAIN ANALYZE SELECT 1", "INSERT INTO t VALUES ('concurrently')"]
    prefixed += ["CREATE TABLE t (a int)", "COPY t TO STDOUT", "FETCH ALL FROM c", "SETTLE"]
    assert [text for text in alone if not scope._alone(text)] == []
    assert [text for text in prefixed if scope._alone(text)] == []

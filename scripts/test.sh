#!/usr/bin/env bash
# `make test`: throwaway PostgreSQL and Redis, then lint, format check, types and the suite.
# DATABASE_URL / REDIS_URL point it at existing servers instead.
source "$(dirname "$0")/services.sh"
cd "$ROOT"

TMP="$ROOT/var/test"

ensure_system_packages browser nginx

cleanup() {
  [ -n "${STARTED_PG:-}" ] && stop_postgres "$TMP/pg"
  [ -n "${STARTED_REDIS:-}" ] && stop_redis "$REDIS_PORT"
  return 0
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ]; then
  # remove_postgres, not rm: the cluster may live outside the checkout (see pg_relocate).
  remove_postgres "$TMP/pg"
  PG_PORT="$(free_port "${COT_TEST_PG_PORT:-55432}")"
  PG_FSYNC=off start_postgres "$TMP/pg" "$PG_PORT"
  STARTED_PG=1
  # The tests create their own databases (test_cot, test_cot_telemetry) as the owner role.
  create_roles "$PG_PORT"
  database_urls "$PG_PORT"
  # Tests that write what no application role may (tests/support/owner.py) use the cluster's superuser.
  export COT_TEST_SUPERUSER=cot
fi
if [ -z "${REDIS_URL:-}" ]; then
  stop_redis_in "$TMP/redis"
  REDIS_PORT="$(free_port "${COT_TEST_REDIS_PORT:-56379}")"
  start_redis "$TMP/redis" "$REDIS_PORT"
  STARTED_REDIS=1
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
fi
export TELEMETRY_DATABASE_URL="${TELEMETRY_DATABASE_URL:-$DATABASE_URL}"

"$ROOT/scripts/lint.sh"
log "pytest"
"$ROOT/.venv/bin/pytest" "$@"

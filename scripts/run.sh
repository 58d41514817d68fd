#!/usr/bin/env bash
# `make run`: local PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL say otherwise),
# migrations, demo data, then web, worker and scheduler together. Ctrl-C stops it all;
# data stays under var/ for the next run.
source "$(dirname "$0")/services.sh"
cd "$ROOT"

PG_PORT="${COT_PG_PORT:-54320}"
REDIS_PORT="${COT_REDIS_PORT:-63790}"

# shellcheck disable=SC2119 # no extras: neither browser, wrk nor nginx is needed to run
ensure_system_packages

cleanup() {
  [ -n "${STARTED_PG:-}" ] && stop_postgres "$ROOT/var/pg"
  [ -n "${STARTED_REDIS:-}" ] && stop_redis "$REDIS_PORT"
  log "Stopped."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
  start_postgres "$ROOT/var/pg" "$PG_PORT"
  STARTED_PG=1
  create_databases "$PG_PORT"
  database_urls "$PG_PORT"
fi
if [ -z "${REDIS_URL:-}" ]; then
  start_redis "$ROOT/var/redis" "$REDIS_PORT" persist
  STARTED_REDIS=1
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
fi

PY="$ROOT/.venv/bin/python"
log "Migrating"
migrate_all
"$PY" manage.py collectstatic --noinput >/dev/null
"$PY" manage.py bootstrap_demo

log "Starting web, worker and scheduler (Ctrl-C stops everything)"
"$ROOT/.venv/bin/honcho" start -f Procfile

#!/usr/bin/env bash
# `make bench`: the benchmarks in bench/ against a throwaway PostgreSQL and Redis under
# var/bench/ (removed first), served by gunicorn as deployed; prints one table.
# Never part of `make test`. Extra arguments go to `python -m bench` (e.g. `ingest list`);
# COT_BENCH_ROUNDS / COT_BENCH_SECONDS set the rounds per figure and their length,
# PG_FSYNC=off runs PostgreSQL without fsync; COT_BENCH_ROLLOUT_SIZES (100000,1000000) and
# COT_BENCH_UPDATE_DEVICES (100000) size the rollout benchmarks (see docs/performance.md).
source "$(dirname "$0")/services.sh"
cd "$ROOT"

PG_PORT="${COT_BENCH_PG_PORT:-55600}"
REDIS_PORT="${COT_BENCH_REDIS_PORT:-56600}"
TMP="$ROOT/var/bench"

ensure_system_packages wrk

stop_gunicorn() {
  local pid
  pid="$(cat "$TMP/gunicorn.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  return 0
}
cleanup() {
  stop_gunicorn
  stop_postgres "$TMP/pg"
  stop_redis "$REDIS_PORT"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run's leftovers (if it was killed) go first, then its data.
cleanup
remove_postgres "$TMP/pg"
rm -rf "$TMP"
mkdir -p "$TMP"
start_postgres "$TMP/pg" "$PG_PORT"
start_redis "$TMP/redis" "$REDIS_PORT"
create_databases "$PG_PORT"
# The benchmarks settle tables between phases as the owner role (bench/data.py, maintain).
"$(pg_bindir)/psql" -h 127.0.0.1 -p "$PG_PORT" -U cot -d postgres -q -c "GRANT pg_checkpoint TO cot_owner"

# Always our own servers, whatever the calling shell points at. For what-if runs, the
# COT_BENCH_*_QUERY variables append connection settings (django-environ URL query),
# e.g. COT_BENCH_TELEMETRY_QUERY='options=-c%20synchronous_commit%3Doff'.
database_urls "$PG_PORT" "${COT_BENCH_DATABASE_QUERY:-}" "${COT_BENCH_TELEMETRY_QUERY:-}"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export CELERY_BROKER_URL="$REDIS_URL"
export COT_ENV=development DEBUG=false LOG_LEVEL=WARNING DJANGO_SETTINGS_MODULE=cot.settings

log "Migrating"
migrate_all
# The cockpit's pages (bench/dashboard.py) name their static files through the manifest.
"$ROOT/.venv/bin/python" manage.py collectstatic --noinput >/dev/null
log "Running benchmarks (about 30 minutes for all)"
"$ROOT/.venv/bin/python" -m bench "$@"

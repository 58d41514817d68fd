# Shared helpers for `make run`, `make test` and `make bench`: system packages, a
# project-local PostgreSQL and Redis, migrations. Source it; it defines functions only.
# shellcheck shell=bash

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mxx\033[0m %s\n' "$*" >&2; exit 1; }

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/pg_ctl" ]; then echo "$dir"; fi
  done | sort -V | tail -n 1
}

# ensure_system_packages [browser] [wrk] [nginx]: install the Debian packages we need when
# they are missing (PostgreSQL server, Redis; chromium for the browser tests, wrk for the
# benchmarks, nginx and openssl for the test of deploy/nginx.conf). Only root can; others
# get a clear message.
ensure_system_packages() {
  local want=() extra
  [ -n "$(pg_bindir)" ] || want+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || want+=(redis-server)
  for extra in "$@"; do
    case "$extra" in
      browser) [ -x /usr/bin/chromium ] || want+=(chromium) ;;
      wrk) command -v wrk >/dev/null 2>&1 || want+=(wrk) ;;
      # Debian installs nginx in /usr/sbin, which is not on every user's PATH.
      nginx)
        command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || want+=(nginx)
        command -v openssl >/dev/null 2>&1 || want+=(openssl)
        ;;
      *) die "ensure_system_packages: unknown extra '$extra'" ;;
    esac
  done
  [ ${#want[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "Missing system packages: ${want[*]}. Install them (sudo apt-get install ${want[*]}) or set DATABASE_URL/REDIS_URL."
  fi
  log "Installing system packages: ${want[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  # The package starts a system nginx on port 80 where systemd runs; the tests only need the binary.
  if [[ " ${want[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
}

# PostgreSQL refuses to run as root, so as root we run it as the `postgres` system user.
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# start_postgres DATADIR PORT: initialise (once) and start a cluster listening on
# 127.0.0.1:PORT only, with the superuser `cot` and trust auth on loopback.
start_postgres() {
  local data port="$2" bin
  data="$(realpath -m "$1")"
  bin="$(pg_bindir)"
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$data"; chmod 700 "$data"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "Initialising PostgreSQL in $data"
    as_pg_user "$bin/initdb" -D "$data" -U cot --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if as_pg_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "PostgreSQL already running on port $port"
    return 0
  fi
  log "Starting PostgreSQL on 127.0.0.1:$port"
  as_pg_user "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=${PG_FSYNC:-on} -c max_connections=200" >/dev/null
}

stop_postgres() {
  local data bin
  data="$(realpath -m "$1")"
  bin="$(pg_bindir)"
  [ -f "$data/postmaster.pid" ] || return 0
  as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# create_database PORT NAME: create NAME if missing.
create_database() {
  local port="$1" name="$2" bin
  bin="$(pg_bindir)"
  if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U cot -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$name'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U cot "$name"
  fi
}

# create_databases PORT: cot's two databases (registry and telemetry) on that cluster.
create_databases() {
  create_database "$1" cot
  create_database "$1" cot_telemetry
}

# migrate_all: both databases, with the project's virtualenv.
migrate_all() {
  "$ROOT/.venv/bin/python" "$ROOT/manage.py" migrate --noinput >/dev/null
  "$ROOT/.venv/bin/python" "$ROOT/manage.py" migrate --database telemetry --noinput >/dev/null
}

# start_redis DATADIR PORT [persist]
start_redis() {
  local data port="$2" persist="${3:-}"
  data="$(realpath -m "$1")"
  mkdir -p "$data"
  if redis-cli -p "$port" ping >/dev/null 2>&1; then
    log "Redis already running on port $port"
    return 0
  fi
  log "Starting Redis on 127.0.0.1:$port"
  local args=(--port "$port" --bind 127.0.0.1 --daemonize yes --dir "$data"
              --pidfile "$data/redis.pid" --logfile "$data/redis.log")
  if [ "$persist" = "persist" ]; then args+=(--appendonly yes); else args+=(--save "" --appendonly no); fi
  redis-server "${args[@]}"
  local i
  for i in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "Redis did not start; see $data/redis.log"
}

stop_redis() {
  local port="$1"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

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

# PostgreSQL refuses to run as root, so as root we run it as the `postgres` system user. It
# starts in `/` because the caller's working directory may be one that user cannot enter (a
# checkout in root's home); every path handed to it is absolute.
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Where a cluster goes when the `postgres` user cannot reach its place under var/ (a checkout
# in a private directory such as root's home, run as root): outside the checkout, in a
# directory that user can reach. COT_PG_DATA_ROOT moves it.
pg_data_root() { printf '%s\n' "${COT_PG_DATA_ROOT:-/var/lib/cot}"; }

# pg_relocated_home DATADIR: the directory under pg_data_root for DATADIR's cluster (`data/`)
# and a note of DATADIR (`origin`). Derived from DATADIR's absolute path, so a later run of
# the same checkout finds the same cluster again, and two checkouts never share one.
pg_relocated_home() {
  printf '%s/%s\n' "$(pg_data_root)" "$(printf '%s' "$1" | sha256sum | cut -c1-16)"
}

# pg_abspath PATH: PATH made absolute with its parents' symlinks resolved but not its own, so
# var/pg names the link to a relocated cluster rather than the cluster.
pg_abspath() {
  printf '%s/%s\n' "$(realpath -m "$(dirname "$1")")" "$(basename "$1")"
}

# pg_link_home DATADIR: the relocated home DATADIR links to, if it is this DATADIR's own (its
# `origin` note names DATADIR): a link of the user's own to elsewhere, or a link copied along
# with a checkout and still pointing at the other checkout's cluster, is never taken for one.
pg_link_home() {
  local home abs
  [ -L "$1" ] || return 0
  abs="$(pg_abspath "$1")"
  home="$(dirname "$(realpath -m "$1")")"
  if { [ -f "$home/origin" ] && [ "$(cat "$home/origin")" = "$abs" ]; } || [ "$home" = "$(pg_relocated_home "$abs")" ]; then
    printf '%s\n' "$home"
  fi
}

# pg_refuse_foreign_link DATADIR: die when DATADIR links to the relocated cluster of another
# checkout (a copied checkout): using or removing it would touch the other one's data.
pg_refuse_foreign_link() {
  local home
  [ -L "$1" ] || return 0
  home="$(dirname "$(realpath -m "$1")")"
  if [ -f "$home/origin" ] && [ -z "$(pg_link_home "$1")" ]; then
    die "$1 links to the PostgreSQL data of $(cat "$home/origin"), another checkout. Remove the link ($1) to get a cluster of this checkout's own."
  fi
}

# pg_prepare_home DATADIR HOME: create (or re-create) the relocated HOME for DATADIR, readable
# by nobody else but enterable by the `postgres` user, and note DATADIR in it for people and
# for `make clean`.
pg_prepare_home() {
  local abs="$1" home="$2" root
  root="$(dirname "$home")"
  if [ ! -d "$root" ]; then
    { mkdir -p "$(dirname "$root")" && mkdir -m 711 "$root"; } 2>/dev/null \
      || die "Cannot create $root to keep the PostgreSQL data of $abs in. Set COT_PG_DATA_ROOT to a directory root can write and the postgres user can reach."
  fi
  if [ ! -d "$home" ]; then mkdir -m 711 "$home"; fi
  printf '%s\n' "$abs" >"$home/origin"
  as_pg_user test -x "$home" \
    || die "The postgres user cannot reach $home either (a parent directory is private). Set COT_PG_DATA_ROOT to a directory it can reach; the default /var/lib/cot is one."
}

# pg_relocate DATADIR: as root, when the `postgres` user cannot reach DATADIR's parent, keep the
# cluster in pg_relocated_home instead and leave a symlink at DATADIR, so that stop_postgres,
# remove_postgres and `make clean` find it from the checkout.
pg_relocate() {
  local abs="$1" home
  home="$(pg_relocated_home "$abs")"
  # An empty directory is what a run before this fix left when initdb failed; anything else
  # there is data we do not move behind the user's back.
  if [ -e "$abs" ] && ! { [ -d "$abs" ] && rmdir "$abs" 2>/dev/null; }; then
    die "The postgres user cannot reach $(dirname "$abs") (a parent directory is private), so the PostgreSQL data in $abs cannot be used. Move the checkout where that user can reach it, or remove $abs to start afresh with the data kept under $(pg_data_root)."
  fi
  pg_prepare_home "$abs" "$home"
  ln -s "$home/data" "$abs"
  log "The postgres user cannot reach $(dirname "$abs"), so this cluster lives in $home/data ($abs links there; make clean removes both)"
}

# pg_prepare_data_dir DATADIR: make sure the server's user can create and run a cluster for
# DATADIR, and print the directory it really lives in: DATADIR itself, or, as root where the
# `postgres` user cannot reach DATADIR, the relocated one DATADIR links to. Dies saying what
# to do where neither works.
pg_prepare_data_dir() {
  local abs data home me
  abs="$(pg_abspath "$1")"
  me="$(id -un)"
  if [ "$(id -u)" -ne 0 ]; then
    # PostgreSQL runs as the invoking user: any directory that user can write will do.
    data="$(realpath -m "$abs")"
    mkdir -p "$data" 2>/dev/null \
      || die "Cannot create the PostgreSQL data directory $data as $me. Run from a checkout $me can write, or set DATABASE_URL (and REDIS_URL) to existing servers."
    [ -O "$data" ] \
      || die "The PostgreSQL data directory $data belongs to $(stat -c %U "$data"), so PostgreSQL cannot run there as $me. Remove it as that user (make clean), or run as that user."
    printf '%s\n' "$data"
    return 0
  fi
  id -u postgres >/dev/null 2>&1 \
    || die "PostgreSQL refuses to run as root and there is no postgres system user (the postgresql package creates it). Install postgresql, or set DATABASE_URL."
  pg_refuse_foreign_link "$abs"
  if [ ! -L "$abs" ]; then
    mkdir -p "$(dirname "$abs")" 2>/dev/null || die "Cannot create $(dirname "$abs") for the PostgreSQL data."
    as_pg_user test -x "$(dirname "$abs")" || pg_relocate "$abs"
  fi
  data="$(realpath -m "$abs")"
  home="$(pg_link_home "$abs")"
  if [ -n "$home" ]; then pg_prepare_home "$abs" "$home"; fi
  mkdir -p "$data"
  chown postgres: "$data"
  chmod 700 "$data"
  as_pg_user test -w "$data" \
    || die "The postgres user cannot use $data (a parent directory is private). Move it where that user can reach, or remove $abs so that it is kept under $(pg_data_root) instead."
  printf '%s\n' "$data"
}

# port_in_use PORT: whether something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port PREFERRED: PREFERRED if nothing listens there, else the next free port above it.
# `make test` starts throwaway servers on it, so that a server left running by another
# checkout or by an interrupted run never makes the suite fail.
free_port() {
  local port="$1"
  while port_in_use "$port"; do
    port=$((port + 1))
    [ "$port" -lt $(($1 + 100)) ] || die "No free port between $1 and $port for a throwaway server."
  done
  [ "$port" = "$1" ] || log "Port $1 is taken by another process; using $port"
  printf '%s\n' "$port"
}

# start_postgres DATADIR PORT: initialise (once) and start a cluster listening on
# 127.0.0.1:PORT only, with the superuser `cot` and trust auth on loopback. The output says
# where the data and the server log are (see pg_prepare_data_dir for when that is not DATADIR).
start_postgres() {
  local data port="$2" bin
  bin="$(pg_bindir)"
  data="$(pg_prepare_data_dir "$1")" || exit 1
  if [ ! -f "$data/PG_VERSION" ]; then
    log "Initialising PostgreSQL in $data"
    as_pg_user "$bin/initdb" -D "$data" -U cot --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null \
      || die "initdb failed in $data"
  fi
  if as_pg_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "PostgreSQL already running on port $port (data in $data)"
    return 0
  fi
  if port_in_use "$port"; then
    die "Port $port is taken by another process, so PostgreSQL cannot listen there. Stop that process or choose another port (COT_PG_PORT for make run)."
  fi
  log "Starting PostgreSQL on 127.0.0.1:$port (data and server.log in $data)"
  if ! as_pg_user "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=${PG_FSYNC:-on} -c max_connections=200" >/dev/null; then
    # The log is the only place that says why; CI shows nothing else.
    as_pg_user tail -n 20 "$data/server.log" >&2 || true
    die "PostgreSQL did not start on port $port; the end of $data/server.log is above"
  fi
}

# stop_postgres DATADIR: stop DATADIR's cluster if it runs (through the link if relocated).
stop_postgres() {
  local data bin
  data="$(realpath -m "$1")"
  bin="$(pg_bindir)"
  [ -f "$data/postmaster.pid" ] || return 0
  as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# remove_postgres DATADIR: stop DATADIR's cluster and delete its data, a relocated cluster
# included (through the link, or at the place derived from DATADIR if the link is gone), so
# that the next start_postgres begins afresh.
remove_postgres() {
  local abs home
  abs="$(pg_abspath "$1")"
  stop_postgres "$abs"
  for home in "$(pg_link_home "$abs")" "$(pg_relocated_home "$abs")"; do
    if [ -n "$home" ] && [ -f "$home/origin" ]; then
      stop_postgres "$home/data"
      rm -rf "$home"
    fi
  done
  rm -rf "$abs"
}

# remove_relocated_postgres: stop and delete every cluster of this checkout kept outside it
# (see pg_relocate), found through the links under var/ and the notes under pg_data_root.
# `make clean` runs it before removing var/.
remove_relocated_postgres() {
  local origin link
  for origin in "$(pg_data_root)"/*/origin; do
    [ -f "$origin" ] || continue
    link="$(cat "$origin")"
    case "$link" in "$ROOT"/*) remove_postgres "$link" ;; esac
  done
  [ -d "$ROOT/var" ] || return 0
  while IFS= read -r -d '' link; do
    if [ -n "$(pg_link_home "$link")" ]; then remove_postgres "$link"; fi
  done < <(find "$ROOT/var" -type l -print0)
}

# create_roles PORT: the two roles cot connects as (docs/operations.md, "Database roles"):
# cot_owner owns the databases and tables and runs the migrations (BYPASSRLS: migrations
# span tenants); cot_app is the application's, with no table of its own, no superuser and
# no BYPASSRLS, so row-level security holds it to the tenant it names. Trust auth on
# loopback, so neither has a password here. Idempotent.
create_roles() {
  "$(pg_bindir)/psql" -h 127.0.0.1 -p "$1" -U cot -d postgres -v ON_ERROR_STOP=1 -q <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cot_owner') THEN
    CREATE ROLE cot_owner LOGIN CREATEDB;
  END IF;
  ALTER ROLE cot_owner BYPASSRLS;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cot_app') THEN
    CREATE ROLE cot_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  END IF;
END
$$;
SQL
}

# create_database PORT NAME: create NAME, owned by cot_owner, if missing. A database from
# before the role split (owned by the superuser cot) is handed to cot_owner with everything
# in it, so the next migrate can grant cot_app its rights.
create_database() {
  local port="$1" name="$2" bin
  bin="$(pg_bindir)"
  if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U cot -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$name'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U cot -O cot_owner "$name"
    return 0
  fi
  "$bin/psql" -h 127.0.0.1 -p "$port" -U cot -d "$name" -v ON_ERROR_STOP=1 -q <<'SQL'
DO $$
DECLARE
  item record;
BEGIN
  IF (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) = 'cot_owner' THEN
    RETURN;
  END IF;
  EXECUTE format('ALTER DATABASE %I OWNER TO cot_owner', current_database());
  FOR item IN
    SELECT format('ALTER %s %s OWNER TO cot_owner',
                  CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END,
                  c.oid::regclass) AS statement
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')
      AND pg_get_userbyid(c.relowner) = 'cot'
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
  LOOP
    EXECUTE item.statement;
  END LOOP;
  FOR item IN
    SELECT format('ALTER FUNCTION %s OWNER TO cot_owner', p.oid::regprocedure) AS statement
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) = 'cot'
  LOOP
    EXECUTE item.statement;
  END LOOP;
END
$$;
SQL
}

# create_databases PORT: the roles and cot's two databases (registry and telemetry) on that cluster.
create_databases() {
  create_roles "$1"
  create_database "$1" cot
  create_database "$1" cot_telemetry
}

# database_urls PORT: export the application's and the owner's URLs for both databases on
# that cluster (DATABASE_URL, TELEMETRY_DATABASE_URL, MIGRATION_DATABASE_URL,
# TELEMETRY_MIGRATION_DATABASE_URL); an optional second and third argument are appended
# to the application's URLs as a query string (default, telemetry).
database_urls() {
  local base="postgres://%s@127.0.0.1:$1/%s"
  # shellcheck disable=SC2059 # the format is ours
  {
    export DATABASE_URL="$(printf "$base" cot_app cot)${2:+?$2}"
    export TELEMETRY_DATABASE_URL="$(printf "$base" cot_app cot_telemetry)${3:+?$3}"
    export MIGRATION_DATABASE_URL="$(printf "$base" cot_owner cot)"
    export TELEMETRY_MIGRATION_DATABASE_URL="$(printf "$base" cot_owner cot_telemetry)"
  }
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
  mkdir -p "$data" 2>/dev/null \
    || die "Cannot create the Redis data directory $data as $(id -un). Run from a checkout you can write, or set REDIS_URL."
  if port_in_use "$port"; then
    # A bounded ping: a listener that is not Redis would keep redis-cli waiting for ever.
    if [ "$(timeout 5 redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ]; then
      log "Redis already running on port $port"
      return 0
    fi
    die "Port $port is taken by a process that is not Redis; stop it or choose another port (COT_REDIS_PORT for make run)."
  fi
  log "Starting Redis on 127.0.0.1:$port"
  local args=(--port "$port" --bind 127.0.0.1 --daemonize yes --dir "$data"
              --pidfile "$data/redis.pid" --logfile "$data/redis.log")
  if [ "$persist" = "persist" ]; then args+=(--appendonly yes); else args+=(--save "" --appendonly no); fi
  redis-server "${args[@]}"
  local _
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "Redis did not start; see $data/redis.log"
}

stop_redis() {
  local port="$1"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

# stop_redis_in DATADIR: stop the Redis whose pid file is in DATADIR (one an interrupted run
# left behind), whatever port it listens on; never a server of another checkout.
stop_redis_in() {
  local pidfile pid _
  pidfile="$(realpath -m "$1")/redis.pid"
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
}

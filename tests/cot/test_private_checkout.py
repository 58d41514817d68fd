"""`make run` and `make test` work from a private checkout run as root (issue 9, point 18).

PostgreSQL refuses to run as root, so scripts/services.sh runs it as the ``postgres`` system user, which cannot
enter a checkout in root's home (mode 700): initdb stopped at "could not access directory … Permission denied".
Now such a cluster is kept outside the checkout, where that user can reach it, with a link at its usual place
under var/. These tests call the shell helpers the make targets use, in a copy of scripts/services.sh placed in a
throwaway checkout, and start real clusters on free ports.

Only root can run a server as another user, so the tests need root (as CI and ``make test`` in a container are);
they fail, not skip, when run otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services.sh"


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "These tests start PostgreSQL as the postgres system user from a private directory, which only root "
            "can do. Run the suite as root (CI does; so does `make test` in a container)."
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bash(checkout: Path, script: str, *, user: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with the checkout's services.sh sourced, from the checkout, as ``user`` if given."""
    command = ["bash", "-c", f"source scripts/services.sh && {script}"]
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(  # noqa: S603
        command, cwd=checkout, env={**os.environ, **env}, capture_output=True, text=True, timeout=180, check=False
    )


def _make_checkout(parent: Path) -> Path:
    """A checkout as far as the helpers care: scripts/services.sh, whose location they take as the root."""
    checkout = parent / "cot"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(SERVICES, checkout / "scripts" / "services.sh")
    return checkout


def _pg_user_can_enter(directory: Path) -> bool:
    done = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(directory)], check=False)  # noqa: S603,S607
    return done.returncode == 0


def _select_one(checkout: Path, port: int) -> str:
    done = _bash(checkout, f'"$(pg_bindir)/psql" -h 127.0.0.1 -p {port} -U cot -d postgres -tAc "select 1"')
    assert done.returncode == 0, f"the cluster on port {port} does not accept connections:\n{done.stderr}"
    return done.stdout.strip()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def private_checkout(tmp_path: Path) -> Iterator[Path]:
    """A checkout inside a root-owned mode-700 directory; whatever cluster a test leaves is removed afterwards."""
    _require_root()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    assert not _pg_user_can_enter(private), f"the postgres user can enter {private}, so it proves nothing"
    checkout = _make_checkout(private)
    yield checkout
    # stop_postgres first: it is there even when the helpers under test lack the rest.
    _bash(checkout, "stop_postgres var/pg; remove_postgres var/pg; remove_relocated_postgres")


@pytest.fixture
def open_checkout() -> Iterator[Path]:
    """A checkout in a directory everyone can enter (the usual case); removed afterwards with its cluster."""
    _require_root()
    parent = Path(tempfile.mkdtemp(prefix="cot-open-checkout-"))
    parent.chmod(0o755)
    checkout = _make_checkout(parent)
    yield checkout
    _bash(checkout, "stop_postgres var/pg; remove_postgres var/pg")
    shutil.rmtree(parent, ignore_errors=True)


def test_private_checkout_keeps_its_cluster_where_postgres_can_reach_it(private_checkout: Path) -> None:
    """The cluster starts, takes connections, is found again by the next start, and `make clean` removes it."""
    port = _free_port()
    link = private_checkout / "var" / "pg"

    started = _bash(private_checkout, f"PG_FSYNC=off start_postgres var/pg {port}")
    assert started.returncode == 0, f"start_postgres failed in a private checkout:\n{started.stderr}"
    assert link.is_symlink(), f"{link} should link to the cluster kept outside the private directory"
    data = link.resolve()
    assert not data.is_relative_to(private_checkout.parent), f"the cluster {data} is still inside the private dir"
    assert _pg_user_can_enter(data), f"the postgres user cannot enter {data}"
    assert data.owner() == "postgres", f"{data} should belong to postgres, not {data.owner()}"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700, f"{data} should be mode 700"
    assert f"data and server.log in {data}" in started.stderr, f"the output does not say where:\n{started.stderr}"
    assert (data / "server.log").is_file(), f"no server log in {data}"
    assert _select_one(private_checkout, port) == "1"

    # `make run` stops its cluster on Ctrl-C and must find the same data next time.
    marker = _bash(private_checkout, f'"$(pg_bindir)/createdb" -h 127.0.0.1 -p {port} -U cot kept_between_runs')
    assert marker.returncode == 0, marker.stderr
    stopped = _bash(private_checkout, "stop_postgres var/pg")
    assert stopped.returncode == 0, stopped.stderr
    assert not _listening(port), f"the cluster on port {port} did not stop"
    again = _bash(private_checkout, f"PG_FSYNC=off start_postgres var/pg {port}")
    assert again.returncode == 0, f"the second start failed:\n{again.stderr}"
    assert "Initialising" not in again.stderr, f"the second start made a new cluster:\n{again.stderr}"
    assert link.resolve() == data, "the second start put the cluster somewhere else"
    listed = _bash(
        private_checkout,
        f'"$(pg_bindir)/psql" -h 127.0.0.1 -p {port} -U cot -d postgres -tAc '
        "\"select datname from pg_database where datname = 'kept_between_runs'\"",
    )
    assert listed.stdout.strip() == "kept_between_runs", f"the data of the first run is gone:\n{listed.stderr}"

    # `make test` throws its cluster away first (remove_postgres), also when it lives outside the checkout.
    removed = _bash(private_checkout, "remove_postgres var/pg")
    assert removed.returncode == 0, f"remove_postgres failed:\n{removed.stderr}"
    assert not _listening(port), f"remove_postgres left the cluster on port {port} running"
    assert not data.exists(), f"remove_postgres left {data} behind"
    fresh = _bash(private_checkout, f"PG_FSYNC=off start_postgres var/pg {port}")
    assert fresh.returncode == 0, f"the start after remove_postgres failed:\n{fresh.stderr}"
    assert "Initialising" in fresh.stderr, f"the start after remove_postgres reused the old cluster:\n{fresh.stderr}"
    assert _select_one(private_checkout, port) == "1"

    # `make clean` stops the cluster and removes the data it kept outside the checkout.
    cleaned = _bash(private_checkout, "remove_relocated_postgres")
    assert cleaned.returncode == 0, f"remove_relocated_postgres failed:\n{cleaned.stderr}"
    assert not _listening(port), f"make clean left the cluster on port {port} running"
    assert not data.parent.exists(), f"make clean left {data.parent} behind"
    assert not link.is_symlink(), f"make clean left the link {link}"


def test_checkout_postgres_can_reach_keeps_its_cluster_under_var(open_checkout: Path) -> None:
    """Where the postgres user can enter the checkout (the common case, and CI), nothing moves."""
    port = _free_port()
    data = open_checkout / "var" / "pg"

    started = _bash(open_checkout, f"PG_FSYNC=off start_postgres var/pg {port}")
    assert started.returncode == 0, f"start_postgres failed:\n{started.stderr}"
    assert data.is_dir(), f"{data} should hold the cluster"
    assert not data.is_symlink(), f"{data} was moved although the postgres user can reach it"
    assert (data / "PG_VERSION").is_file(), f"no cluster in {data}"
    assert _select_one(open_checkout, port) == "1"
    stopped = _bash(open_checkout, "stop_postgres var/pg")
    assert stopped.returncode == 0, stopped.stderr
    assert not _listening(port), f"stop_postgres left the cluster on port {port} running"


def test_unusable_places_fail_with_a_clear_message(private_checkout: Path) -> None:
    """Where no cluster can run, the helpers stop before initdb and say which directory and what to do."""
    port = _free_port()

    # A cluster already inside the private directory (made there by hand, or before this fix) is not moved.
    stranded = private_checkout / "var" / "pg"
    stranded.mkdir(parents=True)
    (stranded / "PG_VERSION").write_text("15\n")
    done = _bash(private_checkout, f"start_postgres var/pg {port}")
    assert done.returncode != 0, "start_postgres accepted a cluster the postgres user cannot reach"
    assert f"the PostgreSQL data in {stranded} cannot be used" in done.stderr, done.stderr
    assert (stranded / "PG_VERSION").is_file(), "the unreachable cluster was touched"

    # A relocation root the postgres user cannot reach either.
    closed = private_checkout.parent / "closed-root"
    done = _bash(private_checkout, f"start_postgres var/test/pg {port}", COT_PG_DATA_ROOT=str(closed))
    assert done.returncode != 0, "start_postgres used a COT_PG_DATA_ROOT the postgres user cannot reach"
    assert f"The postgres user cannot reach {closed}/" in done.stderr, done.stderr
    assert "Set COT_PG_DATA_ROOT" in done.stderr, done.stderr

    # Not root: PostgreSQL runs as the invoking user, who must be able to write the directory.
    readable = Path(tempfile.mkdtemp(prefix="cot-services-"))
    try:
        readable.chmod(0o755)
        checkout = _make_checkout(readable)
        target = private_checkout / "var" / "nobody-pg"
        done = _bash(checkout, f"start_postgres {target} {port}", user="nobody")
        assert done.returncode != 0, "start_postgres went on in a directory its user cannot write"
        assert f"Cannot create the PostgreSQL data directory {target} as nobody" in done.stderr, done.stderr
    finally:
        shutil.rmtree(readable, ignore_errors=True)
    assert not _listening(port), f"a failed start left a server on port {port}"


def test_a_copied_checkout_never_uses_or_removes_the_originals_cluster(private_checkout: Path) -> None:
    """`cp -a` copies var/pg's link too: the copy must refuse it, and removing the copy's leaves the original's."""
    port = _free_port()
    started = _bash(private_checkout, f"PG_FSYNC=off start_postgres var/pg {port}")
    assert started.returncode == 0, started.stderr
    original_data = (private_checkout / "var" / "pg").resolve()
    _bash(private_checkout, "stop_postgres var/pg")
    copy = private_checkout.parent / "copy"
    shutil.copytree(private_checkout, copy, symlinks=True)
    try:
        refused = _bash(copy, f"PG_FSYNC=off start_postgres var/pg {_free_port()}")
        assert refused.returncode != 0, "the copy started the original checkout's cluster"
        assert "another checkout" in refused.stderr, refused.stderr
        removed = _bash(copy, "remove_postgres var/pg")
        assert removed.returncode == 0, removed.stderr
        assert (original_data / "PG_VERSION").is_file(), "removing the copy's var/pg deleted the original's cluster"
        assert not (copy / "var" / "pg").exists()
    finally:
        shutil.rmtree(copy, ignore_errors=True)


# Busy ports. CI once failed in half a minute because a PostgreSQL left running by another
# checkout held the suite's default port: pg_ctl waited, gave up and said only "could not
# start server". `make test` now steps past a taken port (free_port), and start_postgres and
# start_redis refuse one at once, saying so.


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port with a listener that is neither PostgreSQL nor Redis."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_free_port_keeps_a_free_preferred_port() -> None:
    port = _free_port()
    done = _bash(SERVICES.parents[1], f"free_port {port}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(port)


def test_free_port_steps_past_a_taken_port(held_port: int) -> None:
    done = _bash(SERVICES.parents[1], f"free_port {held_port}")
    assert done.returncode == 0, done.stderr
    chosen = int(done.stdout.strip())
    assert chosen > held_port
    assert f"Port {held_port} is taken" in done.stderr


def test_start_postgres_refuses_a_taken_port_saying_so(open_checkout: Path, held_port: int) -> None:
    done = _bash(open_checkout, f"PG_FSYNC=off start_postgres var/pg {held_port}")
    assert done.returncode != 0
    assert f"Port {held_port} is taken by another process" in done.stderr


def test_start_redis_refuses_a_taken_port_saying_so(tmp_path: Path, held_port: int) -> None:
    done = _bash(SERVICES.parents[1], f"start_redis {tmp_path}/redis {held_port}")
    assert done.returncode != 0
    assert f"Port {held_port} is taken by a process that is not Redis" in done.stderr

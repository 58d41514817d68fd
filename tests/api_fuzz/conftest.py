"""A gunicorn serving the test databases, as deployed, for the schemathesis passes.

Why not pytest-django's ``live_server``: its server is Django's development server in a
thread of the pytest process. Each request there costs 30 to 60 ms before the view runs
(every request thread opens its own database connections and closes them afterwards,
and a keep-alive connection waits on delayed TCP acknowledgements), and it shares the
interpreter lock with the test process. A pass of a few thousand requests took about
four minutes that way. gunicorn with ``deploy/gunicorn.conf.py`` is what production
runs, keeps its database connections, and works beside the fuzzer on the second core;
it also parses the fuzzer's odd request lines and headers as production does.

The server reads the databases pytest-django created, so the tests that use it are
transactional: what they seed is committed before the server is asked.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connections

from tests.api_fuzz.runner import Server

ROOT = Path(__file__).resolve().parents[2]


def _database_url(alias: str) -> str:
    """The URL of the test database behind ``alias`` (pytest-django renamed it ``test_…``)."""
    db = connections[alias].settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'], safe='')}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def api_server(transactional_db: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn on a socket bound here, so requests queue in its backlog until a worker is up.

    The socket is listening before gunicorn starts (it inherits it as ``fd://``), so the
    first request simply waits for the first worker: no polling, no sleeping.

    One server per test: between transactional tests pytest-django empties every table,
    and the content types come back with new ids; a server kept from the previous test
    would still hold the old ones in Django's cache and fail every audited write.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cot.settings",
        "COT_ENV": "development",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": _database_url("default"),
        "TELEMETRY_DATABASE_URL": _database_url("telemetry"),
        "REDIS_URL": settings.REDIS_URL,
        "COT_WEB_WORKERS": "2",
        # Firmware the fuzzer uploads stays with this test run, out of the checkout.
        "COT_FIRMWARE_DIR": str(tmp_path_factory.mktemp("firmware")),
    }
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and config)
            [
                sys.executable,
                "-m",
                "gunicorn",
                "cot.wsgi",
                "--config",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "--bind",
                f"fd://{listener.fileno()}",
                # The default control socket is one per user (~/.gunicorn/gunicorn.ctl):
                # it would take over that of another gunicorn running on this machine.
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            pass_fds=(listener.fileno(),),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    listener.close()  # gunicorn holds its own copy
    try:
        yield Server(url=f"http://127.0.0.1:{port}", log=log)
    finally:
        process.send_signal(signal.SIGTERM)  # graceful: workers close their database connections
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""gunicorn settings for cot (used by `make run` and as the production example)."""

import multiprocessing
import os

workers = int(os.environ.get("COT_WEB_WORKERS", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("COT_WEB_THREADS", 2))
timeout = 30
graceful_timeout = 10
# Bounded request sizes: the request line and headers, on top of Django's body limit.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
forwarded_allow_ips = os.environ.get("COT_TRUSTED_PROXIES", "127.0.0.1")


def on_starting(server: object) -> None:
    """Once, in the master, before any worker: the startup checks (``cot.checks``).

    A half-migrated database or missing permissions stop the server instead of serving
    from them. Here and not in each worker: a worker restarted during a short database
    outage must not take the whole server down with it.
    """
    import django
    from django.db import connections

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cot.settings")
    django.setup()
    from cot.checks import refuse_to_start_on_errors

    try:
        refuse_to_start_on_errors()
    finally:
        connections.close_all()  # the workers open their own


def post_worker_init(worker: object) -> None:
    """Move everything loaded at start-up out of the garbage collector's sight.

    Django, DRF and the models leave a few hundred thousand long-lived objects; without
    this, every full collection walks them all again, which shows on busy small requests.
    """
    import gc

    gc.freeze()

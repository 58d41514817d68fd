"""``python -m bench [ingest] [single] [list] [measurements] [rollouts]``: run benchmarks (default all), print a table.

Expects the environment ``scripts/bench.sh`` sets up (its own PostgreSQL, Redis and
migrated databases). Exits 1 when a target is missed, 2 on bad arguments.
"""

import os
import sys

import django


def main(argv: list[str]) -> int:
    """Set up Django first: the benchmark modules import models."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cot.settings")
    django.setup()
    from bench.runner import run_and_report
    from cot.database.scope import cross_tenant

    # The benchmarks build and inspect several tenants' data, as an operator's tool does.
    with cross_tenant("commands"):
        return run_and_report(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

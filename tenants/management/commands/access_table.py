"""``manage.py access_table``: who may see, change and create the rows of every model, as one table.

The table is committed as ``docs/access-table.md`` and a test keeps the two equal, so
every change of who may see what shows up in review as a diff of one file.
"""

from typing import Any

from django.core.management.base import BaseCommand

from tenants.access import access_table


class Command(BaseCommand):
    """Print the registered access rules as a Markdown table."""

    help = "Print every model's access rules (tenant path, row rule, add rule) as a Markdown table."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(access_table(), ending="")

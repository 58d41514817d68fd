"""CSV written for people who open it in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return,
which some spreadsheets skip before reading one of those) is read as a formula: a
device renamed to ``=HYPERLINK(…)`` would become a live link in an administrator's
spreadsheet. Such cells get a leading apostrophe, which spreadsheets show as text
(OWASP's advice on CSV injection). Numbers are written by ``csv`` itself and untouched.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet will show it, never as a formula; non-text values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(fieldnames: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The header and one line per row, each cell made safe; for streaming responses."""
    writer = csv.DictWriter(_Echo(), fieldnames=fieldnames)
    yield writer.writeheader()
    for row in rows:
        yield writer.writerow({name: safe_cell(row.get(name)) for name in fieldnames})

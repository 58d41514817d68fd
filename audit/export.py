"""CSV and JSON exports of an audit trail, streamed so a long trail never sits in memory.

The query runs before the first byte is sent: when the database cannot answer, the
caller gets an error status (``ExportUnavailable``, 503), not a 200 with ``[`` or a bare
CSV header that looks like an empty trail. Should it fail later, mid-stream, the error
is raised out of the stream and the server aborts the connection, so a truncated
download never looks complete.
"""

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from django.http import StreamingHttpResponse

from cot.spreadsheet import csv_lines

EXPORT_FORMATS = ("csv", "json")

EXPORT_FIELDS = (
    "id",
    "seq",
    "timestamp",
    "event",
    "actor_kind",
    "actor_label",
    "object_type",
    "object_pk",
    "object_repr",
    "changes",
    "additional_data",
    "remote_addr",
    "cid",
    "entry_hash",
)


def _row(entry: Any) -> dict[str, Any]:
    return {
        **{name: getattr(entry, name) for name in EXPORT_FIELDS if name != "object_type"},
        "object_type": entry.content_type.model if entry.content_type_id else "",
    }


def _csv_rows(entries: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for entry in entries:
        row = _row(entry)
        for key in ("changes", "additional_data"):
            row[key] = json.dumps(row[key], cls=DjangoJSONEncoder) if row[key] is not None else ""
        yield row


def _json_chunks(entries: Iterable[Any]) -> Iterator[str]:
    yield "["
    for index, entry in enumerate(entries):
        yield ("," if index else "") + json.dumps(_row(entry), cls=DjangoJSONEncoder)
    yield "]\n"


class ExportUnavailable(Exception):
    """The trail could not be read; nothing was sent."""


def export_response(queryset: Any, fmt: str, filename: str) -> StreamingHttpResponse:
    """A download of ``queryset`` as ``csv`` or ``json``; ``ExportUnavailable`` before any byte when it cannot start."""
    try:
        rows = iter(queryset.select_related("content_type").order_by("tenant_id", "seq").iterator(chunk_size=2000))
        first = list(itertools.islice(rows, 1))  # runs the query now, before the response starts
    except DatabaseError as exc:
        raise ExportUnavailable("The audit trail could not be read right now; nothing was sent. Try again.") from exc
    entries = itertools.chain(first, rows)
    if fmt == "csv":
        # Names, reprs and labels are user-controlled: no cell may become a spreadsheet formula.
        response = StreamingHttpResponse(
            csv_lines(EXPORT_FIELDS, _csv_rows(entries)), content_type="text/csv; charset=utf-8"
        )
    else:
        response = StreamingHttpResponse(_json_chunks(entries), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response

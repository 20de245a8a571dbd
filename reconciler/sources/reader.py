"""Read a column of ids from CSV, gzipped CSV or Parquet, as exact strings, with Arrow.

Ids are identifiers, not data to interpret: ``00123`` stays ``00123``, ``1e5`` stays
``1e5``, ``NA``/``null``/``nan`` are ids, and surrounding whitespace is kept (and counted
by the planner). Only a missing value in Parquet becomes the empty id, which is counted
and never sent. Every failure becomes a SourceError naming the file and the problem.

The read is strict, because a misread export makes live ids look missing: a quote that
is never closed (it would swallow every later row into one value), an id holding a line
break, carriage return or NUL, a header naming the id column twice, and a file that
changed while it was read (size, mtime, inode or device differ before and after) are
refused. Whether a CSV's last row ends with a line break is reported (a half-written
export is cut mid-row), for the source gates to judge.

This module runs a read; the work is done by ``csvfile`` and ``parquetfile`` (a format
each), ``idchecks`` (the checks on any id column), ``files`` (a file's identity, kind and
problems in words) and, before a delete, ``lastlook`` (the ids looked for elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.errors import SourceError
from reconciler.core.plan import as_string_array
from reconciler.core.settings import IdFile
from reconciler.sources import csvfile
from reconciler.sources.files import NOT_UTF8, FileIdentity, changed, explain, file_kind
from reconciler.sources.idchecks import (
    refuse_control_characters,
    refuse_markup,
    refuse_repeated_header,
)
from reconciler.sources.parquetfile import read_parquet_column


@dataclass(frozen=True)
class SourceRead:
    """The ids of one file and what the read found out about the file."""

    ids: pa.Array
    identity: FileIdentity
    final_newline: bool | None  # CSV: does the last row end with a line break? None: Parquet


def read_ids(spec: IdFile) -> pa.Array:
    """The id column of ``spec.path`` as one string array, nulls as empty ids."""
    return read_source(spec).ids


def read_source(spec: IdFile) -> SourceRead:
    """Read the id column strictly, and the file's identity, which must not change meanwhile."""
    path = spec.path
    kind = file_kind(path)
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if not path.is_file():
        raise SourceError(f"{path}: not a regular file")
    before = FileIdentity.of(path)
    final_newline: bool | None = None
    header: list[str] = []
    suspect = False  # the other columns may hide rows (see csvfile.refuse_hidden_rows)
    try:
        if kind == "csv":
            column, final_newline, header, suspect = csvfile.read_csv_column(path, spec.id_column)
            first_row = 2
        else:
            column, first_row = read_parquet_column(path, spec), 1
    except SourceError:
        raise
    except (pa.ArrowInvalid, pa.ArrowKeyError, pa.ArrowTypeError, OSError, EOFError) as exc:
        explained = explain(exc)
        if kind == "csv" and explained == NOT_UTF8:
            explained = csvfile.where_not_utf8(path, spec.id_column)
        raise SourceError(f"{path}: cannot read: {explained}") from None
    after = FileIdentity.of(path) if path.exists() else None
    if after != before:
        raise SourceError(changed(path))
    ids = as_string_array(pc.fill_null(column, ""))
    refuse_control_characters(path, ids, first_row)
    if header:
        refuse_repeated_header(path, ids, header, spec.id_column)
        refuse_markup(path, ids)
    if suspect:
        csvfile.refuse_hidden_rows(path, header, spec.id_column)
    return SourceRead(ids=ids, identity=before, final_newline=final_newline)

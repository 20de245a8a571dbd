"""Read a column of ids from CSV, gzipped CSV or Parquet, as exact strings, with Arrow.

Ids are identifiers, not data to interpret: ``00123`` stays ``00123``, ``1e5`` stays
``1e5``, ``NA``/``null``/``nan`` are ids, and surrounding whitespace is kept (and counted
by the planner). Only a missing value in Parquet becomes the empty id, which is counted
and never sent. Every failure becomes a SourceError naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from reconciler.config import CSV_SUFFIXES, PARQUET_SUFFIXES, IdFile
from reconciler.errors import SourceError
from reconciler.plan import as_string_array


def file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise SourceError(f"{path}: unsupported file type; expected .csv, .csv.gz or .parquet")


def read_ids(spec: IdFile) -> pa.Array:
    """The id column of ``spec.path`` as one string array, nulls as empty ids."""
    path = spec.path
    kind = file_kind(path)
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if not path.is_file():
        raise SourceError(f"{path}: not a regular file")
    try:
        column = _read_csv(path, spec.id_column) if kind == "csv" else _read_parquet(path, spec)
    except SourceError:
        raise
    except (pa.ArrowInvalid, pa.ArrowKeyError, pa.ArrowTypeError, OSError, EOFError) as exc:
        raise SourceError(f"{path}: cannot read: {_explain(exc)}") from None
    return as_string_array(pc.fill_null(column, ""))


def _read_csv(path: Path, id_column: str) -> pa.ChunkedArray:
    convert = pacsv.ConvertOptions(
        include_columns=[id_column],
        column_types={id_column: pa.string()},
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    parse = pacsv.ParseOptions(newlines_in_values=True)
    try:
        table = pacsv.read_csv(path, parse_options=parse, convert_options=convert)
    except pa.ArrowKeyError:
        header = _csv_header(path)
        raise SourceError(
            f"{path}: no column {id_column!r} (columns: {', '.join(header) or 'none'})"
        ) from None
    return table.column(id_column)


def _csv_header(path: Path) -> list[str]:
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
    except (pa.ArrowInvalid, OSError):
        return []
    return list(table.column_names)


def _read_parquet(path: Path, spec: IdFile) -> pa.ChunkedArray:
    schema = pq.read_schema(path)
    if spec.id_column not in schema.names:
        raise SourceError(
            f"{path}: no column {spec.id_column!r} (columns: {', '.join(schema.names)})"
        )
    kind = schema.field(spec.id_column).type
    column = pq.read_table(path, columns=[spec.id_column]).column(spec.id_column)
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    if pa.types.is_string_view(kind) or pa.types.is_integer(kind):
        # Integers have one exact decimal spelling; floats or dates do not, so they are refused.
        return column.cast(pa.string())
    raise SourceError(
        f"{path}: column {spec.id_column!r} has type {kind}; ids must be strings or integers"
    )


def _explain(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "invalid UTF8" in text or "invalid utf8" in text.lower():
        return "not valid UTF-8 text"
    if text == "Empty CSV file":
        return "the file is empty (no header row)"
    if "Parquet magic bytes" in text or "Parquet file size is 0" in text:
        return "not a Parquet file"
    return text

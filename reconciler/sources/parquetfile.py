"""A Parquet export's id column: text or integers (one exact decimal spelling each),
with page checksums verified where the writer left them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from reconciler.core.errors import SourceError
from reconciler.core.settings import IdFile
from reconciler.sources.files import column_names


def read_parquet_column(path: Path, spec: IdFile) -> pa.ChunkedArray:
    schema = pq.read_schema(path)
    if spec.id_column not in schema.names:
        raise SourceError(
            f"{path}: no column {spec.id_column!r} (columns: {column_names(schema.names)})"
        )
    positions = [n + 1 for n, name in enumerate(schema.names) if name == spec.id_column]
    if len(positions) > 1:
        raise SourceError(
            f"{path}: the schema names column {spec.id_column!r} {len(positions)} times "
            f"(columns {', '.join(map(str, positions))}); which one holds the ids is ambiguous")
    kind = schema.field(spec.id_column).type
    # Pages written with a CRC (Spark's and parquet-mr's default) are checked: a damaged
    # page would otherwise read as other ids.
    column = pq.read_table(path, columns=[spec.id_column],
                           page_checksum_verification=True).column(spec.id_column)
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

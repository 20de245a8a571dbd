"""The last look before a delete: the ids about to go, looked for whole in the
export's other columns (a ``replaced_by`` column, a second export concatenated with its
columns in another order), in CSV and in Parquet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reconciler.core.errors import SourceError
from reconciler.core.settings import IdFile
from reconciler.sources import csvfile
from reconciler.sources.files import FileIdentity, changed, explain, file_kind
from reconciler.sources.reader import SourceRead


def in_other_columns(spec: IdFile, read: SourceRead, wanted: pa.Array) -> pa.Array:
    """Which ``wanted`` ids a CSV source still holds, whole, in a column other than its
    id column: the last look before they are deleted.

    Two exports concatenated with their columns in another order (``name,item_id`` under
    ``item_id,name``), or named in another case, put the second part's ids in another
    column, where they look missing. A row holding the id column's name (in any case) in
    another column is such a header when each of its cells is a column name or blank, or
    when ids to delete sit in that column: refused (exit 3, naming the row); otherwise it
    is a value (a ``field`` column holding ``item_id``). The ids found elsewhere (say in a
    ``replaced_by`` column) are not deleted. The file must be the one ``read`` read.
    One-column files have no such rows; in a Parquet file (no header to repeat) the
    ids are looked for in its text and integer columns (``_in_other_parquet_columns``).
    """
    empty = pa.array([], pa.string())
    path, id_column = spec.path, spec.id_column
    if not len(wanted):
        return empty
    if file_kind(path) != "csv":
        return _in_other_parquet_columns(path, id_column, read, wanted)
    header = csvfile.header_of(path)
    if len(header) < 2:
        return empty
    table = csvfile.every_column(path, header)
    if FileIdentity.of(path) != read.identity:
        raise SourceError(changed(path))
    name = id_column.lower()
    found = pa.array([False] * len(wanted), pa.bool_())
    for n, column in enumerate(table.column_names):
        if column == id_column:
            continue
        values = _trimmed(table.column(n).combine_chunks())
        named = pc.equal(pc.utf8_lower(values), name)
        hits = pc.is_in(wanted, value_set=values)
        row = None
        if pc.any(named).as_py():
            # A header only when its row is all column names, or when ids to delete are
            # in this column: a column ``field`` holding ``item_id`` is otherwise a value.
            row = _header_row(table, named, header)
            if row is None and pc.any(hits).as_py():
                row = pc.index(named, True).as_py()
        if row is not None:
            raise SourceError(
                f"{path}: row {row + 2}: column {column!r} holds {values[row].as_py()!r}, the "
                f"id column's name: the header repeated mid-file (two exports concatenated, "
                f"in another column order?); column {id_column!r} would not hold the ids "
                "after it")
        found = pc.or_(found, hits)
    return wanted.filter(found)


def _in_other_parquet_columns(path: Path, id_column: str, read: SourceRead,
                              wanted: pa.Array) -> pa.Array:
    """Which ``wanted`` ids a Parquet source still holds, whole, in a column other than
    its id column: one of text or integers (a ``replaced_by`` or ``parent_id``), or of
    lists, dictionaries or structs of them (``variant_ids``, ``variants.item_id``), as
    the CSV's last look finds them in its other columns."""
    schema = pq.read_schema(path)
    names = list(dict.fromkeys(field.name for field in schema
                               if field.name != id_column and _holds_ids(field.type)))
    if not names:
        return pa.array([], pa.string())
    try:
        table = pq.read_table(path, columns=names, page_checksum_verification=True)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: cannot read: {explain(exc)}") from None
    if FileIdentity.of(path) != read.identity:
        raise SourceError(changed(path))
    found = pa.array([False] * len(wanted), pa.bool_())
    for chunk in (chunk for column in table.columns for chunk in column.chunks):
        for values in _id_leaves(chunk):
            # Only the few wanted ids are hashed; the column's values are probed.
            probe = wanted.cast(values.type)
            held = _trimmed(values)
            held = held.filter(pc.fill_null(pc.is_in(held, value_set=probe), False))
            found = pc.or_(found, pc.is_in(probe, value_set=held))
    return wanted.filter(found)


def _id_leaves(values: pa.Array) -> Iterator[pa.Array]:
    """The text or integer values of a Parquet column, as text: inside its lists, its
    dictionaries and the fields of its structs (``variants: list<struct<item_id, ...>>``)."""
    kind = values.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        yield from _id_leaves(pc.list_flatten(values))
    elif pa.types.is_struct(kind):
        for field in values.flatten():  # each field, with the struct's offset and nulls
            yield from _id_leaves(field)
    elif pa.types.is_dictionary(kind):
        yield from _id_leaves(values.dictionary_decode())
    elif pa.types.is_large_string(kind):
        yield values
    elif _holds_ids(kind):
        yield values.cast(pa.string())


def _holds_ids(kind: pa.DataType) -> bool:
    """Whether a Parquet column of this type may hold ids: text or integers, or lists,
    dictionaries or structs holding some."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_dictionary(kind):
        return _holds_ids(kind.value_type)
    if pa.types.is_struct(kind):
        return any(_holds_ids(kind.field(n).type) for n in range(kind.num_fields))
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_string_view(kind) or pa.types.is_integer(kind))


def _trimmed(values: pa.Array) -> pa.Array:
    """Cells without the blanks around them, invisible ones too (a byte-order mark or a
    zero-width space pasted with an id): the id a person sees."""
    return pc.utf8_trim_whitespace(pc.utf8_trim(pc.utf8_trim_whitespace(values), _INVISIBLE))


_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"


def _header_row(table: pa.Table, named: pa.Array, header: list[str]) -> int | None:
    """The first of the ``named`` rows (one of whose cells is the id column's name) that
    looks like a header: each of its cells a column name (any case) or blank."""
    rows = pc.indices_nonzero(named)
    names = pa.array(sorted({column.strip().lower() for column in header} | {""}))
    like = pa.array([True] * len(rows), pa.bool_())
    for column in table.columns:
        cells = pc.utf8_lower(pc.utf8_trim_whitespace(pc.take(column, rows).combine_chunks()))
        like = pc.and_(like, pc.is_in(cells, value_set=names))
    return rows[pc.index(like, True).as_py()].as_py() if pc.any(like).as_py() else None

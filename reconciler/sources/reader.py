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
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from reconciler.core.errors import SourceError
from reconciler.core.plan import as_string_array
from reconciler.core.settings import CSV_SUFFIXES, PARQUET_SUFFIXES, IdFile
from reconciler.core.strbuf import scan_bytes

_BLOCK = 1 << 20
# Appended after the last row: if it reads back whole, every quote in the file was closed.
# A NUL can never be a valid id (ids holding one are refused), so no row can fake it.
_END_MARKER = "\x00reconciler-end-of-file"
_FORBIDDEN = {0x0A: "a line break", 0x0D: "a carriage return", 0x00: "a NUL character"}


@dataclass(frozen=True)
class FileIdentity:
    """What identifies one version of a file: equal before and after a read, or it changed."""

    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9


@dataclass(frozen=True)
class SourceRead:
    """The ids of one file and what the read found out about the file."""

    ids: pa.Array
    identity: FileIdentity
    final_newline: bool | None  # CSV: does the last row end with a line break? None: Parquet


def file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise SourceError(f"{path}: unsupported file type; expected .csv, .csv.gz or .parquet")


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
    suspect = False  # the other columns may hide rows (see _refuse_hidden_rows)
    try:
        if kind == "csv":
            column, final_newline, header, suspect = _read_csv(path, spec.id_column)
            first_row = 2
        else:
            column, first_row = _read_parquet(path, spec), 1
    except SourceError:
        raise
    except (pa.ArrowInvalid, pa.ArrowKeyError, pa.ArrowTypeError, OSError, EOFError) as exc:
        explained = _explain(exc)
        if kind == "csv" and explained == _NOT_UTF8:
            explained = _where_not_utf8(path, spec.id_column)
        raise SourceError(f"{path}: cannot read: {explained}") from None
    after = FileIdentity.of(path) if path.exists() else None
    if after != before:
        raise SourceError(_changed(path))
    ids = as_string_array(pc.fill_null(column, ""))
    _refuse_control_characters(path, ids, first_row)
    if header:
        _refuse_repeated_header(path, ids, header, spec.id_column)
        _refuse_markup(path, ids)
    if suspect:
        _refuse_hidden_rows(path, header, spec.id_column)
    return SourceRead(ids=ids, identity=before, final_newline=final_newline)


def _changed(path: Path) -> str:
    return (f"{path}: the file changed while it was read (size, mtime or inode differ before "
            "and after); is the export still being written? Nothing was deleted")


# -- CSV ---------------------------------------------------------------------------------


class _Framed(io.RawIOBase):
    """The file's bytes, then (unless it is empty) a line break if the last row lacks one,
    then one end-marker row. Records the last byte and how many bytes were read."""

    def __init__(self, stream: Any, first: bytes, end_row: bytes) -> None:
        self._stream, self._pending, self._end_row = stream, first, end_row
        self.read_bytes, self.last_byte = len(first), first[-1:]
        self.end = first[-64:]  # the file's last bytes: blank lines at its end
        # Line breaks: line feeds, or returns in a file whose lines end in CR only.
        self.line_end = 10 if b"\n" in first or b"\r" not in first else 13
        self.breaks = _count(first, self.line_end)
        self._done = not first
        if first and len(first) < _BLOCK:  # the whole file: the reader needs a full first row
            self._pending += self._tail()
            self._done = True

    def _tail(self) -> bytes:
        return (b"" if self.last_byte in (b"\n", b"\r") else b"\n") + self._end_row

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes (everything left when negative), as a reader expects."""
        if size is None or size < 0:
            parts = []
            while chunk := self.read(_BLOCK):
                parts.append(chunk)
            return b"".join(parts)
        if not self._pending and not self._done:
            self._pending = self._next()
        out, self._pending = self._pending[:size], self._pending[size:]
        return bytes(out)

    def _next(self) -> bytes:
        data = self._stream.read(_BLOCK)
        if data:
            self.read_bytes += len(data)
            self.last_byte = bytes(data[-1:])
            self.end = (self.end + bytes(data[-64:]))[-64:]
            self.breaks += _count(data, self.line_end)
            return bytes(data)
        self._done = True
        return self._tail()

    def readinto(self, buffer: Any) -> int:  # pragma: no cover - arrow calls read()
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_csv(path: Path, id_column: str) -> tuple[pa.ChunkedArray, bool, list[str], bool]:
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    # Plain files are read with Python's unbuffered reads (one copy, straight into bytes);
    # gzip goes through Arrow's decompressing stream.
    opened = (pa.input_stream(str(path), compression=compression) if compression
              else path.open("rb", buffering=0))
    with opened as stream:
        first = bytes(stream.read(_BLOCK))
        if kind := _not_csv(first, compression):
            raise SourceError(f"{path}: cannot read: not CSV text but {kind}")
        try:
            header = _header(first)
        except SourceError as exc:
            raise SourceError(f"{path}: cannot read: {exc} (in the header row)") from None
        if first and id_column not in header:
            raise SourceError(
                f"{path}: no column {id_column!r} (columns: {_names(header)})")
        positions = [n + 1 for n, name in enumerate(header) if name == id_column]
        if len(positions) > 1:
            raise SourceError(
                f"{path}: the header names column {id_column!r} {len(positions)} times "
                f"(columns {', '.join(map(str, positions))}); which one holds the ids is "
                "ambiguous")
        framed = _Framed(stream, first, _end_row(header, id_column))
        convert = pacsv.ConvertOptions(
            include_columns=[id_column],
            column_types={id_column: pa.string()},
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        parse = pacsv.ParseOptions(newlines_in_values=True)
        try:
            table = pacsv.read_csv(framed, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            if _END_MARKER in str(exc) or _reads_without_end_row(path, compression, parse,
                                                                 convert):
                # Only the end-marker row broke the parse: a quote was still open at the end.
                raise SourceError(_unclosed(path, _row_text(str(exc)))) from None
            raise
    column = table.column(id_column)
    size = len(column)
    if not size or column[size - 1].as_py() != _END_MARKER:
        raise SourceError(_unclosed(path, size + 1 if size else None))
    if compression is None and framed.read_bytes != path.stat().st_size:
        raise SourceError(_changed(path))
    # More line breaks than the rows and the header: some values hold line breaks, and only
    # then are the other columns read, for rows swallowed by them.
    blank_end = _count(framed.end[len(framed.end.rstrip(b"\r\n")):], framed.line_end) - 1
    suspect = len(header) > 1 and framed.breaks - max(blank_end, 0) > size
    return column.slice(0, size - 1), framed.last_byte in (b"\n", b"\r"), header, suspect


def _refuse_hidden_rows(path: Path, header: list[str], id_column: str) -> None:
    """Refuse a value of another column that holds lines looking like whole rows.

    A stray quote in a title, closed by a stray quote rows later (or a backslash-escaped
    quote, ``\\"``, that CSV reads as an open one), makes one multi-line title of the rows
    between, and their ids look missing. Asked only when the file has more line breaks
    than rows (blank lines, or values holding line breaks), so the usual export pays only
    the count of its line breaks; a line inside a value "looks like a row" when it splits
    into as many cells as the header has and its id cell is not blank and holds no space.
    """
    at = header.index(id_column)
    table = _every_column(path, header)
    for n, name in enumerate(table.column_names):
        if n == at:
            continue
        values = table.column(n)
        broken = pc.or_(pc.match_substring(values, "\n"), pc.match_substring(values, "\r"))
        for row in pc.indices_nonzero(broken).to_pylist():
            rows = [line for line in str(values[row].as_py()).splitlines()[1:]
                    if _looks_like_a_row(line, len(header), at)]
            if rows:
                raise SourceError(
                    f"{path}: row {row + 2}: column {name!r} holds {len(rows)} line(s) that "
                    f"look like rows (the first: {rows[0][:40]!r}); a stray quote swallowed "
                    "them? Their ids would look missing")


def _every_column(path: Path, header: list[str]) -> pa.Table:
    """Every column of a CSV file as exact strings (the costly read: asked only when a
    check needs the other columns)."""
    try:
        return _columns_as(path, header, pa.string())
    except (pa.ArrowInvalid, OSError) as exc:
        if _explain(exc) != _NOT_UTF8:
            raise SourceError(f"{path}: cannot read: {_explain(exc)}") from None
    # Another column is not UTF-8 (titles saved in Windows-1252 beside ASCII ids, say):
    # such a cell is read with U+FFFD for the bytes that are not, so it holds no id whole
    # nor a column name, and its lines are still looked at (rows a stray quote swallowed).
    try:
        table = _columns_as(path, header, pa.binary())
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: cannot read: {_explain(exc)}") from None
    return pa.table([pa.chunked_array([_text_replaced(chunk) for chunk in column.chunks],
                                      pa.string()) for column in table.columns],
                    names=table.column_names)


def _columns_as(path: Path, header: list[str], kind: pa.DataType) -> pa.Table:
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    with pa.input_stream(str(path), compression=compression) as stream:
        return pacsv.read_csv(
            stream, parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, kind), null_values=[],
                strings_can_be_null=False))


def _text_replaced(values: pa.Array, piece: int = 4096) -> pa.Array:
    """Binary cells as text, the bytes that are not UTF-8 as U+FFFD (checked by pieces,
    and cell by cell only within a piece that is not all UTF-8)."""
    pieces = []
    for start in range(0, len(values), piece):
        part = values.slice(start, piece)
        try:
            pieces.append(part.cast(pa.string()))
        except pa.ArrowInvalid:
            pieces.append(pa.array([None if cell is None else cell.decode("utf-8", "replace")
                                    for cell in part.to_pylist()], pa.string()))
    return pa.concat_arrays(pieces) if pieces else pa.array([], pa.string())


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
    header = _header_of(path)
    if len(header) < 2:
        return empty
    table = _every_column(path, header)
    if FileIdentity.of(path) != read.identity:
        raise SourceError(_changed(path))
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
        raise SourceError(f"{path}: cannot read: {_explain(exc)}") from None
    if FileIdentity.of(path) != read.identity:
        raise SourceError(_changed(path))
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


def _header_of(path: Path) -> list[str]:
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    with pa.input_stream(str(path), compression=compression) as stream:
        return _header(bytes(stream.read(_BLOCK)))


def _count(data: bytes, byte: int) -> int:
    """How often ``byte`` occurs in ``data`` (numpy: a few times faster than bytes.count)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == byte))


def _looks_like_a_row(line: str, cells: int, at: int) -> bool:
    parts = line.split(",")
    return len(parts) == cells and bool(parts[at]) and not any(c.isspace() for c in parts[at])


def _reads_without_end_row(path: Path, compression: str | None,
                           parse: pacsv.ParseOptions, convert: pacsv.ConvertOptions) -> bool:
    """Whether the file parses on its own (asked only after a parse error, so never twice)."""
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            pacsv.read_csv(stream, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, OSError):
        return False
    return True


def _unclosed(path: Path, row: int | str | None) -> str:
    where = f"row {row}: " if isinstance(row, int) else (
        f"the row starting {row!r}: " if row else "")
    return (f"{path}: {where}a quoted value is never closed (unbalanced '\"'); it would "
            "swallow every row after it")


def _row_text(message: str) -> str:
    """The start of the row an Arrow parse error quotes ("...: Expected 2 columns, got 3: ROW")."""
    parts = message.split(": ", 2)
    return parts[2].splitlines()[0][:40] if len(parts) == 3 and parts[2] else ""


def _header(first: bytes) -> list[str]:
    """The column names of the first row, read as the CSV reader would (BOM dropped; a
    quoted name may span lines)."""
    if len(first) >= _BLOCK:  # a character the block cuts is not the header's concern
        try:
            first.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data":
                first = first[:exc.start]
    text = first.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    try:
        header = next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error:
        return []
    try:
        "".join(header).encode("utf-8")
    except UnicodeEncodeError:
        raise SourceError("not valid UTF-8 text") from None
    if any("\x00" in name for name in header):  # UTF-16 without a BOM: valid, but NULs
        raise SourceError("not valid UTF-8 text: it holds NUL bytes (UTF-16?)")
    return header


# A file saved under a .csv name that is something else (the header would read as garbage).
_MAGIC = ((b"\x1f\x8b", "a gzip file (a .csv.gz name would read it)"),
          (b"PK\x03\x04", "a zip archive (a zipped export or an .xlsx workbook)"),
          (b"PAR1", "a Parquet file (a .parquet name would read it)"),
          (b"\xfd7zXZ\x00", "an xz file"),
          (b"\xff\xfe", "UTF-16 text (export it as UTF-8)"),
          (b"\xfe\xff", "UTF-16 text (export it as UTF-8)"),
          (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook"))


def _names(names: list[str], most: int = 10) -> str:
    """Column names for a one-line message: a few, each short, the invisible shown (a
    BOM, a tab, a trailing space); a JSON or HTML file's first line does not fill it."""
    shown = [n if n.isprintable() and n == n.strip() else repr(n) for n in names[:most]]
    shown = [n if len(n) <= 40 else n[:40] + "..." for n in shown]
    more = f", ... ({len(names)} in all)" if len(names) > most else ""
    return ", ".join(shown) + more if shown else "none"


def _not_csv(first: bytes, compression: str | None) -> str | None:
    """What a file is when its first bytes are another format's magic number, or None."""
    kind = next((kind for magic, kind in _MAGIC if first.startswith(magic)), None)
    if kind and first.startswith(b"PAR1") and b"\x00" not in first[:256]:
        return None  # a header that happens to start with "PAR1"
    if kind and compression and first.startswith(b"\x1f\x8b"):
        return "a gzip file: it was compressed twice"
    return kind


def _end_row(header: list[str], id_column: str) -> bytes:
    cells = ['"' + _END_MARKER + '"' if name == id_column else "" for name in header]
    return (",".join(cells) + "\n").encode("utf-8")


# -- Parquet -----------------------------------------------------------------------------


def _read_parquet(path: Path, spec: IdFile) -> pa.ChunkedArray:
    schema = pq.read_schema(path)
    if spec.id_column not in schema.names:
        raise SourceError(
            f"{path}: no column {spec.id_column!r} (columns: {_names(schema.names)})"
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


# -- checks ------------------------------------------------------------------------------


def _refuse_control_characters(path: Path, ids: pa.Array, first_row: int) -> None:
    """Refuse an id holding a line break, carriage return or NUL, naming its row."""
    for found in _forbidden_bytes(ids):
        mask = pc.match_substring(ids, chr(found))
        index = pc.index(mask, True).as_py()
        shown = ids[index].as_py()
        shown = repr(shown[:60]) + ("..." if len(shown) > 60 else "")
        hint = " (an unbalanced quote?)" if found != 0x00 and first_row == 2 else ""
        raise SourceError(
            f"{path}: row {index + first_row}: the id {shown} contains {_FORBIDDEN[found]}"
            f"{hint}; ids cannot hold one")


def _refuse_repeated_header(path: Path, ids: pa.Array, header: list[str],
                            id_column: str) -> None:
    """Refuse a row whose id is a column name: the header again, as when two exports are
    concatenated (``cat a.csv b.csv``), perhaps with the columns in another order. Read
    as data, its second part's ids would sit in another column and look missing."""
    # A second export's header keeps its BOM mid-file (both saved by Excel, say), where the
    # reader leaves it in the id: "\ufefftitle", or '\ufeff"title"' when it was quoted.
    names = sorted({spelling for name in header
                    for spelling in (name, "\ufeff" + name, '\ufeff"' + name + '"')})
    # Only ids as long as one of those spellings are compared (lengths: one Arrow pass).
    lengths = pa.array(sorted({len(name.encode("utf-8", "surrogateescape")) for name in names}),
                       pa.int32() if pa.types.is_string(ids.type) else pa.int64())
    rows = pc.indices_nonzero(pc.is_in(pc.binary_length(ids), value_set=lengths))
    if not len(rows):
        return
    hit = pc.is_in(ids.take(rows), value_set=pa.array(names, pa.string()))
    if not pc.any(hit).as_py():
        return
    index = rows[pc.index(hit, True).as_py()].as_py()
    raise SourceError(
        f"{path}: row {index + 2}: the id {ids[index].as_py()!r} is a column name: the "
        f"header repeated mid-file (two exports concatenated?); column {id_column!r} "
        "would not hold the ids after it")


_MARKUP = r"(?i)^\s*<(!doctype|/?html|/?head|/?body|\?xml)\b"
_LT = 0x3C


def _refuse_markup(path: Path, ids: pa.Array) -> None:
    """Refuse an id that is the start of an HTML or XML page: an error page written into
    the export, as when a server fails while it streams the file and the rows after the
    failure are lost. Checked by regex only when a ``<`` occurs in the ids at all."""
    if _LT not in _bytes_in(ids, {_LT}):
        return
    hit = pc.match_substring_regex(ids, _MARKUP)
    if not pc.any(hit).as_py():
        return
    index = pc.index(hit, True).as_py()
    raise SourceError(
        f"{path}: row {index + 2}: the id {ids[index].as_py()[:40]!r} is HTML or XML: an "
        "error page written into the export? The rows it replaced would look missing")


def _forbidden_bytes(ids: pa.Array) -> Iterator[int]:
    """Which forbidden bytes occur anywhere in the ids' character data."""
    yield from sorted(_bytes_in(ids, set(_FORBIDDEN)), key=lambda b: (b == 0, b))


def _bytes_in(ids: pa.Array, bytes_: set[int]) -> set[int]:
    """Which of ``bytes_`` occur anywhere in the ids' character data."""
    return scan_bytes(ids, bytes_)[0]


_NOT_UTF8 = "not valid UTF-8 text"


def _where_not_utf8(path: Path, id_column: str) -> str:
    """Which row's id is not UTF-8 (Arrow does not say), found on an error path only: the
    id column read again as bytes, and halves of it checked until one row is left."""
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            raw = pacsv.read_csv(stream, parse_options=pacsv.ParseOptions(
                newlines_in_values=True), convert_options=pacsv.ConvertOptions(
                include_columns=[id_column], column_types={id_column: pa.binary()})
            ).column(id_column).combine_chunks()
    except (pa.ArrowInvalid, OSError):
        return _NOT_UTF8
    low, high = 0, len(raw)
    if _is_utf8(raw):
        return _NOT_UTF8
    while high - low > 1:  # invariant: raw[low:high] holds a value that is not UTF-8
        middle = (low + high) // 2
        low, high = (low, middle) if not _is_utf8(raw.slice(low, middle - low)) else (
            middle, high)
    return (f"row {low + 2}: the id is {_NOT_UTF8} (is the export Latin-1 or "
            "Windows-1252, or cut short?)")


def _is_utf8(values: pa.Array) -> bool:
    try:
        values.cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def _explain(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "invalid UTF8" in text or "invalid utf8" in text.lower():
        return _NOT_UTF8
    if text == "Empty CSV file" or text.startswith("CSV parse error: Empty CSV file"):
        return "the file is empty (no header row)"
    if "Parquet magic bytes" in text or "Parquet file size is 0" in text:
        return "not a Parquet file (or cut short: its footer is missing)"
    if "CRC checksum verification failed" in text:
        return "a data page is damaged (its CRC checksum does not match)"
    if "zlib inflate failed" in text:
        return "not a valid gzip file (corrupt, or not compressed)"
    if "Truncated compressed stream" in text or "Compressed file ended" in text:
        return "the gzip stream is cut short (truncated file)"
    return text

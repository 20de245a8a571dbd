"""A CSV export's id column, read strictly.

The file streams through ``_Framed``, which appends an end-marker row: when it reads back
whole, every quote in the file was closed (a quote never closed would swallow every later
row into one value). A header naming the id column twice, another format under a .csv
name, and bytes that are not UTF-8 are refused, naming the row where one is known. The
other columns are read only when a check needs them (``every_column``): rows a stray
quote hid inside another column's value, and the last look (``lastlook.py``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from reconciler.core.errors import SourceError
from reconciler.sources.files import NOT_UTF8, changed, column_names, explain

_BLOCK = 1 << 20


# Appended after the last row: if it reads back whole, every quote in the file was closed.
# A NUL can never be a valid id (ids holding one are refused), so no row can fake it.
_END_MARKER = "\x00reconciler-end-of-file"


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


def read_csv_column(path: Path, id_column: str) -> tuple[pa.ChunkedArray, bool, list[str], bool]:
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
                f"{path}: no column {id_column!r} (columns: {column_names(header)})")
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
        raise SourceError(changed(path))
    # More line breaks than the rows and the header: some values hold line breaks, and only
    # then are the other columns read, for rows swallowed by them.
    blank_end = _count(framed.end[len(framed.end.rstrip(b"\r\n")):], framed.line_end) - 1
    suspect = len(header) > 1 and framed.breaks - max(blank_end, 0) > size
    return column.slice(0, size - 1), framed.last_byte in (b"\n", b"\r"), header, suspect


def refuse_hidden_rows(path: Path, header: list[str], id_column: str) -> None:
    """Refuse a value of another column that holds lines looking like whole rows.

    A stray quote in a title, closed by a stray quote rows later (or a backslash-escaped
    quote, ``\\"``, that CSV reads as an open one), makes one multi-line title of the rows
    between, and their ids look missing. Asked only when the file has more line breaks
    than rows (blank lines, or values holding line breaks), so the usual export pays only
    the count of its line breaks; a line inside a value "looks like a row" when it splits
    into as many cells as the header has and its id cell is not blank and holds no space.
    """
    at = header.index(id_column)
    table = every_column(path, header)
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


def every_column(path: Path, header: list[str]) -> pa.Table:
    """Every column of a CSV file as exact strings (the costly read: asked only when a
    check needs the other columns)."""
    try:
        return _columns_as(path, header, pa.string())
    except (pa.ArrowInvalid, OSError) as exc:
        if explain(exc) != NOT_UTF8:
            raise SourceError(f"{path}: cannot read: {explain(exc)}") from None
    # Another column is not UTF-8 (titles saved in Windows-1252 beside ASCII ids, say):
    # such a cell is read with U+FFFD for the bytes that are not, so it holds no id whole
    # nor a column name, and its lines are still looked at (rows a stray quote swallowed).
    try:
        table = _columns_as(path, header, pa.binary())
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: cannot read: {explain(exc)}") from None
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


def header_of(path: Path) -> list[str]:
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


def where_not_utf8(path: Path, id_column: str) -> str:
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
        return NOT_UTF8
    low, high = 0, len(raw)
    if _is_utf8(raw):
        return NOT_UTF8
    while high - low > 1:  # invariant: raw[low:high] holds a value that is not UTF-8
        middle = (low + high) // 2
        low, high = (low, middle) if not _is_utf8(raw.slice(low, middle - low)) else (
            middle, high)
    return (f"row {low + 2}: the id is {NOT_UTF8} (is the export Latin-1 or "
            "Windows-1252, or cut short?)")


def _is_utf8(values: pa.Array) -> bool:
    try:
        values.cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True

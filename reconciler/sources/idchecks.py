"""Checks on an id column as read, whatever the file's format: an id holding a line
break, carriage return or NUL, the header repeated mid-file (two exports concatenated),
or an HTML or XML error page written into the export. Each refusal names the row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.errors import SourceError
from reconciler.core.strbuf import scan_bytes

_FORBIDDEN = {0x0A: "a line break", 0x0D: "a carriage return", 0x00: "a NUL character"}


def refuse_control_characters(path: Path, ids: pa.Array, first_row: int) -> None:
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


def refuse_repeated_header(path: Path, ids: pa.Array, header: list[str],
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


def refuse_markup(path: Path, ids: pa.Array) -> None:
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

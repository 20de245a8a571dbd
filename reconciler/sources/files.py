"""What every reader says of a source file: which version of it was read (its identity,
equal before and after a read, or the file changed meanwhile), which kind it is, and the
one-line wording of a problem with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.core.errors import SourceError
from reconciler.core.settings import CSV_SUFFIXES, PARQUET_SUFFIXES


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


def file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise SourceError(f"{path}: unsupported file type; expected .csv, .csv.gz or .parquet")


def changed(path: Path) -> str:
    return (f"{path}: the file changed while it was read (size, mtime or inode differ before "
            "and after); is the export still being written? Nothing was deleted")


def column_names(names: list[str], most: int = 10) -> str:
    """Column names for a one-line message: a few, each short, the invisible shown (a
    BOM, a tab, a trailing space); a JSON or HTML file's first line does not fill it."""
    shown = [n if n.isprintable() and n == n.strip() else repr(n) for n in names[:most]]
    shown = [n if len(n) <= 40 else n[:40] + "..." for n in shown]
    more = f", ... ({len(names)} in all)" if len(names) > most else ""
    return ", ".join(shown) + more if shown else "none"


NOT_UTF8 = "not valid UTF-8 text"


def explain(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "invalid UTF8" in text or "invalid utf8" in text.lower():
        return NOT_UTF8
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

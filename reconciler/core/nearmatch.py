"""Near matches: ids to delete that a source id spells otherwise.

An export re-encoded, re-saved by a spreadsheet or typed on another keyboard spells some
ids otherwise than the catalog does (``ab 001``, ``AB-001``, ``00042``, ``42.0``,
``cafÃ©``). Those catalog ids would look missing and be deleted. Each id to delete and
each source id get a comparison form (``normal_forms``: whitespace, Unicode, case,
spreadsheet markers, punctuation, number spellings, leading zeros, in that order), and
``near_matches`` says which ids to delete share one with a source id, and by which step
(the kinds the ``near_match`` gate counts). All on Arrow arrays, in slices that bound
the temporaries. Pure: arrays in, arrays out.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reconciler.core.strbuf import scan_bytes

# What makes two ids a near match: the steps of the normal form, in the order it applies
# them, then the spellings of an id to delete that are tried besides the id itself.
STEP_KINDS = ("whitespace", "unicode", "case", "spreadsheet", "punctuation", "number",
              "leading_zeros")
VARIANT_KINDS = ("encoding", "number", "spreadsheet")
NEAR_MATCH_KINDS = (*STEP_KINDS, "encoding")

@dataclass(frozen=True)
class NearMatches:
    """Ids to delete whose normal form equals a source id's, and what made them differ."""

    ids: pa.Array
    kinds: Mapping[str, int]


_NORMALISE_SLICE = 1_000_000  # source ids normalised at a time: bounds the temporaries
_SLICE_PER_VALUE = 8  # ... and at least this many per id of the value set probed
# Whitespace (ASCII, Unicode spaces such as a no-break space) and format characters (a BOM,
# zero-width space or joiner, word joiner, soft hyphen) anywhere in the id are removed.
_BLANKS = r"[\s\x0b\x{85}\p{Z}\p{Cf}]+"
# Quote characters around an id (Word's smart quotes, an Excel text apostrophe).
_QUOTES = ("\"'`\u00b4\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
           "\u2032\u2033")
_ASCII_QUOTES = "\"'`"
_DASHES = r"[\p{Pd}\x{2212}]"  # en and em dashes, the minus sign...: a hyphen
_SPREADSHEET = r"^=\"(.*)\"$|^'"  # ="123" (a formula kept as text), '123 (text marker)
_DECIMAL = r"^([0-9]+)\.0*$"  # 123.0, 123.
_TRAILING_ZEROS = r"^([0-9]+\.[0-9]*[1-9])0+$"  # 100.10 as a number shows it: 100.1
# 1.23457e+11; 1.23457e+06 as C's printf("%g") writes it (the exponent's zeros dropped)
_SCIENTIFIC = r"^(?P<m>[0-9])(?:\.(?P<f>[0-9]*))?e\+?0*(?P<e>[0-9]+)$"
# 123,00: a decimal comma; 1,000 is read as a thousand (an English digit group), not as 1.
_COMMA_DECIMAL = r"^[0-9]+,(?:0{0,2}|0{4,})$"
# A number with digit groups, as a spreadsheet's number format writes it to CSV:
# 1,234,567 (English), 1.234.567 or 1.234,00 (German), 1'234'567 (Swiss); or with a
# decimal comma alone: 123,00.
_GROUPED = r"^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?$|^[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]*)?$" \
    r"|^[0-9]{1,3}(?:'[0-9]{3})+(?:\.[0-9]*)?$|" + _COMMA_DECIMAL
_ARABIC_DIGITS = r"[\x{660}-\x{669}\x{6f0}-\x{6f9}]"  # UTF-8 lead bytes 0xD9, 0xDB
_SPREADSHEET_DIGITS = 15  # a spreadsheet keeps this many significant digits of a number
_MAX_DIGITS = 17  # E-notation mantissas compared up to this many digits (int64 arithmetic)


def normal_forms(ids: pa.Array, ascii_only: bool = False,
                 present: np.ndarray | None = None) -> list[pa.Array]:
    """The steps of an id's comparison form, one per kind of ``STEP_KINDS``; the last one
    is the normal form: whitespace and format characters removed anywhere, NFKC (full-width
    digits, ligatures), lower case with the common case folds (``ß`` -> ``ss``), a
    spreadsheet's text markers removed (``="123"``, ``'123``), dashes as hyphens and
    surrounding quotes stripped, numbers as a spreadsheet spells them read back (``123.0``
    and ``123,00`` -> ``123``, ``1,234,567`` -> ``1234567``; ``1.23457E+11`` -> a key
    that the ids it may have rounded share, see ``_scientific_keys``), and for ids of
    ASCII digits only, no leading zeros.

    ``ascii_only`` (every id is ASCII) takes the ASCII kernels; ``present`` (which bytes
    occur in the ids' data) skips the steps that would change nothing.
    """
    ids = ids.cast(pa.string())
    if present is None:
        present = _bytes_present(ids)
        ascii_only = not present[0x80:].any()

    def has(chars: str) -> bool:
        return any(present[ord(c)] for c in chars)

    if ascii_only:
        blank = ids
        for char in "\t\n\x0b\f\r ":  # plain replaces are faster than one regex
            if has(char):
                blank = pc.replace_substring(blank, char, "")
        composed = blank
        lowered = pc.ascii_lower(composed) if present[0x41:0x5B].any() else composed
    else:
        blank = pc.replace_substring_regex(ids, _BLANKS, "")
        composed = pc.utf8_normalize(blank, "NFKC")
        if present[0xCD:0xD7].any():  # Greek, Cyrillic or Armenian letters in some id
            composed = _latin_lookalikes(composed)
        if has("\xd9\xdb") and pc.any(pc.match_substring_regex(
                composed, _ARABIC_DIGITS)).as_py():
            composed = _western_digits(composed)
        lowered = pc.utf8_lower(composed)
        lowered = pc.replace_substring(pc.replace_substring(lowered, "\u00df", "ss"),
                                       "\u03c2", "\u03c3")
        # A Turkish-locale lower case turns ``I`` into a dotless i (U+0131), ``ITEM`` into
        # ``\u0131tem``.
        lowered = pc.replace_substring(lowered, "\u0131", "i")
    sheet = pc.replace_substring_regex(lowered, _SPREADSHEET, r"\1") if has("='") else lowered
    if ascii_only:
        punct = pc.ascii_trim(sheet, _ASCII_QUOTES) if has(_ASCII_QUOTES) else sheet
    else:
        punct = pc.utf8_trim(pc.replace_substring_regex(sheet, _DASHES, "-"), _QUOTES)
    number = punct
    # Each regex runs only when a cheap test finds an id it may change (the usual: none).
    separators = [char for char in ".,'" if has(char)]
    if separators:  # are some ids digits and separators only (123.0, 1,234,567)?
        digits = number
        for char in separators:
            digits = pc.replace_substring(digits, char, "")
        if pc.any(pc.ascii_is_decimal(digits)).as_py():
            if pc.any(pc.match_substring_regex(number, _GROUPED)).as_py():
                number = _ungrouped(number)
            number = pc.replace_substring_regex(number, _DECIMAL, r"\1")
            number = pc.replace_substring_regex(number, _TRAILING_ZEROS, r"\1")
    if has("eE") and has("+.") and pc.any(pc.starts_with(
            pc.ascii_ltrim(number, "0123456789."), "e")).as_py():
        number = _scientific(number)
    decimal = pc.ascii_is_decimal(number)
    if not pc.any(decimal).as_py():  # no number: nothing to unpad (the usual case)
        return [blank, composed, lowered, sheet, punct, number, number]
    unpadded = pc.utf8_ltrim(number, "0")
    unpadded = pc.if_else(pc.equal(pc.binary_length(unpadded), 0), "0", unpadded)
    return [blank, composed, lowered, sheet, punct, number,
            pc.if_else(decimal, unpadded, number)]


# Greek, Cyrillic and Armenian letters drawn like Latin ones (a subset of Unicode's confusables,
# UTS #39): typed on another keyboard layout, or pasted, inside an otherwise Latin id.
_LOOKALIKES = dict(zip(
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425\u0406\u0408"
    "\u0405\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u04bb\u0501\u0391"
    "\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u03bf"
    "\u03b1\u03b9\u03bd\u03c1\u03c5\u03b3\u03f2\u03f9\u037f\u03f3\u04af\u04ae\u04cf\u051b"
    "\u051a\u051d\u051c"
    "\u0585\u0578\u057d\u0570\u0581\u0566\u0555\u054d",  # Armenian
    "ABEKMHOPCTYXIJSaeopcyxijshdABEZHIKMNOPTYXo" "aivpuycCJjyYlqQwW" "onuhgqOU", strict=True))
# Greek, Cyrillic (and its supplement) and Armenian: the scripts folded here.
_GREEK_CYRILLIC = "[\u0370-\u03ff\u0400-\u052f\u0531-\u058f]"


def _class_of(codes: list[int]) -> str:
    """A regex character class of these code points, as ranges."""
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges) + "]"


# A Greek or Cyrillic character that is not drawn like a Latin letter.
_UNLIKE_LATIN = _class_of([c for c in range(0x370, 0x590) if chr(c) not in _LOOKALIKES])
_MIXED_SCRIPT = f"[A-Za-z].*{_GREEK_CYRILLIC}|{_GREEK_CYRILLIC}.*[A-Za-z]"


def _latin_lookalikes(ids: pa.Array) -> pa.Array:
    """Within ids that mix Latin letters with Greek or Cyrillic ones, those look-alikes as
    the Latin letters they are drawn like (a Cyrillic ``a`` in ``ab-001``); likewise ids
    whose Greek or Cyrillic letters are all drawn like Latin ones (``AB-001`` typed with a
    Cyrillic A and B on a Russian layout: no Latin letter is left to call it mixed).
    Other ids written in one script are left alone: a Russian catalog's word for juice
    (its lower-case k is no look-alike) is not ``cok``."""
    other = pc.fill_null(pc.match_substring_regex(ids, _GREEK_CYRILLIC), False)
    if not pc.any(other).as_py():
        return ids
    fold = pc.and_(other, pc.fill_null(pc.or_(
        pc.match_substring_regex(ids, _MIXED_SCRIPT),
        pc.invert(pc.match_substring_regex(ids, _UNLIKE_LATIN))), False))
    if not pc.any(fold).as_py():
        return ids
    folded = ids.filter(fold)
    for letter, latin in _LOOKALIKES.items():
        folded = pc.replace_substring(folded, letter, latin)
    return pc.replace_with_mask(ids, fold, folded)


def _western_digits(ids: pa.Array) -> pa.Array:
    """Arabic-Indic and Persian digits (which NFKC keeps) as ASCII digits: the numbers an
    Arabic- or Persian-locale tool writes (``١٢٣`` -> ``123``)."""
    for value in range(10):
        for zero in (0x0660, 0x06F0):
            ids = pc.replace_substring(ids, chr(zero + value), str(value))
    return ids


def _ungrouped(ids: pa.Array) -> pa.Array:
    """Numbers with digit groups (``_GROUPED``) as plain decimals (``1,234,567.00`` ->
    ``1234567.00``, ``1.234,00`` -> ``1234.00``, ``123,00`` -> ``123.00``), which the
    decimal step then reads back as integers; other ids unchanged."""
    grouped = pc.fill_null(pc.match_substring_regex(ids, _GROUPED), False)
    english = pc.replace_substring(pc.replace_substring(ids, ",", ""), "'", "")
    german = pc.replace_substring(pc.replace_substring(ids, ".", ""), ",", ".")
    comma_decimal = pc.or_(pc.match_substring_regex(ids, r"^[0-9]{1,3}(?:\.[0-9]{3})+"),
                           pc.match_substring_regex(ids, _COMMA_DECIMAL))
    plain = pc.if_else(comma_decimal, german, english)
    return pc.if_else(grouped, plain, ids)


def _scientific(ids: pa.Array) -> pa.Array:
    """E-notation (``1.23457e+11``, a number a spreadsheet shortened) as the key
    ``~ K:MANTISSA:EXPONENT`` (K the mantissa's digits as written; the space is in no
    other normal form), which every integer that may have been shortened to it also gets
    on the side of the ids to delete."""
    parts = pc.extract_regex(ids, _SCIENTIFIC)
    matched = pc.is_valid(parts)
    if not pc.any(matched).as_py():
        return ids
    mantissa = pc.binary_join_element_wise(pc.struct_field(parts, "m"),
                                           pc.struct_field(parts, "f"), "")
    digits = pc.binary_length(mantissa).cast(pa.string())
    keys = pc.binary_join_element_wise("~ ", digits, ":", mantissa, ":",
                                       pc.struct_field(parts, "e"), "")
    return pc.if_else(matched, keys, ids)


def _scientific_keys(digits: pa.Array) -> pa.Array:
    """For each id of digits (no leading zero), the keys of the E-notations a spreadsheet
    may have shortened it to: its first K digits (rounded down or up) for K = 1..17."""
    keys: list[pa.Array] = []
    lengths = pc.binary_length(digits)
    exponent = pc.subtract(lengths, 1).cast(pa.string())
    for k in range(1, _MAX_DIGITS + 1):
        long_enough = pc.greater_equal(lengths, k)
        if not pc.any(long_enough).as_py():
            break
        head = pc.utf8_slice_codeunits(digits, 0, k)
        up = pc.add(head.cast(pa.int64()), 1).cast(pa.string())
        carried = pc.greater(pc.binary_length(up), k)  # 999 -> 1000: one more digit
        up_exp = pc.if_else(carried, lengths.cast(pa.string()), exponent)
        up = pc.utf8_slice_codeunits(up, 0, k)
        width = str(k)
        for mantissa, exp in ((head, exponent), (up, up_exp)):
            key = pc.binary_join_element_wise("~ ", width, ":", mantissa, ":", exp, "")
            keys.append(pc.if_else(long_enough, key, pa.scalar(None, pa.string())))
    return pa.concat_arrays([k.cast(pa.string()) for k in keys]) if keys else pa.array(
        [], pa.string())


def _rounded_by_a_spreadsheet(source: pa.Array) -> bool:
    """Whether every source id of more than 15 digits (if any) ends in zeros past the 15th
    digit, as a spreadsheet's number format writes them: only then are the rounded
    spellings of long ids to delete near matches. In a catalog of long ids that are simply
    numbered (``...3450``, ``...3451``) every tenth would otherwise stand for its
    neighbours, which could then never be deleted."""
    source = source.cast(pa.string())
    long = source.filter(pc.fill_null(pc.and_(
        pc.greater(pc.binary_length(source), _SPREADSHEET_DIGITS),
        pc.ascii_is_decimal(source)), False))
    return not len(long) or bool(pc.all(pc.match_substring_regex(
        long, r"^[0-9]{15}0+$")).as_py())


def _precision_keys(digits: pa.Array) -> pa.Array:
    """For each id of more than 15 digits (no leading zero), the numbers a spreadsheet
    writes for it in a number format (it keeps 15 significant digits): its first 15
    digits, rounded down or up, then zeros (``1234567890123456789`` ->
    ``1234567890123460000``); nulls for the other ids. Twice as long as ``digits``."""
    lengths = pc.binary_length(digits)
    long = pc.greater(lengths, _SPREADSHEET_DIGITS)
    down = up = pa.nulls(len(digits), pa.string())
    if not pc.any(long).as_py():
        return pa.concat_arrays([down, up])
    head = pc.utf8_slice_codeunits(digits, 0, _SPREADSHEET_DIGITS)
    rounded = pc.add(head.cast(pa.int64()), 1).cast(pa.string())  # 999... -> 1000...: longer
    for width in pc.unique(lengths.filter(long)).to_pylist():
        these = pc.equal(lengths, width)
        down = pc.if_else(these, pc.utf8_rpad(head, width, "0"), down)
        extra = pc.utf8_rpad(rounded, width + 1, "0")
        up = pc.if_else(these, pc.if_else(pc.greater(pc.binary_length(rounded),
                                                       _SPREADSHEET_DIGITS), extra,
                                          pc.utf8_rpad(rounded, width, "0")), up)
    return pa.concat_arrays([down.cast(pa.string()), up.cast(pa.string())])


def _misdecoded(ids: pa.Array) -> tuple[list[str], list[str]]:
    """The spellings of the ids to delete that a re-encoding may have made of them:
    (original id, spelling) pairs. UTF-8 read as Latin-1 or Windows-1252 (``café`` ->
    ``cafÃ©``), once or twice, or the reverse; the letters a lossy step could not keep
    replaced (``caf\ufffd``, ``caf\ufffd\ufffd``: bytes a decoder could not read;
    ``caf?``: a charset that cannot hold them) or stripped of their accents (``cafe``:
    an ASCII transliteration); and the escapes of an XML or HTML feed (``at&amp;t``,
    ``caf&#233;``) or of a URL (``ab%20001``, ``caf%C3%A9``); and the reverse, an id
    listed by the API in its escaped form (``ab%20001``, ``ab+001``, ``at&amp;t``) whose
    source id is the plain one. A loop over the ids to delete that are not ASCII or hold
    ``&<>"'+``, a space or a ``%XX`` escape, never over the source."""
    originals: list[str] = []
    spellings: list[str] = []
    wide = pc.invert(pc.fill_null(pc.string_is_ascii(ids), True))
    escapable = pc.fill_null(pc.match_substring_regex(ids, _ESCAPABLE), False)
    for value in ids.filter(pc.or_(wide, escapable)).to_pylist():
        found = {spelling for spelling in _spellings(value) if spelling != value}
        originals.extend([value] * len(found))
        spellings.extend(sorted(found))
    return originals, spellings


_ESCAPABLE = "[&<>\"' +]|%[0-9A-Fa-f]{2}"
_URL_SAFE = "!$&'()*+,:;=@-._~/"  # left as they are in a URL's path: only the rest is %-encoded


def _spellings(value: str) -> Iterator[str]:
    """What ``value`` may have become on its way through a re-encoding (``_misdecoded``)."""
    yield unquote(value)  # listed escaped by the API: "ab%20001" is "ab 001" in the source
    yield unquote_plus(value)  # "ab+001"
    yield html.unescape(value)  # "at&amp;t"
    yield quote(value, safe=_URL_SAFE)  # taken from a URL: "ab%20001", "caf%C3%A9"
    yield quote_plus(value, safe=_URL_SAFE.replace("+", ""))
    yield html.escape(value)
    yield html.escape(value, quote=False)
    if value.isascii():  # only the escapes can change it
        return
    for codec in ("latin-1", "cp1252"):
        for encode, decode in (("utf-8", codec), (codec, "utf-8")):
            with suppress(UnicodeError):
                once = value.encode(encode).decode(decode)
                yield once
                yield once.encode(encode).decode(decode)  # twice
        with suppress(UnicodeError):  # a codec's bytes read as UTF-8, errors replaced
            yield value.encode(codec).decode("utf-8", "replace")
        yield value.encode(codec, "replace").decode(codec)  # "?" for what it cannot hold
    utf8 = value.encode("utf-8")
    yield utf8.decode("ascii", "replace")  # one U+FFFD per byte
    yield utf8.decode("ascii", "replace").replace("\ufffd", "?")
    yield value.encode("ascii", "replace").decode()  # one "?" per letter
    yield "".join(c for c in unicodedata.normalize("NFD", value)
                  if not unicodedata.combining(c))
    yield value.encode("ascii", "xmlcharrefreplace").decode()
    yield html.escape(value.encode("ascii", "xmlcharrefreplace").decode())


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")
# Ids a spreadsheet reads as a date: "3-12" or "3/12" (month and day, or day and month),
# "MAR1" or "SEPT2" (a month's name and a day).
_DATE_LIKE = (r"(?i)^[0-9]{1,2}[-/][0-9]{1,2}$"
              r"|^(jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)[a-z]*-?[0-9]{1,2}$")


def _as_dates(ids: pa.Array) -> tuple[list[str], list[str]]:
    """The spellings a spreadsheet saves for the ids to delete that it reads as dates
    (``3-12`` -> ``12-Mar`` or ``03-Dec``, ``MAR1`` -> ``1-Mar``): (original id,
    spelling) pairs. A loop over the date-like ids to delete only."""
    originals: list[str] = []
    spellings: list[str] = []
    like = pc.fill_null(pc.match_substring_regex(ids, _DATE_LIKE), False)
    for value in ids.filter(like).to_pylist():
        found = set()
        digits = re.findall(r"[0-9]+", value)
        if value[0].isdigit():
            a, b = (int(d) for d in digits)
            pairs = [(a, b), (b, a)]
        else:
            pairs = [(_MONTHS.index(value[:3].capitalize()) + 1, int(digits[-1]))]
        for month, day in pairs:
            if 1 <= month <= 12 and 1 <= day <= 31:
                name = _MONTHS[month - 1]
                found |= {f"{day}-{name}", f"{day:02d}-{name}", f"{name}-{day}",
                          f"{name}-{day:02d}"}
        originals.extend([value] * len(found))
        spellings.extend(sorted(found))
    return originals, spellings


def near_matches(to_delete: pa.Array, source: pa.Array) -> NearMatches:
    """Which ids to delete equal a source id once both are in normal form (``to_delete``
    holds no source id: it is the diff).

    Arrow-native and one pass over the source: the small side (the ids to delete, with
    their misdecoded spellings and the E-notation keys of those that are numbers) is
    normalised and hashed, the source is normalised slice by slice (only the steps its
    bytes call for, ASCII kernels when it is all ASCII) and probed against it; only the
    few source ids that hit are kept, and only they are normalised again to tell what
    kind of near match each one is.
    """
    empty = NearMatches(pa.array([], pa.string()), dict.fromkeys(NEAR_MATCH_KINDS, 0))
    to_delete = to_delete.cast(pa.string())
    if not len(to_delete) or not len(source):
        return empty
    candidates = _candidates(to_delete, lambda: _rounded_by_a_spreadsheet(source))
    finals = candidates.column("final")
    value_set = pc.unique(finals.filter(pc.greater(pc.binary_length(finals), 0)))
    if not len(value_set):
        return empty
    present = _bytes_present(source)
    ascii_only = not present[0x80:].any()
    # A source id already in normal form can only match an id to delete that is not:
    # equal ids are never in both (``to_delete`` is a diff against this source), and an
    # E-notation key holds a space no normal form has. So when every id to delete is in
    # normal form and has no misdecoded spelling or spreadsheet-rounded number (the usual
    # case) only the source ids that normalising changes are probed, which spares
    # hashing every source id.
    variant = candidates.column("variant")
    changed_only = not pc.any(pc.or_(pc.or_(
        pc.is_in(variant, value_set=pa.array(["encoding", "spreadsheet"])),
        pc.and_(pc.equal(variant, ""), pc.not_equal(finals, candidates.column("f0")))),
        pc.and_(pc.equal(variant, "number"), pc.invert(pc.starts_with(finals, "~ "))))
    ).as_py()
    partners = []
    # Every ``is_in`` hashes the value set anew: slices are long enough to amortise that.
    step = max(_NORMALISE_SLICE, _SLICE_PER_VALUE * len(value_set))
    for start in range(0, len(source), step):
        piece = source.slice(start, step).cast(pa.string())
        forms = normal_forms(piece, ascii_only, present)[-1].cast(pa.string())
        if changed_only:
            changed = pc.not_equal(forms, piece)
            count = changed.true_count
            if not count:
                continue
            if count < len(piece):
                piece, forms = piece.filter(changed), forms.filter(changed)
        hit = pc.is_in(forms, value_set=value_set)
        if pc.any(hit).as_py():
            partners.append(piece.filter(hit))
    if not partners:
        return empty
    source_ids = pa.concat_arrays(partners)
    source_forms = normal_forms(source_ids)
    matched_rows = candidates.filter(pc.is_in(finals, value_set=source_forms[-1]))
    matched = pc.is_in(to_delete, value_set=matched_rows.column("id"))
    return NearMatches(to_delete.filter(matched),
                       _kinds(matched_rows, source_ids, source_forms))


def _candidates(to_delete: pa.Array, rounded: Callable[[], bool]) -> pa.Table:
    """The ids to delete as rows (id, variant, f0 = the spelling, f1..f7 its steps,
    final): each id as it is, its misdecoded spellings (variant ``encoding``) and, for ids
    that are numbers, the keys of the E-notations they may have become (``number``)."""
    forms = normal_forms(to_delete)
    tables = [_rows(to_delete, "", to_delete, forms)]
    dated, dates = _as_dates(to_delete)
    if dated:
        spelled = pa.array(dates, pa.string())
        tables.append(_rows(pa.array(dated, pa.string()), "spreadsheet", spelled,
                            normal_forms(spelled)))
    originals, spellings = _misdecoded(to_delete)
    if originals:
        spelled = pa.array(spellings, pa.string())
        tables.append(_rows(pa.array(originals, pa.string()), "encoding", spelled,
                            normal_forms(spelled)))
    numbers = pc.fill_null(pc.and_(pc.ascii_is_decimal(forms[-1]),
                                   pc.not_equal(forms[-1], "0")), False)
    if pc.any(numbers).as_py():
        ids = to_delete.filter(numbers)
        digits = forms[-1].filter(numbers)
        keys = _scientific_keys(digits)
        if pc.any(pc.greater(pc.binary_length(digits), _SPREADSHEET_DIGITS)).as_py() and (
                rounded()):
            keys = pa.concat_arrays([keys, _precision_keys(digits)])
        repeats = len(keys) // len(ids)
        owners = pa.concat_arrays([ids] * repeats)
        keep = pc.is_valid(keys)
        keys, owners = keys.filter(keep), owners.filter(keep)
        tables.append(_rows(owners, "number", keys, [keys] * len(STEP_KINDS)))
    return pa.concat_tables(tables)


def _rows(ids: pa.Array, variant: str, spelling: pa.Array, forms: list[pa.Array]) -> pa.Table:
    columns = {"id": ids, "variant": pa.array([variant] * len(ids), pa.string()),
               "f0": spelling}
    columns |= {f"f{step}": form.cast(pa.string()) for step, form in enumerate(forms, 1)}
    columns["final"] = forms[-1].cast(pa.string())
    return pa.table(columns)


def _kinds(candidates: pa.Table, source_ids: pa.Array,
           source_forms: list[pa.Array]) -> dict[str, int]:
    """Per kind, how many near-matched ids needed it: a step of the normal form that
    changed one side of a pair still different before it, or the variant (a misdecoded
    spelling, an E-notation key) through which the id matched."""
    right = pa.table({"sf0": source_ids,
                      **{f"sf{i}": f.cast(pa.string()) for i, f in enumerate(source_forms, 1)},
                      "sfinal": source_forms[-1].cast(pa.string())})
    pairs = candidates.join(right, keys="final", right_keys="sfinal", join_type="inner")
    plain = pc.equal(pairs["variant"], "")
    flags = {}
    for step, kind in enumerate(STEP_KINDS, start=1):
        before, after = f"f{step - 1}", f"f{step}"
        differed = pc.not_equal(pairs[before], pairs[f"s{before}"])
        changed = pc.or_(pc.not_equal(pairs[after], pairs[before]),
                         pc.not_equal(pairs[f"s{after}"], pairs[f"s{before}"]))
        flags[kind] = pc.and_(plain, pc.and_(differed, changed))
    for kind in VARIANT_KINDS:
        through = pc.equal(pairs["variant"], kind)
        flags[kind] = pc.or_(flags[kind], through) if kind in flags else through
    per_id = pa.table({"id": pairs["id"], **flags}).group_by("id").aggregate(
        [(kind, "max") for kind in NEAR_MATCH_KINDS])
    return {kind: int(pc.sum(per_id[f"{kind}_max"]).as_py() or 0) for kind in NEAR_MATCH_KINDS}


_TELLING_BYTES = b"\t\n\x0b\f\r \"'`=.,eE+\xd9\xdb"  # the bytes that call for an ASCII step


def _bytes_present(ids: pa.Array) -> np.ndarray:
    """Which byte values may occur in the ids' character data, by 256 flags: exact for the
    bytes that call for a step of the normal form (a memchr each) and for non-ASCII data;
    other bytes, such as upper-case letters, are taken to be there (``strbuf.scan_bytes``)."""
    if not len(ids) or ids.buffers()[2] is None:
        return np.zeros(256, dtype=bool)
    present = np.ones(256, dtype=bool)
    present[list(_TELLING_BYTES)] = False
    found, wide = scan_bytes(ids, _TELLING_BYTES)
    present[list(found)] = True
    present[0x80:] = wide
    return present

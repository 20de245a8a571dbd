"""Shell globs (``protect`` entries, ``scope`` entries) as RE2 patterns for Arrow's
``match_substring_regex``: one translation, so protection and ownership match alike."""

from __future__ import annotations

import re

__all__ = ["glob_to_regex"]


def glob_to_regex(pattern: str) -> str:
    """A shell glob as an anchored RE2 pattern: ``*`` any run, ``?`` one char, ``[...]`` a set."""
    out, i = ["^"], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := _set_end(pattern, i)) > 0:
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            out.append(_set_regex(body[1:] if negate else body, negate))
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    out.append("$")
    return "".join(out)


def _set_regex(body: str, negate: bool) -> str:
    """A glob set as a regex class (valid for RE2 and Python); like fnmatch, a reversed
    range such as ``z-a`` is empty, and a set left empty matches nothing."""
    items, i = [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = body[i], body[i + 2]
            if low <= high:
                items.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            items.append(re.escape(body[i]))
            i += 1
    if not items:
        return "[\\s\\S]" if negate else "[^\\s\\S]"
    return ("[^" if negate else "[") + "".join(items) + "]"


def _set_end(pattern: str, start: int) -> int:
    """Index of the "]" closing the set opened at ``start`` (a leading "!" or "]" is part of
    the set), or -1 when it is not closed and "[" is a literal."""
    first = start + 1
    if pattern[first:first + 1] == "!":
        first += 1
    if pattern[first:first + 1] == "]":
        first += 1
    return pattern.find("]", first)

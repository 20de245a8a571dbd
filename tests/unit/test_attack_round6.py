"""Round 6 of the hostile QA of issue 9, as unit tests: the spellings a lossy re-encoding
or an escaping feed makes of an id (see tests/integration/test_attack_round6.py)."""

from __future__ import annotations

import pytest

from tests.unit.test_near_match import near


@pytest.mark.parametrize(("to_delete", "source", "ids", "kinds"), [
    # Letters a decoder could not read, replaced by U+FFFD (per byte, or per sequence).
    (["caf\u00e9-1"], ["caf\ufffd-1"], ["caf\u00e9-1"], {"encoding": 1}),
    (["caf\u00e9-1"], ["caf\ufffd\ufffd-1"], ["caf\u00e9-1"], {"encoding": 1}),
    # A charset that cannot hold them: "?" per letter, or per UTF-8 byte.
    (["caf\u00e9-1", "\u65e5\u672c-1"], ["caf?-1", "??-1"], ["caf\u00e9-1", "\u65e5\u672c-1"],
     {"encoding": 2}),
    (["caf\u00e9-1"], ["caf??-1"], ["caf\u00e9-1"], {"encoding": 1}),
    # UTF-8 read as Windows-1252 twice; accents stripped; XML and HTML escapes.
    (["caf\u00e9-1"], ["caf\u00c3\u0192\u00c2\u00a9-1"], ["caf\u00e9-1"], {"encoding": 1}),
    (["Caf\u00e9-1"], ["Cafe-1"], ["Caf\u00e9-1"], {"encoding": 1}),
    (["at&t-1", "a<b>-1", "o'neil-1"], ["at&amp;t-1", "a&lt;b&gt;-1", "o&#x27;neil-1"],
     ["a<b>-1", "at&t-1", "o'neil-1"], {"encoding": 3}),
    (["caf\u00e9-1"], ["caf&#233;-1"], ["caf\u00e9-1"], {"encoding": 1}),
    # Not lossy spellings: other ids, and a no-break space is whitespace only.
    (["cafe-1", "caf\u00e9-2", "at&t-2", "ab\u00a0001"], ["caf\u00e9-1", "caf-2", "att-2",
                                                         "ab 001"],
     ["ab\u00a0001"], {"whitespace": 1}),
])
def test_lossy_and_escaped_spellings_are_near_matches(to_delete, source, ids, kinds):
    found, counted = near(to_delete, source)
    assert (sorted(found), counted) == (ids, kinds)

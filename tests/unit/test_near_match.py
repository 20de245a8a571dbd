"""The near-match rule: ids to delete that equal a source id once both are normalised."""

from __future__ import annotations

import unicodedata

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.nearmatch import NEAR_MATCH_KINDS, near_matches, normal_forms
from reconciler.core.plan import AddressRules, make_plan


def near(to_delete, source):
    found = near_matches(pa.array(to_delete, pa.string()), pa.array(source, pa.string()))
    return found.ids.to_pylist(), {k: v for k, v in found.kinds.items() if v}


@pytest.mark.parametrize(("to_delete", "source", "ids", "kinds"), [
    (["ABC"], ["abc"], ["ABC"], {"case": 1}),
    (["abc"], [" abc\t"], ["abc"], {"whitespace": 1}),
    (["abc "], ["abc"], ["abc "], {"whitespace": 1}),
    (["caf\u00e9"], ["cafe\u0301"], ["caf\u00e9"], {"unicode": 1}),
    (["cafe\u0301"], ["caf\u00e9"], ["cafe\u0301"], {"unicode": 1}),
    (["00042"], ["42"], ["00042"], {"leading_zeros": 1}),
    (["42"], ["0042"], ["42"], {"leading_zeros": 1}),
    (["000"], ["0"], ["000"], {"leading_zeros": 1}),
    (["2"], ["\ufeff2"], ["2"], {"whitespace": 1}),
    (["abc"], ["abc\u200b "], ["abc"], {"whitespace": 1}),
    ([" Def"], ["dEF "], [" Def"], {"whitespace": 1, "case": 1}),
    (["ÉCOLE "], ["e\u0301cole"], ["ÉCOLE "], {"whitespace": 1, "unicode": 1, "case": 1}),
    # Not numbers: leading zeros are part of the id.
    (["0Ab12"], ["Ab12"], [], {}),
    (["0x1"], ["x1"], [], {}),
    (["-007"], ["-7"], [], {}),
    # Whitespace and format characters inside the id, too (a no-break space, a soft hyphen).
    (["ab c"], ["abc"], ["ab c"], {"whitespace": 1}),
    (["ab 001"], ["ab\u00a0001"], ["ab 001"], {"whitespace": 1}),
    (["ab-001"], ["ab-\u00ad001"], ["ab-001"], {"whitespace": 1}),
    (["123"], ["1\u200b2\u20603"], ["123"], {"whitespace": 1}),
    # NFKC (full-width digits), case folds, dashes and quotes, spreadsheet spellings.
    (["123"], ["\uff11\uff12\uff13"], ["123"], {"unicode": 1}),
    (["stra\u00dfe"], ["STRASSE"], ["stra\u00dfe"], {"case": 1}),
    (["ab-1"], ["ab\u20131"], ["ab-1"], {"punctuation": 1}),
    (["123"], ["\u201c123\u201d"], ["123"], {"punctuation": 1}),
    (["123"], ["'123"], ["123"], {"spreadsheet": 1}),
    (["123"], ['="123"'], ["123"], {"spreadsheet": 1}),
    (["123"], ["123.0"], ["123"], {"number": 1}),
    (["123"], ["1.23E+2"], ["123"], {"number": 1}),
    (["123456789012", "123449999999", "123460000000"], ["1.23457E+11"],
     ["123456789012"], {"number": 1}),
    (["999999500000"], ["1.00000E+12"], ["999999500000"], {"number": 1}),
    # A spreadsheet's number formats: digit groups, a decimal comma; printf's "%g".
    (["1234567"], ["1,234,567"], ["1234567"], {"number": 1}),
    (["1234567"], ["1.234.567"], ["1234567"], {"number": 1}),
    (["1234567"], ["1'234'567"], ["1234567"], {"number": 1}),
    (["1234567"], ["1,234,567.00"], ["1234567"], {"number": 1}),
    (["1234"], ["1.234,00"], ["1234"], {"number": 1}),
    (["123"], ["123,00"], ["123"], {"number": 1}),
    (["1000", "1"], ["1,000"], ["1000"], {"number": 1}),  # a thousand, not one
    (["1234567"], ["1.23457e+06"], ["1234567"], {"number": 1}),
    (["12,34", "1,2,3", "a,b"], ["1234", "123", "ab"], [], {}),  # not digit groups
    # Numbers of more than 15 digits in a spreadsheet's number format: 15 kept, then zeros.
    (["1234567890123456789", "1234567890123470000"], ["1234567890123460000"],
     ["1234567890123456789"], {"number": 1}),
    (["9999999999999999"], ["10000000000000000"], ["9999999999999999"], {"number": 1}),
    (["123456789012345"], ["123456789012340"], [], {}),  # 15 digits are kept exactly
    # ...but not in a catalog of long ids simply numbered: a source id with a digit past the
    # 15th that is not zero shows the source was not rounded.
    (["1234567890123456"], ["1234567890123450", "1234567890123451"], [], {}),
    # Arabic-Indic and Persian digits, which NFKC keeps.
    (["123", "1007"], ["\u0661\u0662\u0663", "\u06f1\u06f0\u06f0\u06f7"], ["123", "1007"],
     {"unicode": 2}),
    # A Turkish-locale lower case: ``I`` became a dotless i (U+0131).
    (["ITEM-1"], ["\u0131tem-1"], ["ITEM-1"], {"case": 1}),
    (["caf\u00e9"], ["caf\u00c3\u00a9"], ["caf\u00e9"], {"encoding": 1}),
    (["caf\u00c3\u00a9"], ["caf\u00e9"], ["caf\u00c3\u00a9"], {"encoding": 1}),
    # A misdecoded spelling already in normal form (lower case): probed all the same.
    (["caf\u00e9"], ["caf\u00e3\u00a9", "x"], ["caf\u00e9"], {"encoding": 1}),
    # Distinct ids stay distinct.
    (["abd", "ab", "ab-c", "12.5", "1.5"], ["abc", "125", "15"], [], {}),
    # Empty and blank ids never match an empty source row.
    (["  ", ""], ["", " "], [], {}),
    ([], ["abc"], [], {}),
    (["abc"], [], [], {}),
])
def test_near_match_table(to_delete, source, ids, kinds):
    assert near(to_delete, source) == (ids, kinds)


def test_non_ascii_source_takes_the_unicode_kernels():
    # Ids differ from a source id only by case in a non-ASCII letter.
    assert near(["ÄRGER"], ["ärger", "x"]) == (["ÄRGER"], {"case": 1})


def test_large_source_is_probed_in_slices(monkeypatch):
    import reconciler.core.nearmatch as safety

    monkeypatch.setattr(safety, "_NORMALISE_SLICE", 3)
    monkeypatch.setattr(safety, "_SLICE_PER_VALUE", 1)
    source = [f"sku-{n}" for n in range(10)]
    assert near(["SKU-1", "SKU-9", "SKU-10"], source) == (["SKU-1", "SKU-9"], {"case": 2})


def _python_normal(value: str) -> str:
    """The same normal form written plainly, as the property's oracle (for ids without
    quotes, dashes or numbers in a spreadsheet's spelling)."""
    blank = "".join(c for c in value if not (c.isspace() or c in "\ufeff\u200b\u2060\u00ad"))
    folded = unicodedata.normalize("NFKC", blank).lower().replace("\u00df", "ss")
    if folded and folded.isascii() and folded.isdigit():
        return folded.lstrip("0") or "0"
    return folded


ID_CHARS = st.sampled_from(list("aAbB0019 \t\u00e9\u0065\u0301\u00c9_-\ufeff\u200b\u00a0"
                                 "\uff11\u00df\u00ad"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(ID_CHARS, max_size=5), max_size=12),
       st.lists(st.text(ID_CHARS, max_size=5), max_size=12))
def test_an_id_whose_normal_form_is_in_the_source_is_never_deleted(source, remote):
    plan = make_plan(pa.array(source, pa.string()), pa.array(remote, pa.string()),
                     AddressRules())
    found = near_matches(plan.to_delete, pa.array(source, pa.string()))
    left = set(plan.to_delete.to_pylist()) - set(found.ids.to_pylist())
    normal_source = {_python_normal(s) for s in source if s}
    for item_id in left:
        assert _python_normal(item_id) not in normal_source or not _python_normal(item_id)
    for item_id in found.ids.to_pylist():  # as it is, or with its accents stripped
        stripped = "".join(c for c in unicodedata.normalize("NFD", item_id)
                           if not unicodedata.combining(c))
        assert normal_source & {_python_normal(item_id), _python_normal(stripped)}
    assert sum(found.kinds.values()) >= len(found.ids)
    assert set(found.kinds) == set(NEAR_MATCH_KINDS)


def test_normal_forms_match_the_oracle():
    values = ["  A\u0301b ", "007", "0", "00", "Ab0", "ß", "\u00a0x\u00a0", "a b\u00a0c",
              "\uff10\uff17", "STRA\u00dfE"]
    assert normal_forms(pa.array(values))[-1].to_pylist() == [_python_normal(v) for v in values]


def test_greek_and_cyrillic_look_alikes_inside_latin_ids_are_near_matches():
    source = pa.array(["\u0430b-001", "SKU-\u041c1", "\u0441\u043e\u043a", "\u03bfrder-7"])
    near = near_matches(pa.array(["ab-001", "sku-m1", "cok", "order-7", "ab-002"]), source)
    assert sorted(near.ids.to_pylist()) == ["ab-001", "order-7", "sku-m1"]
    assert near.kinds["unicode"] == 3
    # One script only is left alone: a Russian id is not the Latin id it resembles.
    assert normal_forms(pa.array(["\u0441\u043e\u043a"]))[-1].to_pylist() == ["\u0441\u043e\u043a"]



def test_ids_whose_only_letters_are_greek_or_cyrillic_look_alikes_are_near_matches():
    """Found in round 4: ``\u0410\u0412-001`` (a Cyrillic A and B, typed on a Russian layout) has no
    Latin letter, so it was not "mixed" and was left alone; the catalog's ``AB-001`` looked
    missing and was deleted after grace."""
    source = pa.array(["\u0410\u0412-001", "\u039f\u03a1-2", "\u0421\u041e\u041a",
                       "\u0441\u043e\u043a", "\u043c\u0438\u0440-1"])
    near = near_matches(pa.array(["AB-001", "OP-2", "COK", "mup-1", "AB-002"]), source)
    assert sorted(near.ids.to_pylist()) == ["AB-001", "COK", "OP-2"]
    # Letters that are not look-alikes keep an id in its own script: the lower-case
    # Russian word for juice (its \u043a) and a word for peace are not Latin ids.
    assert normal_forms(pa.array(["\u0441\u043e\u043a", "\u043c\u0438\u0440-1"]))[-1].to_pylist() \
        == ["\u0441\u043e\u043a", "\u043c\u0438\u0440-1"]


@pytest.mark.parametrize(("latin", "written"), [
    ("ab-001", "\u03b1b-001"),  # Greek small alpha
    ("id-1", "\u03b9d-1"),  # Greek small iota
    ("sku-v1", "sku-\u03bd1"),  # Greek small nu
    ("ab-p", "ab-\u03c1"),  # Greek small rho
    ("up-1", "\u03c5p-1"),  # Greek small upsilon
    ("yes-2", "\u04afes-2"),  # Cyrillic straight u
    ("line-3", "\u04cfine-3"),  # Cyrillic small palochka
    ("qty-4", "\u051bty-4"),  # Cyrillic qa
    ("www-5", "\u051dww-5"),  # Cyrillic we
])
def test_more_look_alike_letters_inside_latin_ids_are_near_matches(latin, written):
    """Found in round 4: look-alikes missing from the table (Greek small alpha, iota, nu,
    rho, upsilon; Cyrillic straight u, palochka, qa, we) left the Latin id looking missing."""
    assert near([latin], [written]) == ([latin], {"unicode": 1})

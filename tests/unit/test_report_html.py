"""report.html: self-contained, escaped, capped (the browser test renders it)."""

from __future__ import annotations

import re

from reconciler.report.html import MAX_ROWS, HtmlExtras, key_properties, render

HOSTILE = '<script>alert("x")</script>'


def test_every_id_and_detail_is_escaped():
    summary = {"job": "<b>j</b>", "run_id": "r", "refused": "<img src=x onerror=alert(1)>",
               "gates": [{"gate": "max_shrink", "passed": False, "detail": "</table>"}]}
    page = render(summary, [HOSTILE, "ünïcødé-☃", "a\"b'c"],
                  HtmlExtras(properties={HOSTILE: "title: </td><script>"}))
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "ünïcødé-☃" in page and "a&quot;b&#x27;c" in page
    assert "title: &lt;/td&gt;&lt;script&gt;" in page
    # JSON data cannot close its script element
    data = page.split('id="report-data">')[1].split("</script>")[0]
    assert "<" not in data


def test_the_page_loads_nothing_from_the_network():
    page = render({"job": "j", "run_id": "r"}, ["a"])
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert "sourceMappingURL" not in page
    assert "default-src 'none'" in page  # and the browser is told so
    assert "Chart.js v4" in page  # inlined


def test_the_table_is_capped_and_says_so():
    ids = [f"SKU-{n}" for n in range(MAX_ROWS)]
    page = render({"job": "j", "run_id": "r"}, ids, total=50_000)
    assert f"Showing {MAX_ROWS} of 50000" in page
    assert page.count("<tr><td>SKU-") == MAX_ROWS


def test_key_properties_put_the_title_first_and_stay_short():
    assert key_properties({"price": 3, "title": "Red shoe"}) == "title: Red shoe, price: 3"
    assert len(key_properties({"title": "x" * 500})) == 80
    assert key_properties(None) == ""

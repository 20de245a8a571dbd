"""``report.html``: one self-contained page per report folder, readable offline.

The summary, every gate with its numbers, charts (what goes by reason, the job's past runs
from the journal, the delete rate over this run) and a searchable table of the ids to
delete. Charts are drawn by Chart.js, vendored in ``reconciler/report/vendor`` (see
``VENDOR.md`` there) and inlined, so the page loads nothing from the network. Every value
from outside (ids, titles, details) is HTML-escaped; the chart data travels as JSON in a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

REPORT_HTML = "report.html"
MAX_ROWS = 2000  # ids listed in the table; the CSVs hold them all
MAX_HISTORY = 60  # past runs charted


@dataclass
class HtmlExtras:
    """What only the runner knows: past runs, key properties, batches over time."""

    history: list[dict[str, Any]] = field(default_factory=list)  # past runs, oldest first
    properties: dict[str, str] = field(default_factory=dict)  # id -> "title: ..., ..."
    batches: list[tuple[float, int]] = field(default_factory=list)  # (seconds in, ids done)


def key_properties(properties: Mapping[str, Any] | None, width: int = 80) -> str:
    """A short line of an item's properties, title-like keys first."""
    if not properties:
        return ""
    first = ("title", "name", "label", "brand", "category", "price")
    keys = [k for k in first if k in properties] + sorted(k for k in properties
                                                           if k not in first)
    text = ", ".join(f"{k}: {properties[k]}" for k in keys[:4])
    return text if len(text) <= width else text[: width - 1] + "…"


def _chart_js() -> str:
    vendored = resources.files("reconciler.report").joinpath("vendor", "chart.umd.min.js")
    text = vendored.read_text("utf-8")
    # The page is offline: drop the source-map pointer so no tool goes looking for it.
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith("//# sourceMappingURL="))


def _json_for_script(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _history_points(history: Sequence[Mapping[str, Any]],
                    summary: Mapping[str, Any]) -> dict[str, list[Any]]:
    runs = [h for h in history if h.get("run_id") != summary.get("run_id")][-MAX_HISTORY + 1:]
    runs.append(summary)
    return {
        "labels": [str(r.get("started_at") or r.get("run_id", "")).replace("T", " ")
                   for r in runs],
        "catalog": [r.get("remote_ids", 0) for r in runs],
        "source": [r.get("source_ids", 0) for r in runs],
        "deleted": [r.get("deleted", 0) for r in runs],
    }


def _rate_points(batches: Sequence[tuple[float, int]]) -> dict[str, list[Any]]:
    seconds: list[float] = []
    done: list[int] = []
    rate: list[float] = []
    total, last = 0, 0.0
    for at, count in batches:
        total += count
        seconds.append(round(at, 2))
        done.append(total)
        rate.append(round(count / (at - last), 1) if at > last else 0.0)
        last = at
    return {"seconds": seconds, "done": done, "rate": rate}


def _summary_rows(s: Mapping[str, Any]) -> list[tuple[str, Any]]:
    source = s.get("source", {}) or {}
    skipped = s.get("skipped", {}) or {}
    return [
        ("source ids (distinct, non-empty)", s.get("source_ids", 0)),
        ("source rows / empty / duplicate / with whitespace",
         f"{source.get('rows', 0)} / {source.get('empty_ids', 0)} / "
         f"{source.get('duplicate_ids', 0)} / {source.get('whitespace_ids', 0)}"),
        ("remote ids (catalog)", s.get("remote_ids", 0)),
        ("inventory complete", "yes" if s.get("inventory_complete") else "no"),
        ("to delete", s.get("to_delete", 0)),
        ("skipped (all reasons, pending grace included)", sum(skipped.values())),
        ("pending grace (missing, not yet due)", s.get("pending_grace", 0)),
        ("to delete + pending grace (what the caps judge)",
         int(s.get("to_delete", 0) or 0) + int(s.get("pending_grace", 0) or 0)),
        ("deleted (queued)", s.get("deleted", 0)),
        ("failed / unknown / not sent",
         f"{s.get('failed', 0)} / {s.get('unknown', 0)} / {s.get('not_sent', 0)}"),
        ("run seconds", s.get("run_seconds", "")),
    ]


def _gate_rows(gates: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for g in gates:
        numbers = ", ".join(f"{k}={v}" for k, v in g.items()
                            if k not in ("gate", "passed", "detail"))
        state = "passed" if g.get("passed") else "refused"
        rows.append(f'<tr class="{state}"><td>{_e(g.get("gate", ""))}</td>'
                    f"<td>{state}</td><td>{_e(g.get('detail', ''))}</td>"
                    f"<td>{_e(numbers)}</td></tr>")
    return "\n".join(rows) or '<tr><td colspan="4">no gate was judged</td></tr>'


def render(summary: Mapping[str, Any], to_delete: Sequence[str],
           extras: HtmlExtras | None = None, *, action: str = "deleted",
           total: int | None = None) -> str:
    """The page as one string; ``total`` counts the ids when only the first are given."""
    s, extras = summary, extras or HtmlExtras()
    dry = bool(s.get("dry_run"))
    mode = "dry run — nothing deleted" if dry else "real run"
    banner = ""
    if s.get("refused"):
        banner = (f'<div class="banner refused"><b>Refused.</b> Nothing was deleted. '
                  f"{_e(s['refused'])}</div>")
    elif s.get("error"):
        banner = f'<div class="banner error"><b>Stopped:</b> {_e(s["error"])}</div>'
    skipped = dict(s.get("skipped", {}) or {})
    reasons = {"to delete": s.get("to_delete", 0), **skipped}
    if s.get("pending_grace") and "pending_grace" not in skipped:
        reasons["pending_grace"] = s["pending_grace"]
    shown = list(to_delete[:MAX_ROWS])
    count = len(to_delete) if total is None else total
    rows = "\n".join(
        f"<tr><td>{_e(i)}</td><td>{_e(extras.properties.get(i, ''))}</td></tr>" for i in shown)
    data = {
        "reasons": {"labels": list(reasons), "values": list(reasons.values())},
        "history": _history_points(extras.history, s),
        "rate": _rate_points(extras.batches),
    }
    verb = "would be deleted" if dry or action != "deleted" else "deleted or to delete"
    return _PAGE.substitute(
        title=_e(f"Reconcile report: {s.get('job', '?')}"),
        job=_e(s.get("job", "?")),
        run_id=_e(s.get("run_id", "?")),
        mode=_e(mode),
        target=_e(f"{s.get('backend', '?')} catalog {s.get('catalog_id', '?')}"),
        times=_e(f"{s.get('started_at')} to {s.get('finished_at')}"),
        exit_code=_e(s.get("exit_code")),
        banner=banner,
        summary_rows="\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                               for k, v in _summary_rows(s)),
        gate_rows=_gate_rows(s.get("gates", []) or []),
        id_rows=rows or '<tr><td colspan="2">none</td></tr>',
        shown=len(shown), total=count, verb=_e(verb),
        capped=(f" (the first {len(shown)}; <code>deletes.csv</code> and "
                "<code>outcomes.csv</code> hold all)") if count > len(shown) else "",
        data=_json_for_script(data),
        chart_js=_chart_js(),
    )


def write_html(folder: Path, summary: Mapping[str, Any], to_delete: Sequence[str],
               extras: HtmlExtras | None = None, *, action: str = "deleted",
               total: int | None = None) -> Path:
    path = folder / REPORT_HTML
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(summary, to_delete, extras, action=action, total=total),
                   encoding="utf-8")
    tmp.replace(path)
    return path


_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>$title</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px;
       color: #1d232a; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.meta { color: #555; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e3e6ea;
         vertical-align: top; word-break: break-all; }
table.summary th { font-weight: normal; color: #444; width: 45%; }
table.gates td:nth-child(2) { white-space: nowrap; }
tr.refused td { background: #fde8e8; } tr.passed td:nth-child(2) { color: #17803d; }
tr.refused td:nth-child(2) { color: #b42318; font-weight: bold; }
.banner { padding: .7em 1em; border-radius: 6px; margin: 1em 0; }
.banner.refused, .banner.error { background: #fde8e8; border: 1px solid #f5b5b5; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1.2em; }
.chart { position: relative; height: 260px; }
input[type=search] { width: 100%; padding: .4em; margin: .4em 0; font-size: 1em; }
#ids-table td:first-child { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="meta">Run <code>$run_id</code> ($mode), $times<br>
Target: $target — exit code $exit_code</p>
$banner
<h2>Summary</h2>
<table class="summary">
$summary_rows
</table>
<h2>Safety gates</h2>
<table class="gates">
<tr><th>gate</th><th>decision</th><th>why</th><th>numbers</th></tr>
$gate_rows
</table>
<h2>Charts</h2>
<div class="grid">
<div><h3>What goes, by reason</h3><div class="chart"><canvas id="reasons"></canvas></div></div>
<div><h3>Past runs of this job</h3><div class="chart"><canvas id="history"></canvas></div></div>
<div><h3>Deletes over this run</h3><div class="chart"><canvas id="rate"></canvas></div>
<p id="rate-empty" class="meta" hidden>No deletes were sent in this run.</p></div>
</div>
<h2>Ids $verb</h2>
<p class="meta">Showing $shown of $total$capped.</p>
<input type="search" id="filter" placeholder="Search ids and properties" aria-label="search">
<table id="ids-table">
<thead><tr><th>item id</th><th>key properties</th></tr></thead>
<tbody>
$id_rows
</tbody>
</table>
<script type="application/json" id="report-data">$data</script>
<script>
$chart_js
</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  new Chart(document.getElementById("reasons"), {
    type: "bar",
    data: {labels: data.reasons.labels,
           datasets: [{label: "ids", data: data.reasons.values,
                       backgroundColor: ["#d9480f", "#1c7ed6", "#37b24d", "#f59f00",
                                         "#7048e8", "#868e96", "#0ca678", "#e64980"]}]},
    options: {indexAxis: "y", plugins: {legend: {display: false}}}
  });
  new Chart(document.getElementById("history"), {
    type: "line",
    data: {labels: data.history.labels,
           datasets: [
             {label: "catalog size", data: data.history.catalog, borderColor: "#1c7ed6"},
             {label: "source size", data: data.history.source, borderColor: "#37b24d"},
             {label: "deleted", data: data.history.deleted, borderColor: "#d9480f",
              yAxisID: "y2"}]},
    options: {scales: {x: {ticks: {maxTicksLimit: 6}}, y: {beginAtZero: true},
                       y2: {position: "right", beginAtZero: true,
                            grid: {drawOnChartArea: false}}}}
  });
  if (data.rate.seconds.length === 0) {
    document.getElementById("rate-empty").hidden = false;
  }
  new Chart(document.getElementById("rate"), {
    type: "line",
    data: {labels: data.rate.seconds,
           datasets: [
             {label: "ids done", data: data.rate.done, borderColor: "#d9480f"},
             {label: "ids per second", data: data.rate.rate, borderColor: "#7048e8",
              yAxisID: "y2"}]},
    options: {scales: {x: {title: {display: true, text: "seconds"}}, y: {beginAtZero: true},
                       y2: {position: "right", beginAtZero: true,
                            grid: {drawOnChartArea: false}}}}
  });
  document.documentElement.setAttribute("data-charts", String(Chart.instances ?
    Object.keys(Chart.instances).length : 0));
  var filter = document.getElementById("filter");
  var rows = document.querySelectorAll("#ids-table tbody tr");
  filter.addEventListener("input", function () {
    var q = filter.value.toLowerCase();
    for (var i = 0; i < rows.length; i++) {
      rows[i].hidden = q !== "" && rows[i].textContent.toLowerCase().indexOf(q) < 0;
    }
  });
}());
</script>
</body>
</html>
""")

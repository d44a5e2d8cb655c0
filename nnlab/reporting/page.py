"""The report as one HTML page: every script, style and picture inside it, nothing loaded from
anywhere, every value from a config, a run folder or a file name escaped.

Text goes through :func:`html.escape`; data for the charts sits in ``<script
type="application/json">`` blocks whose ``<``, ``>`` and ``&`` are written as JSON escapes, so
no value can close the block or open a tag.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from nnlab.reporting import charts
from nnlab.reporting.content import Report, RunSection, SweepSection, Table

STYLE = """
:root { --fg: #1b1f24; --muted: #5b6470; --line: #d6dbe1; --bg: #ffffff; --head: #f3f5f7; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; padding: 1.2rem 1.6rem 4rem; max-width: 1280px; }
h1 { font-size: 1.5rem; margin: 0 0 .4rem; } h2 { font-size: 1.2rem; margin: 2rem 0 .6rem;
     border-bottom: 1px solid var(--line); padding-bottom: .2rem; } h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .4rem 0; color: var(--muted); }
header dt { font-weight: 600; } header dd { margin: 0; word-break: break-all; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: .4rem 0 .8rem; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--head); position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; } th.sortable::after { content: " \\2195"; color: #aab; }
th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--fg); }
th[aria-sort="descending"]::after { content: " \\2193"; color: var(--fg); }
td.num, th.num { text-align: right; }
.scroll { overflow-x: auto; max-width: 100%; }
.status-green td.status { color: #127a2f; } .status-red td.status { color: #b42318; }
.status-yellow td.status { color: #9a6700; } .status-dim td.status { color: var(--muted); }
.status-cyan td.status { color: #0e7490; }
input[type=search] { padding: .3rem .5rem; width: 22rem; max-width: 100%; border: 1px solid var(--line);
                     border-radius: 4px; }
.notes { color: var(--muted); margin: .3rem 0; padding-left: 1.2rem; }
.sentences li { margin: .2rem 0; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } .chart { min-height: 60px; }
details.run { border: 1px solid var(--line); border-radius: 6px; margin: .5rem 0; padding: .3rem .8rem; }
details.run > summary { cursor: pointer; font-weight: 600; }
details.run > summary .muted { font-weight: 400; color: var(--muted); }
pre { background: var(--head); padding: .6rem; overflow-x: auto; max-height: 28rem; font-size: 12px; }
.pictures { display: flex; flex-wrap: wrap; gap: .8rem; } .pictures figure { margin: 0; }
.pictures img { max-width: 100%; width: 560px; border: 1px solid var(--line); }
.pictures figcaption { color: var(--muted); font-size: 12px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: .4rem 1.6rem; }
.warning { color: #9a6700; }
.tag { background: var(--head); border: 1px solid var(--line); border-radius: 3px; padding: 0 .3rem; }
.note { white-space: pre-wrap; }
"""

SCRIPT = """
(function () {
  "use strict";
  const templates = JSON.parse(document.getElementById("nnlab-templates").textContent);
  function data(id) { return JSON.parse(document.getElementById(id).textContent); }
  function draw(el, name, rows, title) {
    const template = templates[name];
    if (!template) { el.textContent = "no chart template " + name; return Promise.resolve(); }
    const spec = JSON.parse(JSON.stringify(template));
    spec.data = {values: rows};
    if (title) { spec.title = title; }
    return vegaEmbed(el, spec, {renderer: "svg", actions: false}).then(function (result) {
      el.dataset.drawn = "1"; return result;
    }).catch(function (err) { el.textContent = "the chart could not be drawn: " + err; console.error(err); });
  }
  window.nnlabDraw = draw;
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    const source = el.getAttribute("data-source");
    draw(el, el.getAttribute("data-chart"), data(source), null);
  });
  // A run's charts and pictures are drawn when its section is first opened.
  document.querySelectorAll("details.run").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (!details.open || details.dataset.loaded) { return; }
      details.dataset.loaded = "1";
      details.querySelectorAll("img[data-src]").forEach(function (img) { img.src = img.dataset.src; });
      const charts = data(details.getAttribute("data-charts"));
      const holder = details.querySelector(".charts");
      charts.forEach(function (chart) {
        const el = document.createElement("div");
        el.className = "chart";
        el.setAttribute("data-template", chart.template);
        holder.appendChild(el);
        draw(el, chart.template, chart.rows, chart.title || null);
      });
    });
  });
  // Sortable tables: a click on a header sorts by that column (numbers by value), again to reverse.
  document.querySelectorAll("table.sortable").forEach(function (table) {
    const body = table.tBodies[0];
    table.querySelectorAll("th").forEach(function (th, column) {
      th.classList.add("sortable");
      th.addEventListener("click", function () {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const rows = Array.from(body.rows);
        function key(row) {
          const cell = row.cells[column];
          const raw = cell.getAttribute("data-v");
          if (raw === null || raw === "") { return [2, ""]; }
          const value = Number(raw);
          return isNaN(value) ? [1, raw.toLowerCase()] : [0, value];
        }
        rows.sort(function (a, b) {
          const x = key(a), y = key(b);
          if (x[0] !== y[0]) { return x[0] - y[0]; }  // blanks last either way
          const order = x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  const filter = document.getElementById("run-filter");
  if (filter) {
    filter.addEventListener("input", function () {
      const words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
      const rows = document.querySelectorAll("#runs-table tbody tr");
      let shown = 0;
      rows.forEach(function (row) {
        const text = row.textContent.toLowerCase();
        const keep = words.every(function (w) { return text.indexOf(w) >= 0; });
        row.hidden = !keep; if (keep) { shown += 1; }
      });
      document.getElementById("run-count").textContent = shown + " of " + rows.length + " runs";
    });
  }
})();
"""


def json_block(block_id: str, value: Any) -> str:
    """Data for the page's script, safe inside HTML: no value can end the block or start a tag."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{escape(block_id)}">{text}</script>'


def _clean(value: Any) -> Any:
    """NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def table_html(table: Table, *, table_id: str | None = None, sortable: bool = False) -> str:
    """A table of ready-made cells (escaped); sortable tables carry each cell's raw value."""
    attrs = (f' id="{escape(table_id)}"' if table_id else "") + (' class="sortable"' if sortable else "")
    head = "".join(f'<th class="{"num" if r else ""}">{escape(h)}</th>' for h, r in zip(table.headers, table.right))
    rows = []
    for i, row in enumerate(table.rows):
        css = table.classes[i] if i < len(table.classes) else ""
        link = table.links[i] if i < len(table.links) else None
        cells = []
        for j, text in enumerate(row):
            classes = [c for c in ("num" if table.right[j] else "", "status" if table.headers[j] == "status" else "")
                       if c]
            raw = table.sort[i][j] if table.sort and i < len(table.sort) else None
            value = f' data-v="{escape(str(raw))}"' if raw is not None else (' data-v=""' if sortable else "")
            content = escape(text)
            if (i, j) in table.bold:
                content = f"<strong>{content}</strong>"
            if link and table.headers[j] == "run_id":
                content = f'<a href="#{escape(link)}">{content}</a>'
            cells.append(f'<td class="{" ".join(classes)}"{value}>{content}</td>')
        rows.append(f'<tr class="{escape(css)}">{"".join(cells)}</tr>')
    return (f'<div class="scroll"><table{attrs}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _list(items: list[str], css: str) -> str:
    if not items:
        return ""
    return f'<ul class="{css}">' + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def _chart(block_id: str, template: str, rows: list[dict[str, Any]]) -> str:
    return (f'<div class="chart" data-chart="{escape(template)}" data-source="{escape(block_id)}"></div>'
            + json_block(block_id, _clean(rows)))


def _sweep_html(sweep: SweepSection, index: int) -> str:
    parts = [f"<h3>{escape(sweep.sweep_id)}</h3>",
             f"<p>ranked by {escape(sweep.metric)}"
             + (f" ({'higher' if sweep.direction == 'max' else 'lower'} is better)" if sweep.direction else "")
             + "</p>", table_html(sweep.ranking, sortable=True)]
    if sweep.parallel:
        parts.append(f'<div class="charts">{_chart(f"sweep-{index}", f"parallel:{sweep.metric}", sweep.parallel)}'
                     "</div>")
    return "".join(parts)


def _run_html(section: RunSection, index: int) -> str:
    title = (f'<summary>{escape(section.label)} <span class="muted">{escape(section.run_id)} · '
             f'{escape(section.status)}</span></summary>')
    body = []
    if section.warning:
        body.append(f'<p class="warning">{escape(section.warning)}</p>')
    if section.message:
        body.append(f"<p>{escape(section.message)}</p>")
    if section.tags:
        body.append('<p class="tags"><strong>tags</strong>: ' + " ".join(
            f'<span class="tag">{escape(k)}={escape(v)}</span>' for k, v in section.tags) + "</p>")
    if section.note:
        body.append(f'<p class="note"><strong>note</strong>: {escape(section.note)}</p>')
    if section.facts:
        body.append('<div class="grid2">' + "".join(f"<div><strong>{escape(k)}</strong>: {escape(v)}</div>"
                                                    for k, v in section.facts) + "</div>")
    if section.metrics is not None:
        body.append("<h3>final metrics</h3>" + table_html(section.metrics))
    if section.baseline:
        body.append("<p><strong>baseline</strong>: " + escape(", ".join(f"{k} {v}" for k, v in section.baseline))
                    + "</p>")
    if section.differences:
        diff = Table(["config key", "this run", f"{section.reference}"], [list(d) for d in section.differences],
                     [False, False, False])
        body.append("<h3>differences from the reference run</h3>" + table_html(diff))
    elif section.reference and section.reference != section.run_id:
        body.append(f"<p>config: the same as {escape(section.reference)}'s</p>")
    body.append('<div class="charts"></div>')
    if section.pictures:
        body.append('<div class="pictures">' + "".join(
            f'<figure><img alt="{escape(name)}" data-src="{uri}" loading="lazy"><figcaption>{escape(name)}'
            "</figcaption></figure>" for name, uri in section.pictures) + "</div>")
    if section.picture_files:
        body.append("<p>pictures in the run folder: " + escape(", ".join(section.picture_files)) + "</p>")
    if section.config_text is not None:
        body.append("<h3>config.yaml</h3><pre>" + escape(section.config_text) + "</pre>")
    block = f"run-charts-{index}"
    return (f'<details class="run" id="{section.anchor}" data-charts="{block}">{title}{"".join(body)}</details>'
            + json_block(block, _clean(section.charts)))


def render(report: Report) -> str:
    """The page's HTML text."""
    from nnlab.reporting.assets import vega_bundle

    sweep_metrics = sorted({s.metric for s in report.sweeps})
    templates = charts.templates(sorted(set(report.curves) | set(report.bands)), report.fold_metrics, sweep_metrics)
    templates["curves:run"] = charts.curves("value", legend="curve")
    nav = ['<a href="#runs">runs</a>']
    body = ["<header><h1>nnlab report</h1><dl>"
            + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in report.header) + "</dl></header>"]
    sections = []
    rows = len(report.table.rows)
    sections.append('<section id="runs"><h2>runs</h2>'
                    '<input type="search" id="run-filter" placeholder="filter runs: words in any column" '
                    f'aria-label="filter runs"> <span id="run-count">{rows} of {rows} runs</span>'
                    + table_html(report.table, table_id="runs-table", sortable=True)
                    + _list([f"warning: {w}" for w in report.warnings], "notes") + "</section>")
    if report.groups is not None:
        nav.append('<a href="#groups">groups</a>')
        g = report.groups
        part = [f'<section id="groups"><h2>groups</h2><p>{escape(g["title"])}</p>']
        if g["table"] is not None:
            part.append(table_html(g["table"], table_id="groups-table", sortable=True))
        if g["versus"] is not None:
            part.append(f'<h3>{escape(g["versus_title"])}</h3>' + table_html(g["versus"], table_id="versus-table"))
        part.append(_list(g["sentences"], "sentences"))
        part.append(_list([f"note: {n}" for n in g["notes"]], "notes"))
        if report.bands:
            part.append('<div class="charts">' + "".join(_chart(f"bands-{i}", f"bands:{m}", rows)
                                                         for i, (m, rows) in enumerate(report.bands.items()))
                        + "</div>")
        sections.append("".join(part) + "</section>")
    if report.curves:
        nav.append('<a href="#curves">curves</a>')
        sections.append('<section id="curves"><h2>learning curves</h2>'
                        "<p>hover a point for run, epoch and value; click a legend entry to hide that run "
                        "(shift-click for more, double-click to show all)</p>"
                        + (f'<p class="notes">{escape(report.curve_note)}</p>' if report.curve_note else "")
                        + '<div class="charts">' + "".join(_chart(f"curves-{i}", f"curves:{m}", rows)
                                                            for i, (m, rows) in enumerate(report.curves.items()))
                        + "</div></section>")
    if report.sweeps:
        nav.append('<a href="#sweeps">sweeps</a>')
        sections.append('<section id="sweeps"><h2>sweeps</h2>'
                        + "".join(_sweep_html(s, i) for i, s in enumerate(report.sweeps)) + "</section>")
    if report.runs:
        nav.append('<a href="#each-run">each run</a>')
        sections.append('<section id="each-run"><h2>each run</h2><p>open a run for its config, what differs '
                        "from the reference run, its final metrics beside the baseline, its charts and "
                        "pictures</p>" + "".join(_run_html(s, i) for i, s in enumerate(report.runs)) + "</section>")
    html = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(report.title)}</title><style>{STYLE}</style></head><body>",
            *body, f"<nav>{''.join(nav)}</nav>", *sections,
            json_block("nnlab-templates", templates),
            f"<script>{_script_safe(vega_bundle())}</script>", f"<script>{SCRIPT}</script>", "</body></html>"]
    return "\n".join(html)


def _script_safe(code: str) -> str:
    """A script's text that cannot end its ``<script>`` element early."""
    return code.replace("</script", "<\\/script")

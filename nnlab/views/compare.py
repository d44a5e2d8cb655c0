"""``nnlab compare``: many runs as one table; two runs side by side; their curves overlaid.

Rows come from :mod:`nnlab.runs.reading` (metrics.json summaries, cached in an index);
config.yaml is read only when a config key is filtered, sorted or shown on.
This module imports neither TensorFlow nor Keras, nor NumPy or matplotlib unless
``--plot`` asks for a figure, so that listing thousands of runs starts at once.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, TextIO

from nnlab import metric_names
from nnlab.errors import NnlabError
from nnlab.runs.format import HISTORY, Status
from nnlab.runs.reading import (BASELINE_ALIASES, Run, RunSet, canonical_key, collect, is_run_folder,
                                read_history)
from nnlab.views.style import (compact, duration, fit_columns, number, params_label, shrink_widths, status_style,
                               table_width, text_width, timestamp)

FORMATS = ("table", "csv", "json", "markdown")
#: Above this many rows the table is laid out directly: rich takes about 2 ms a row.
RICH_TABLE_ROWS = 200
#: At most this many curves in one --plot figure.
MAX_CURVES = 20
#: At most this many warnings are printed; the rest are counted.
MAX_WARNINGS = 20

_FILTER = re.compile(r"^\s*([^\s<>=!]+)\s*(>=|<=|!=|==|=|>|<)\s*(.*?)\s*$")


# -- choosing runs ------------------------------------------------------------------------

@dataclass(frozen=True)
class Filter:
    """One ``--filter`` condition: ``key op value``.

    ``=`` and ``!=`` accept shell wildcards (``name=imdb*``); numbers compare as
    numbers, everything else as text (ISO times compare in time order:
    ``started>2025-06-01``). A run without the key fails every condition but ``!=``.
    """

    key: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "Filter":
        """Read ``key=value``, ``key>v``, ``key<v``, ``key>=v``, ``key<=v`` or ``key!=v``.

        Raises:
            NnlabError: when the text has none of these forms.
        """
        match = _FILTER.match(text)
        if not match or not match.group(1):
            raise NnlabError("expected KEY=VALUE, KEY!=VALUE, KEY>VALUE, KEY<VALUE, KEY>=VALUE or KEY<=VALUE, "
                             "e.g. status=completed or test_accuracy>0.85", source=f"--filter {text}")
        key, op, value = match.groups()
        return cls(canonical_key(key), "=" if op == "==" else op, value)

    def matches(self, run: Run, config: bool = True) -> bool:
        """Whether ``run`` satisfies the condition (``config``: look in its config too)."""
        actual = run.get(self.key, config)
        if actual is None:
            return self.op == "!="
        want_number, have_number = _as_number(self.value), _as_number(actual)
        if want_number is not None and have_number is not None:
            a, b = have_number, want_number
        else:
            a, b = _as_text(actual), self.value
            if self.op in ("=", "!="):
                same = fnmatch.fnmatchcase(a, b) if any(c in b for c in "*?[") else a == b
                return same if self.op == "=" else not same
        return {"=": a == b, "!=": a != b, ">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[self.op]


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def check_keys(runs: list[Run], keys: Iterable[str], what: str) -> None:
    """Refuse a key no run has, neither as a field nor as a config key (with a suggestion).

    Raises:
        NnlabError: naming the flag, the key and the keys that exist.
    """
    fields = field_keys(runs) | set(BASE_COLUMNS)  # a basic column no run has yet is blank, not an error
    missing = [k for k in keys if k not in fields]
    if not missing or not runs:
        return
    for key in missing:
        if any(key in r.config() for r in runs):
            continue
        from nnlab.suggestions import unknown_name_message

        known = sorted({k for r in runs for k in r.fields})
        message = unknown_name_message("key", key, known)
        raise NnlabError(f"{message}; or a dotted config key such as training.epochs", source=what)


def select(runs: list[Run], *, filters: Iterable[Filter] = (), last: int | None = None,
           sort: str | None = None, ascending: bool | None = None) -> list[Run]:
    """Filter, keep the last N started, then sort.

    Args:
        runs: in start order.
        filters: every one must match.
        last: keep only the N runs started last (after filtering).
        sort: a field or config key; runs without it go last whatever the direction.
        ascending: force the direction (default: see :func:`default_direction`).

    Returns:
        The runs to show, in order.
    """
    filters = list(filters)
    check_keys(runs, [f.key for f in filters] + ([canonical_key(sort)] if sort else []),
               "--filter" if filters else "--sort")
    fields = field_keys(runs)
    chosen = [r for r in runs if all(f.matches(r, f.key not in fields) for f in filters)]
    if last is not None:
        chosen = chosen[-last:] if last > 0 else []
    if sort:
        key = canonical_key(sort)
        in_config = key not in fields
        present = [r for r in chosen if r.get(key, in_config) is not None]
        if ascending is None:
            ascending = default_direction(key, present) != "max"
        missing = [r for r in chosen if r.get(key, in_config) is None]
        present.sort(key=lambda r: _sort_value(r.get(key, in_config)), reverse=not ascending)
        chosen = present + missing
    return chosen


def field_keys(runs: list[Run]) -> set[str]:
    """Every summary field some run has (keys outside it are looked up in the configs)."""
    keys: set[str] = set()
    for run in runs:
        keys.update(run.fields)
    return keys


def default_direction(key: str, runs: list[Run]) -> str | None:
    """The direction ``--sort KEY`` takes by default, as :mod:`nnlab.metric_names` says.

    The directions the runs recorded in their metrics.json (Keras's own, for every metric
    they report) are used when every run sorted records one for the metric and they agree;
    otherwise the name decides (:func:`nnlab.metric_names.direction_by_name`: accuracy-like
    ``max``, loss-like and durations ``min``).

    Args:
        key: a summary field or a dotted config key.
        runs: the runs being sorted (those that have the key).

    Returns:
        ``max`` (descending), ``min`` (ascending), or None when nothing tells (ascending).
    """
    name = key
    if key == "best_value":  # its direction is that of the metric the runs monitored
        monitors = {r.fields.get("best_monitor") for r in runs} - {None}
        if len(monitors) == 1:
            name = monitors.pop()
    base = metric_names.base_name(name)
    if runs and all(r.directions for r in runs):
        recorded = {r.directions.get(base) for r in runs}
        if len(recorded) == 1 and None not in recorded:
            return metric_names.direction(name, {base: recorded.pop()})
    return metric_names.direction_by_name(name)


def _sort_value(value: Any) -> tuple:
    number = _as_number(value)
    return (0, number, "") if number is not None else (1, 0.0, _as_text(value))


# -- columns ----------------------------------------------------------------------------------

BASE_COLUMNS = ("run_id", "name", "kind", "dataset", "status", "started", "duration_s", "epochs", "params")


def main_metric(run: Run, prefix: str = "test_") -> str | None:
    """The test metric a run is judged by: accuracy for classifiers, MAE for regressors, else the loss.

    ``prefix="val_"`` picks the validation figure the same way (a k-fold run's mean over its folds).
    """
    tests = [k[len(prefix):] for k in run.fields if k.startswith(prefix) and not k.endswith("_std")]
    for name in ("accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                 "mae", "mean_absolute_error"):
        if name in tests:
            return name
    others = [t for t in tests if t not in ("loss", "rows")]  # test_rows is a count, not a metric
    if others:
        return others[0]
    return "loss" if "loss" in tests else None


def default_columns(runs: list[Run]) -> list[str]:
    """The columns that fit these runs: the basics, each main test metric, the best
    validation figure and its epoch, the baseline comparable to the main metric."""
    columns = list(BASE_COLUMNS)
    mains = list(dict.fromkeys(m for m in (main_metric(r) for r in runs) if m))
    columns += [f"test_{m}" for m in mains]
    monitors = list(dict.fromkeys(r.fields["best_monitor"] for r in runs if "best_monitor" in r.fields))
    if len(monitors) == 1:
        columns.append(f"best_{monitors[0]}")
    elif monitors:
        columns += ["best_monitor", "best_value"]
    if monitors:
        columns.append("best_epoch")
    columns += [f"baseline_{m}" for m in mains if any(f"baseline_{m}" in r.fields for r in runs)]
    if any("trial_params" in r.fields for r in runs):
        columns.append("trial_params")
    return columns


#: The columns kept, in this order, after the run id, its status, the test metrics, their
#: baselines and the best validation figure, while a terminal has room for them.
LATER_COLUMNS = ("kind", "best_epoch", "epochs", "name", "dataset", "started", "duration_s", "params", "trial_params")


def column_priority(columns: list[str]) -> list[int]:
    """The order in which a terminal too narrow for every column keeps them.

    Args:
        columns: the columns of the table, left to right.

    Returns:
        Their indices, the most wanted first: ``run_id``, ``status``, the test metrics,
        the baselines, the best validation figures, then :data:`LATER_COLUMNS`, then the rest.
    """
    def rank(column: str) -> tuple[int, int]:
        for position, wanted in enumerate((column == "run_id", column == "status", column.startswith("test_"),
                                           column.startswith("baseline_"),
                                           column.startswith("best_") and column != "best_epoch")):
            if wanted:
                return position, 0
        if column in LATER_COLUMNS:
            return 5, LATER_COLUMNS.index(column)
        return 6, 0

    return sorted(range(len(columns)), key=lambda i: (rank(columns[i]), i))


def all_columns(runs: list[Run]) -> list[str]:
    """Every field some run has (``--columns all``), basics first."""
    seen = dict.fromkeys(BASE_COLUMNS)
    for run in runs:
        seen.update(dict.fromkeys(run.fields))
    return list(seen)


def parse_columns(text: str | None, runs: list[Run]) -> list[str]:
    """``--columns a,b,c`` (or ``all``), checked against the runs; default :func:`default_columns`."""
    if not text:
        return default_columns(runs)
    if text.strip() == "all":
        return all_columns(runs)
    columns = [canonical_key(c) for c in text.split(",") if c.strip()]
    if not columns:
        raise NnlabError("give column names separated by commas, e.g. run_id,test_accuracy", source="--columns")
    check_keys(runs, columns, "--columns")
    return columns


def values(runs: list[Run], columns: list[str]) -> list[dict[str, Any]]:
    """One dict per run with the raw value of every column (None when missing).

    ``epochs_planned`` rides along with ``epochs`` so that the table can show ``3/10``.
    """
    fields = field_keys(runs)
    wanted = columns + ["epochs_planned"] if "epochs" in columns and "epochs_planned" not in columns else columns
    if all(c in fields for c in columns):  # the usual case, kept quick for thousands of runs
        return [{c: run.fields.get(c) for c in wanted} for run in runs]
    return [{c: run.fields.get(c) if c in fields else run.get(c) for c in wanted} for run in runs]


# -- rendering ---------------------------------------------------------------------------------

def cell(column: str, value: Any, row: dict[str, Any] | None = None) -> str:
    """A value as the table shows it: times trimmed, durations readable, numbers rounded."""
    if value is None:
        return "-"
    if type(value) is str and column not in ("started", "finished"):
        return value
    if column == "started" or column == "finished":
        return timestamp(value)
    if column == "duration_s" and _as_number(value) is not None:
        return duration(float(value))
    if column == "epochs" and row is not None and row.get("epochs_planned") not in (None, value):
        return f"{value}/{row['epochs_planned']}"
    if column == "trial_params" and isinstance(value, dict):
        return ", ".join(f"{k}={compact(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}" if column in ("params", "train_rows", "test_rows", "validation_rows") else str(value)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (dict, list)):
        return compact(value)
    return str(value)


def _numeric_column(rows: list[dict[str, Any]], column: str) -> bool:
    return column not in ("run_id", "started", "finished") and any(
        _as_number(r.get(column)) is not None and not isinstance(r.get(column), str) for r in rows)


def _console(out: TextIO):
    """A rich console on ``out``: the terminal's width, or one line per row however wide for a
    pipe or file (rich would fold to 80 columns)."""
    from rich.console import Console

    console = Console(file=out, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(file=out, highlight=False, width=100_000, no_color=True)
    return console


#: What each column of a compare table adds to its content: one space of padding each side
#: and a blank divider (box.SIMPLE_HEAD), or the two spaces of the directly written layout.
_GAP, _PLAIN_GAP = 3, 2


def render_table(rows: list[dict[str, Any]], columns: list[str], *, title: str | None = None,
                 out: TextIO | None = None, fit: bool = False, wrap: Iterable[str] = ()) -> list[str]:
    """A rich table (or, for many rows, the same layout written directly, which is 100x faster).

    A number is never cut: every column is as wide as its widest cell. A table wider than
    the terminal either loses columns (``fit``) or is printed wider than the terminal.

    Args:
        rows: one dict per run (:func:`values`).
        columns: the columns, left to right.
        title: a line above the table.
        out: where to write (default stdout).
        fit: on a terminal too narrow for every column, keep those that fit, the most
            wanted first (:func:`column_priority`); otherwise show every column.
        wrap: text columns that may wrap at spaces (never inside a word) to fit the terminal.

    Returns:
        The columns left out for want of room, the most wanted first (empty when all are shown).
    """
    out = out or sys.stdout
    console = _console(out)
    cells = [[cell(c, row.get(c), row) for c in columns] for row in rows]
    numeric = [_numeric_column(rows, c) for c in columns]
    widths, ascii_columns = _widths(columns, cells)
    plain = len(rows) > RICH_TABLE_ROWS
    gap = _PLAIN_GAP if plain else _GAP
    dropped: list[str] = []
    if fit and table_width(widths, gap, -gap) > console.width:
        order = column_priority(columns)
        keep = fit_columns(widths, console.width, gap=gap, edges=-gap, order=order)
        dropped = [columns[i] for i in order if i not in keep]
        columns, numeric, widths, ascii_columns = ([seq[i] for i in keep]
                                                   for seq in (columns, numeric, widths, ascii_columns))
        cells = [[row[i] for i in keep] for row in cells]
    if plain:
        _plain_table(columns, cells, numeric, widths, ascii_columns, out, title)
        return dropped
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    wrap = set(wrap)
    full = list(widths)
    if wrap and table_width(widths, gap, -gap) > console.width:
        widths = shrink_widths(widths, _shortest(columns, cells, wrap), console.width, gap=gap, edges=-gap)
    needed = table_width(widths, gap, -gap)
    if needed > console.width:
        # Columns asked for by name: lines wider than the terminal rather than cut numbers.
        console = Console(file=out, highlight=False, soft_wrap=False, width=needed)
    table = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for column, is_number, width, whole in zip(columns, numeric, widths, full):
        table.add_column(column, justify="right" if is_number else "left", no_wrap=width == whole,
                         width=None if width == whole else width, overflow="fold")
    status_at = columns.index("status") if "status" in columns else None
    for row in cells:
        texts = [Text(c) for c in row]
        if status_at is not None:
            texts[status_at].stylize(status_style(row[status_at]))
        table.add_row(*texts)
    console.print(table)
    return dropped


def _widths(columns: list[str], cells: list[list[str]]) -> tuple[list[int], list[bool]]:
    """Each column's width (header or widest cell), and whether it is all ASCII."""
    # Column by column: an all-ASCII column (the usual case) is measured by str methods.
    widths, ascii_columns = [], []
    for i, column in enumerate(columns):
        texts = [column] + [row[i] for row in cells]
        plain = all(t.isascii() and "\n" not in t for t in texts)
        ascii_columns.append(plain)
        widths.append(max(map(len, texts)) if plain else text_width(texts))
    return widths, ascii_columns


def _shortest(columns: list[str], cells: list[list[str]], wrap: set[str]) -> list[int]:
    """How narrow each column can get: a wrapping one to its longest word (or header), the rest not at all."""
    narrowest = []
    for i, column in enumerate(columns):
        texts = [row[i] for row in cells]
        if column in wrap:
            narrowest.append(text_width([column, *(word for t in texts for word in t.split())]))
        else:
            narrowest.append(text_width([column, *texts]))
    return narrowest


def dropped_note(dropped: list[str], width: int) -> str:
    """The note that says which columns a narrow terminal left out, and how to get them.

    Args:
        dropped: the columns left out, the most wanted first.
        width: the terminal's width: as many names are listed as keep the note on one line,
            or on two when one line would hold fewer than three.

    Returns:
        ``note: 4 more columns (epochs, params, ...): widen the terminal or pick them with --columns ...``
    """
    from rich.cells import cell_len

    count = f"{len(dropped)} more column{'s' if len(dropped) > 1 else ''}"
    advice = f"widen the terminal or pick them with --columns {','.join(['run_id', *dropped[:2]])}"
    lines = []
    for shown in range(len(dropped), 0, -1):
        names = ", ".join(dropped[:shown]) + (", ..." if shown < len(dropped) else "")
        lines.append((shown, f"note: {count} ({names}): {advice}"))
    for budget in (width, 2 * width - 10):  # a wrapped line loses a few cells at its word break
        for shown, line in lines:
            if cell_len(line) <= budget and (shown >= min(3, len(dropped)) or budget > width):
                return line
    return lines[-1][1]


def _plain_table(columns: list[str], cells: list[list[str]], numeric: list[bool], widths: list[int],
                 ascii_columns: list[bool], out: TextIO, title: str | None) -> None:
    from rich.cells import cell_len

    def line(parts: list[str]) -> str:
        padded = []
        for text, w, right, plain in zip(parts, widths, numeric, ascii_columns):
            if plain:
                padded.append(text.rjust(w) if right else text.ljust(w))
            else:
                gap = " " * (w - cell_len(text))
                padded.append(gap + text if right else text + gap)
        return "  ".join(padded).rstrip()

    lines = [title] if title else []
    lines += [line(columns), "  ".join("─" * w for w in widths)]
    lines += [line(row) for row in cells]
    out.write("\n".join(lines) + "\n")


def render_markdown(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    """A GitHub-flavoured Markdown table (numbers right-aligned)."""
    numeric = [_numeric_column(rows, c) for c in columns]
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(c, row.get(c), row).replace("|", "\\|").replace("\n", " ")
                                       for c in columns) + " |")
    out.write("\n".join(lines) + "\n")


def render_csv(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    """CSV with a header: raw values (seconds, full precision); nested values as JSON."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else
                         json.dumps(row[c], separators=(",", ":")) if isinstance(row[c], (dict, list)) else
                         _as_text(row[c]) if isinstance(row[c], bool) else row[c] for c in columns])


def render_json(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    """A JSON list of row objects with the given columns (NaN and infinities as null)."""
    from nnlab.runs.folder import to_json

    out.write(to_json([{c: row.get(c) for c in columns} for row in rows]))


# -- two runs side by side ----------------------------------------------------------------------------

def config_diff(a: Run, b: Run) -> list[tuple[str, Any, Any]]:
    """The dotted config keys whose values differ between two runs (a key only one has included).

    Returns:
        ``(key, value in a, value in b)``; a missing key's value is None.
    """
    ca, cb = a.config(), b.config()
    keys = list(dict.fromkeys([*ca, *cb]))
    return [(k, ca.get(k), cb.get(k)) for k in keys if ca.get(k) != cb.get(k) or (k in ca) != (k in cb)]


SIDE_BY_SIDE_FIRST = ("kind", "dataset", "task", "status", "started", "duration_s", "epochs", "params")


def metrics_side_by_side(a: Run, b: Run) -> list[tuple[str, Any, Any]]:
    """Status, size and every metric of two runs, key by key (train, val, test, best, baseline)."""
    keys = [k for k in SIDE_BY_SIDE_FIRST if k in a.fields or k in b.fields]
    # best_value repeats best_<monitor>; baseline_accuracy/mae/mse repeat the baseline's own names.
    repeats = {"best_value", *(f"baseline_{m}" for m in set(BASELINE_ALIASES.values()))}
    for prefix in ("train_", "val_", "test_", "best_", "baseline_", "k"):
        keys += sorted({k for k in [*a.fields, *b.fields] if k.startswith(prefix) and k not in keys
                        and not k.endswith("_rows") and k not in repeats})
    return [(k, a.fields.get(k), b.fields.get(k)) for k in keys]


def render_pair(a: Run, b: Run, fmt: str, out: TextIO) -> None:
    """Config differences, then metrics, of two runs (table or markdown)."""
    diff = config_diff(a, b)
    side = metrics_side_by_side(a, b)
    headers = ["key", a.run_id, b.run_id]
    diff_rows = [dict(zip(headers, (k, _show(va), _show(vb)))) for k, va, vb in diff]
    metric_rows = []
    for k, va, vb in side:
        delta = None
        na, nb = _as_number(va), _as_number(vb)
        if na is not None and nb is not None and not isinstance(va, str) and k not in ("best_epoch",):
            delta = vb - va if isinstance(va, int) and isinstance(vb, int) else nb - na
        metric_rows.append(dict(zip(headers + ["difference"], (k, cell(k, va), cell(k, vb),
                                                              "-" if delta is None else _signed(k, delta)))))
    if fmt == "markdown":
        out.write("\n**config differences**\n\n")
        if diff_rows:
            render_markdown(diff_rows, headers, out)
        else:
            out.write("(none)\n")
        out.write("\n**metrics**\n\n")
        render_markdown(metric_rows, headers + ["difference"], out)
        return
    values_of = headers[1:]
    narrowest = max(_narrowest_table(diff_rows, headers, values_of),
                    _narrowest_table(metric_rows, headers + ["difference"], values_of))
    if narrowest > _console(out).width:
        # Run ids as headers would push the tables past the terminal: letters stand for them.
        out.write(f"A: {a.run_id}\nB: {b.run_id}\n")
        letters = {a.run_id: "A", b.run_id: "B"}
        headers, values_of = ["key", "A", "B"], ["A", "B"]
        diff_rows = [{letters.get(k, k): v for k, v in row.items()} for row in diff_rows]
        metric_rows = [{letters.get(k, k): v for k, v in row.items()} for row in metric_rows]
    if diff_rows:
        render_table(diff_rows, headers, title="config differences", out=out, wrap=values_of)
    else:
        out.write("config differences: none (the same resolved config)\n")
    render_table(metric_rows, headers + ["difference"], title="metrics", out=out, wrap=values_of)


def _narrowest_table(rows: list[dict[str, Any]], columns: list[str], wrap: Iterable[str]) -> int:
    """The least width a table of these (already formatted) rows takes with its text wrapped."""
    if not rows:
        return 0
    cells = [[row.get(c) or "" for c in columns] for row in rows]
    return table_width(_shortest(columns, cells, set(wrap)), _GAP, -_GAP)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return compact(value)


def _signed(key: str, delta: float) -> str:
    text = duration(abs(delta)) if key == "duration_s" else (
        f"{abs(delta):,}" if isinstance(delta, int) else number(abs(delta)))
    return ("+" if delta >= 0 else "-") + text


# -- learning curves ------------------------------------------------------------------------------------

def check_plot_path(path: Path) -> None:
    """Refuse a ``--plot`` file that is not a PNG, before anything is listed."""
    if path.suffix.lower() != ".png":
        raise NnlabError("the figure is written as PNG: give a file name ending in .png", source=f"--plot {path}")


def _curve_label(run: Run, trial_keys: list[str]) -> str:
    """A sweep trial by its parameters (``units=8, learning_rate=0.01``), any other run by its id."""
    params = run.fields.get("trial_params")
    return params_label(params, trial_keys) if isinstance(params, dict) and params else run.run_id


def plot_curves(runs: list[Run], metric: str | None, path: Path, warn) -> tuple[Path, str]:
    """Overlay one history column of several runs in one PNG, labelled by run (a sweep trial by
    its parameters).

    Args:
        runs: the runs (the first MAX_CURVES are drawn).
        metric: a history column (``val_loss``, ``accuracy``...); default val_loss, else loss.
        path: the PNG file.
        warn: called with a one-line message for each run left out.

    Returns:
        The file written and the metric drawn.

    Raises:
        NnlabError: when no run has that column in its history.
    """
    check_plot_path(path)
    if len(runs) > MAX_CURVES:
        warn(f"drawing the first {MAX_CURVES} of {len(runs)} runs; narrow them with --filter, --last or --sort")
        runs = runs[:MAX_CURVES]
    wanted = None if metric is None else canonical_key(metric)
    histories = {run.run_id: read_history(run.path, wanted or "val_loss") for run in runs}
    available = sorted({c for h in histories.values() for c in h if c != "epoch"})
    metric = wanted or ("val_loss" if "val_loss" in available else "loss")
    trial_keys = [k for run in runs if isinstance(run.fields.get("trial_params"), dict)
                  for k in run.fields["trial_params"]]
    curves = []
    for run in runs:
        history = histories[run.run_id]
        if not history:
            warn(f"{run.run_id}: no {HISTORY}, left out of the figure")
            continue
        if metric not in history:
            warn(f"{run.run_id}: its history has no {metric}, left out of the figure")
            continue
        epochs = history.get("epoch") or list(range(1, len(history[metric]) + 1))
        curves.append((_curve_label(run, trial_keys), epochs, history[metric], run.run_id))
    labels = [c[0] for c in curves]
    # Trials of two sweeps can share their parameters: the run id tells them apart.
    curves = [(label if labels.count(label) == 1 else f"{label} ({run_id})", epochs, values)
              for label, epochs, values, run_id in curves]
    if not curves:
        from nnlab.suggestions import unknown_name_message

        raise NnlabError(unknown_name_message("history column", metric, available) if available else
                         f"none of these runs has a {HISTORY}", source=f"--metric {metric}")
    from nnlab.plots import overlaid_curves

    try:
        return overlaid_curves(curves, metric, path), metric
    except OSError as err:
        raise NnlabError(f"cannot write the figure: {err.strerror or err}", source=f"--plot {path}") from None


# -- groups of runs: mean ± std, intervals, and tests of a difference --------------------------------

#: Kinds of folders never grouped: a sweep folder restates its best trial, a run of its own.
UNGROUPED_KINDS = ("sweep",)
#: The columns each metric of a group table takes, after the group's keys and n.
METRIC_PARTS = ("mean ± std", "95% CI", "min", "max")


@dataclass
class Group:
    """The runs that share their ``--group-by`` values (and their kind).

    Args:
        kind: the runs' kind (train, kfold): never mixed in one group.
        values: the key values, in the order of the keys.
        runs: the runs, in the order listed.
        stats: per shown metric, :class:`nnlab.stats.Description` of the runs' values.
    """

    kind: str | None
    values: tuple
    runs: list[Run]
    stats: dict[str, Any]


@dataclass
class Versus:
    """One group compared with its reference group (``--versus``) on one metric."""

    group: Group
    reference: Group
    metric: str
    result: Any  # nnlab.stats.Difference
    pairing: str | None  # why the values were paired, or why k-fold groups were not
    sentence: str = ""


def parse_group_keys(text: str) -> list[str]:
    """``--group-by a,b``: the keys, each once, in order.

    Raises:
        NnlabError: when no key is given.
    """
    keys = list(dict.fromkeys(canonical_key(k) for k in text.split(",") if k.strip()))
    if not keys:
        raise NnlabError("give one or more keys separated by commas, e.g. model.layers.0.Dense.units or "
                         "optimizer.name,dataset", source="--group-by")
    return keys


def check_group_keys(runs: list[Run], keys: list[str], what: str = "--group-by") -> None:
    """:func:`check_keys`, with the closest dotted config key suggested for a misspelt one."""
    try:
        check_keys(runs, keys, what)
    except NnlabError as err:
        if "did you mean" in err.message:
            raise
        from nnlab.suggestions import closest_name

        config = next((r.config() for r in runs if r.readable and r.config()), {})
        for key in keys:
            if key in field_keys(runs) or key in BASE_COLUMNS or any(key in r.config() for r in runs):
                continue
            close = closest_name(key, config)
            if close is not None:
                raise NnlabError(f"unknown key '{key}'; did you mean '{close}'? (a field such as name, dataset, "
                                 "kind, sweep_id or group, or a dotted config key)", source=what) from None
        raise


def group_metrics(runs: list[Run], columns: str | None) -> list[str]:
    """The metrics a group table shows: ``--columns`` if given (``all``: every metric), else each
    run's main test metric (and, for k-fold runs, the main validation figure: their mean over the folds).

    Raises:
        NnlabError: for a key no run has, or one that is no number in any run.
    """
    if columns and columns.strip() == "all":  # every metric some run has
        return [k for k in all_columns(runs) if k.startswith(_SUMMARY_PREFIXES) and not k.endswith("_rows")
                and any(_metric_value(r, k) is not None for r in runs)]
    if columns:
        metrics = list(dict.fromkeys(canonical_key(c) for c in columns.split(",") if c.strip()))
        if not metrics:
            raise NnlabError("give metric names separated by commas, e.g. test_accuracy,test_loss",
                             source="--columns")
        check_keys(runs, metrics, "--columns")
        for metric in metrics:
            if not any(_metric_value(r, metric) is not None for r in runs):
                raise NnlabError(f"{metric} is not a number in any of these runs: with --group-by, --columns "
                                 "names the metrics to average (test_accuracy, val_loss, ...)", source="--columns")
        return metrics
    found = []
    for run in runs:
        test = main_metric(run)
        if test:
            found.append(f"test_{test}")
        if run.fields.get("kind") == "kfold" or not test:
            val = main_metric(run, "val_")
            if val:
                found.append(f"val_{val}")
    return list(dict.fromkeys(found))


def _metric_value(run: Run, metric: str) -> float | None:
    """A run's number for a metric (or a numeric config key); None when it has none."""
    if metric in run.fields:
        value = run.fields[metric]
    elif metric.startswith(_SUMMARY_PREFIXES) or metric in BASE_COLUMNS:
        value = None  # a metric the run lacks: its config.yaml is not read for it
    else:
        value = run.config().get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


#: Summary fields that never come from a config.
_SUMMARY_PREFIXES = ("train_", "val_", "test_", "best_", "baseline_")


def _group_value(value: Any) -> tuple:
    """What tells two runs' key values apart: numbers by value (16 is 16.0), the rest by their text."""
    return _sort_value(value)


def group_runs(runs: list[Run], keys: list[str], metrics: list[str], *,
               status_filtered: bool) -> tuple[list[Group], list[str]]:
    """The runs in groups by their key values and kind, each metric described.

    Args:
        runs: the runs listed (after --filter and --last), in order.
        keys: the ``--group-by`` keys.
        metrics: the metrics to describe.
        status_filtered: whether --filter chose the statuses (else only completed runs are grouped).

    Returns:
        The groups (by kind as first met, then key values in order) and notes on the runs left out.
    """
    from nnlab.stats import describe

    fields = field_keys(runs)
    notes = []
    unreadable = [r for r in runs if not r.readable]
    sweeps = [r for r in runs if r.readable and r.fields.get("kind") in UNGROUPED_KINDS]
    kept = [r for r in runs if r.readable and r.fields.get("kind") not in UNGROUPED_KINDS]
    if not status_filtered:
        others = [r for r in kept if r.fields.get("status") != Status.COMPLETED.value]
        kept = [r for r in kept if r.fields.get("status") == Status.COMPLETED.value]
        if others:
            counts = _counts(r.fields.get("status") for r in others)
            notes.append(f"{_runs(len(others))} not completed ({counts}) left out; --filter status=... groups "
                         "those instead")
    if sweeps:
        several = len(sweeps) > 1
        notes.append(f"{len(sweeps)} sweep folder{'s' if several else ''} left out: "
                     f"{'their' if several else 'its'} trials are runs of their own")
    if unreadable:
        notes.append(f"{_runs(len(unreadable))} unreadable or incomplete left out")
    buckets: dict[tuple, Group] = {}
    lacking: dict[str, int] = {}
    for run in kept:
        values = tuple(run.get(k, k not in fields) for k in keys)
        missing = [k for k, v in zip(keys, values) if v is None]
        if missing:
            lacking[missing[0]] = lacking.get(missing[0], 0) + 1
            continue
        ident = (run.fields.get("kind"), tuple(_group_value(v) for v in values))
        group = buckets.get(ident)
        if group is None:
            group = buckets[ident] = Group(run.fields.get("kind"), values, [], {})
        group.runs.append(run)
    for key, count in lacking.items():
        why = " (runs written before nnlab recorded it)" if key in ("group", "repeat") else ""
        notes.append(f"{_runs(count)} without {key}{why} left out")
    kinds = list(dict.fromkeys(g.kind for g in buckets.values()))
    groups = sorted(buckets.values(), key=lambda g: (kinds.index(g.kind), [_group_value(v) for v in g.values]))
    for group in groups:
        group.stats = {m: describe(_metric_value(r, m) for r in group.runs) for m in metrics}
    return groups, notes


def _runs(count: int) -> str:
    return f"{count} run{'s' if count != 1 else ''}"


def _counts(items: Iterable[Any]) -> str:
    counted: dict[str, int] = {}
    for item in items:
        counted[str(item)] = counted.get(str(item), 0) + 1
    return ", ".join(f"{k} {v}" for k, v in counted.items())


def split_by_kind(groups: list[Group], keys: list[str]) -> bool:
    """Whether the groups are of more than one kind (and ``kind`` is not a key): kind is then shown."""
    return "kind" not in keys and len({g.kind for g in groups}) > 1


def group_label(group: Group, keys: list[str], with_kind: bool = False) -> str:
    """``units=64`` (``units=64, name=digits``; ``units=64 (kfold)`` when kinds are shown)."""
    label = params_label(dict(zip(keys, group.values)), keys)
    return f"{label} ({group.kind})" if with_kind else label


def short_keys(keys: list[str]) -> list[str]:
    """Each key by its shortest ending that tells it from the others (``units``), as labels read."""
    return [params_label({key: ""}, keys)[:-1] for key in keys]


def sort_groups(groups: list[Group], sort: str, ascending: bool | None) -> list[Group]:
    """Groups by the mean of a metric or key over their runs (in its direction; groups without it last)."""
    key = canonical_key(sort)
    means = {}
    for group in groups:
        found = [v for v in (_metric_value(r, key) for r in group.runs) if v is not None]
        means[id(group)] = sum(found) / len(found) if found else None
    if ascending is None:
        ascending = default_direction(key, [r for g in groups for r in g.runs if _metric_value(r, key) is not None]) \
            != "max"
    present = [g for g in groups if means[id(g)] is not None]
    present.sort(key=lambda g: means[id(g)], reverse=not ascending)
    return present + [g for g in groups if means[id(g)] is None]


# -- --versus ------------------------------------------------------------------------------------------

def find_reference(groups: list[Group], keys: list[str], versus: str) -> list[Group]:
    """The groups whose key values are ``versus`` (one per kind): ``16``, ``units=16``, or for
    several keys their values in key order, separated by commas (``64,adam``).

    Raises:
        NnlabError: when no group has those values (the message lists the groups'), or the
            number of values is not the number of keys.
    """
    parts = [p.strip() for p in versus.split(",")] if len(keys) > 1 else [versus.strip()]
    if len(parts) != len(keys):
        raise NnlabError(f"give one value per --group-by key, separated by commas, in their order "
                         f"({','.join(keys)})", source=f"--versus {versus}")
    shorts = short_keys(keys)
    wanted = []
    for key, short, part in zip(keys, shorts, parts):
        name, eq, value = part.partition("=")
        wanted.append(value.strip() if eq and name.strip() in (key, short) else part)
    found = [g for g in groups if all(_same_value(v, w) for v, w in zip(g.values, wanted))]
    if not found:
        labels = list(dict.fromkeys(",".join(_as_text(v) for v in g.values) for g in groups))
        listing = ", ".join(labels[:30]) + (", ..." if len(labels) > 30 else "")
        raise NnlabError(f"no group has {','.join(keys)}={versus} (the groups are: {listing or 'none'})",
                         source=f"--versus {versus}")
    return found


def _same_value(value: Any, wanted: str) -> bool:
    have, want = _as_number(value), _as_number(wanted)
    if have is not None and want is not None and not isinstance(value, str):
        return have == want
    return _as_text(value) == wanted


def _fold_values(run: Run, metric: str) -> tuple[tuple, list[float]] | None:
    """A k-fold run's per-fold values of ``val_<name>`` and what fixes its folds (k, shuffle,
    the seed when shuffled, dataset, rows); None when it has no complete set."""
    if run.fields.get("kind") != "kfold" or not metric.startswith("val_"):
        return None
    from nnlab.runs.reading import read_kfold

    try:
        data = read_kfold(run.path)
    except NnlabError:
        return None
    if not data or not isinstance(data.get("folds"), list):
        return None
    folds, k = data["folds"], data.get("k")
    name = metric[len("val_"):]
    values = [f.get("validation", {}).get(name) if isinstance(f, dict) and isinstance(f.get("validation"), dict)
              else None for f in folds]
    if len(values) != k or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        return None
    shuffle = bool(data.get("shuffle"))
    # The folds are cut with kfold.split_seed (before it existed, with the run's seed).
    cut_seed = data.get("split_seed", data.get("seed"))
    cut = (k, shuffle, cut_seed if shuffle else None, run.fields.get("dataset"), run.fields.get("train_rows"))
    return cut, [float(v) for v in values]


def _describe_cut(cut: tuple) -> str:
    k, shuffle, seed = cut[:3]
    return f"k={k}, " + (f"shuffled with seed {seed}" if shuffle else "not shuffled")


def paired_folds(group: Group, reference: Group, metric: str) -> tuple[list[float], list[float], str] | None | str:
    """Per-fold values of two k-fold groups over the same folds, for a paired test.

    Every run of both must have cut its folds the same way (same k, shuffle, seed when
    shuffled, dataset and rows); each fold's value is then the mean over the group's runs.

    Returns:
        ``(group's values, reference's values, why they are paired)``; a reason text when
        both are k-fold groups whose folds differ; None when they are not both k-fold groups.
    """
    if group.kind != "kfold" or reference.kind != "kfold" or not metric.startswith("val_"):
        return None
    sets = {}
    for g in (group, reference):
        read = [_fold_values(r, metric) for r in g.runs]
        if not read or any(v is None for v in read):
            return f"not paired over folds: some runs have no complete per-fold {metric} in their kfold.json"
        sets[id(g)] = read
    cuts = {cut for g in (group, reference) for cut, _ in sets[id(g)]}
    if len(cuts) != 1:
        return "not paired over folds: the runs did not all cut the same folds (k, shuffle, seed or data differ)"
    cut = cuts.pop()

    def per_fold(g: Group) -> list[float]:
        runs = sets[id(g)]
        return [sum(values[i] for _, values in runs) / len(runs) for i in range(cut[0])]

    return per_fold(group), per_fold(reference), (f"paired t-test and Wilcoxon signed-rank: both are k-fold "
                                                  f"runs over the same folds ({_describe_cut(cut)})")


def compare_with_reference(groups: list[Group], keys: list[str], versus: str, metric: str,
                           direction: str | None) -> tuple[list[Versus], list[str]]:
    """Every group against the reference group of its kind, on ``metric``; p-values adjusted (Holm).

    Returns:
        The comparisons, in group order, each with its sentence; and notes (groups of a kind
        that has no reference group).
    """
    from nnlab.stats import ALPHA, difference, holm, repeats_needed

    references = find_reference(groups, keys, versus)
    by_kind = {g.kind: g for g in references}
    with_kind = split_by_kind(groups, keys)
    comparisons, notes = [], []
    for group in groups:
        if group in references:
            continue
        reference = by_kind.get(group.kind)
        if reference is None:
            notes.append(f"{group_label(group, keys, with_kind)}: no {group.kind} group has "
                         f"{','.join(keys)}={versus} to compare it with (kinds are compared only among themselves)")
            continue
        paired = paired_folds(group, reference, metric)
        if isinstance(paired, tuple):
            values, ref_values, pairing = paired
            result = difference(values, ref_values, paired=True)
        else:
            pairing = paired
            result = difference(group.stats[metric].values, reference.stats[metric].values)
        comparisons.append(Versus(group, reference, metric, result, pairing))
    for comparison, adjusted in zip(comparisons, holm(c.result.p_t for c in comparisons)):
        comparison.result.p_holm = adjusted
        r = comparison.result
        if r.p_t is not None and adjusted is not None and adjusted >= ALPHA and not r.paired:
            r.repeats_needed = repeats_needed(comparison.group.stats[metric].values,
                                              comparison.reference.stats[metric].values)
    tested = sum(1 for c in comparisons if c.result.p_t is not None)
    for comparison in comparisons:
        comparison.sentence = versus_sentence(comparison, keys, with_kind, direction, tested)
        if comparison.pairing:
            comparison.sentence += f"; {comparison.pairing}"
    return comparisons, notes


def _p(value: float | None) -> str:
    """A p-value as printed: three decimals (``0.002``), below 0.001 two significant digits (``9.7e-04``)."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def versus_sentence(comparison: Versus, keys: list[str], with_kind: bool, direction: str | None,
                    count: int) -> str:
    """The comparison in plain words.

    ``units=64 beats units=16: 0.0200 higher test_accuracy (95% CI 0.0110 to 0.0290; Welch p =
    0.0020, n = 5 and 5)``, or ``units=32 against units=16: no difference detectable at n = 3
    and 3 (...); about 12 repeats per group would detect a difference of this size``.
    """
    from nnlab.stats import ALPHA

    r, metric = comparison.result, comparison.metric
    name = group_label(comparison.group, keys, with_kind)
    ref = group_label(comparison.reference, keys, with_kind)
    if r.difference is None:
        return f"{name} against {ref}: {r.why}"
    sign = 1.0 if r.difference >= 0 else -1.0
    higher = "higher" if r.difference >= 0 else "lower"
    amount = f"{number(abs(r.difference))} {higher} {metric}" if r.difference else f"the same mean {metric}"
    if r.p_t is None:
        return f"{name} against {ref}: {amount}; no test: {r.why}"
    low, high = sorted((sign * r.ci_low, sign * r.ci_high)) if r.ci_low is not None else (None, None)
    interval = f"95% CI {number(low)} to {number(high)}"
    test = "paired t" if r.paired else "Welch"
    ps = f"{test} p = {_p(r.p_t)}" + (f", Holm p = {_p(r.p_holm)}" if count > 1 else "")
    detected = r.p_holm is not None and r.p_holm < ALPHA
    if not detected:
        sizes = f"over {r.n} shared folds" if r.paired else f"at n = {r.n} and {r.n_reference}"
        sentence = f"{name} against {ref}: no difference detectable {sizes} ({amount}, {interval}; {ps})"
        if r.repeats_needed is not None:
            more = "more than 1000" if r.repeats_needed > 1000 else f"about {r.repeats_needed}"
            sentence += f"; {more} repeats per group would detect a difference of this size (80% power)"
        return sentence
    if direction not in ("max", "min") or r.difference == 0:
        sizes = f"over {r.n} shared folds" if r.paired else f"n = {r.n} and {r.n_reference}"
        return (f"{name} against {ref}: {amount} ({interval}; {ps}, {sizes}); which is better cannot be told: "
                f"{metric} has no known direction")
    group_better = (r.difference > 0) == (direction == "max")
    if group_better:
        winner, loser, sizes = name, ref, f"n = {r.n} and {r.n_reference}"
    else:  # said from the winner's side: the reference is higher (or lower) by as much
        winner, loser, sizes = ref, name, f"n = {r.n_reference} and {r.n}"
        higher = "lower" if higher == "higher" else "higher"
        amount = f"{number(abs(r.difference))} {higher} {metric}"
    if r.paired:
        sizes = f"over {r.n} shared folds"
    return f"{winner} beats {loser}: {amount} ({interval}; {ps}, {sizes})"


# -- rendering a group table -----------------------------------------------------------------------------

def _ci(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{number(low)} to {number(high)}"


def group_cells(groups: list[Group], keys: list[str], metrics: list[str]) -> tuple[list[str], list[list[str]],
                                                                                    list[bool], list[list[int]], int]:
    """The text of a group table: headers, rows, right-aligned columns, the metric column
    groups (each metric's four columns) and how many columns lead (keys, kind, n)."""
    with_kind = split_by_kind(groups, keys)
    headers = short_keys(keys) + (["kind"] if with_kind else []) + ["n"]
    lead = len(headers)
    rows = []
    for group in groups:
        row = [_show(v) for v in group.values] + ([group.kind or "-"] if with_kind else [])
        row.append(str(len(group.runs)))
        for metric in metrics:
            d = group.stats[metric]
            mean = "-" if d.mean is None else f"{number(d.mean)} ± {number(d.std)}"
            row += [mean, _ci(d.ci_low, d.ci_high), number(d.min), number(d.max)]
        rows.append(row)
    right = [any(_as_number(v) is not None and not isinstance(v, str) for v in (g.values[i] for g in groups))
             for i in range(len(keys))] + ([False] if with_kind else []) + [True]
    parts = []
    for metric in metrics:
        parts.append(list(range(len(headers), len(headers) + len(METRIC_PARTS))))
        headers += [metric, "95% CI", "min", "max"]
        right += [True] * len(METRIC_PARTS)
    return headers, rows, right, parts, lead


def versus_cells(comparisons: list[Versus], keys: list[str], with_kind: bool) -> tuple[list[str], list[list[str]],
                                                                                        list[bool], int]:
    """The text of the --versus table: one row per group compared (n: its values; the reference's
    are in the title; a paired comparison's are the shared folds)."""
    headers = short_keys(keys) + (["kind"] if with_kind else []) + ["n", "diff", "95% CI", "t-test p", "rank p",
                                                                      "Holm p", "hedges g"]
    paired = any(c.result.paired for c in comparisons)
    if paired:
        headers.append("tests")
    lead = len(keys) + (1 if with_kind else 0)
    rows = []
    for c in comparisons:
        r = c.result
        row = [_show(v) for v in c.group.values] + ([c.group.kind or "-"] if with_kind else [])
        row += [str(r.n),
                "-" if r.difference is None else ("+" if r.difference >= 0 else "-") + number(abs(r.difference)),
                _ci(r.ci_low, r.ci_high), _p(r.p_t), _p(r.p_rank), _p(r.p_holm), _g(r.hedges_g)]
        if paired:
            row.append(f"paired t, Wilcoxon ({r.n} folds)" if r.paired else "Welch, Mann-Whitney")
        rows.append(row)
    right = [False] * lead + [True] * 7 + ([False] if paired else [])
    right[:len(keys)] = [all(_as_number(v) is not None and not isinstance(v, str) for v in (c.group.values[i]
                             for c in comparisons)) for i in range(len(keys))]
    return headers, rows, right, lead


def _text_table(headers: list[str], rows: list[list[str]], right: list[bool], out: TextIO,
                title: str | None = None) -> None:
    """A table of ready-made cells in compare's layout (box.SIMPLE_HEAD), as wide as it needs:
    a cell is never cut or wrapped (the caller splits a table too wide for the terminal)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = _console(out)
    widths = [text_width([h, *(row[i] for row in rows)]) for i, h in enumerate(headers)]
    needed = table_width(widths, _GAP, -_GAP)
    if title:
        console.print(Text(title), markup=False)
    if needed > console.width:
        console = Console(file=out, highlight=False, soft_wrap=False, width=needed)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for header, is_right in zip(headers, right):
        table.add_column(Text(header), justify="right" if is_right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(c) for c in row))
    console.print(table)


def _fitted_tables(headers: list[str], rows: list[list[str]], right: list[bool], parts: list[list[int]],
                   lead: int, out: TextIO, title: str) -> None:
    """A table split into several when the terminal is too narrow, each repeating the first
    ``lead`` columns and keeping each part (a metric's columns) together where it fits."""
    from nnlab.views.style import pack_columns

    width = _console(out).width
    widths = [text_width([h, *(row[i] for row in rows)]) for i, h in enumerate(headers)]
    fixed = list(range(lead))
    tables = pack_columns(parts, widths, width, gap=_GAP, edges=-_GAP, fixed=fixed) if parts else [[]]
    for n, columns in enumerate(tables):
        chosen = fixed + columns
        if n:
            out.write("\n")
        _text_table([headers[i] for i in chosen], [[row[i] for i in chosen] for row in rows],
                    [right[i] for i in chosen], out, title if n == 0 else None)


def _markdown_table(headers: list[str], rows: list[list[str]], right: list[bool], out: TextIO) -> None:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    out.write("\n".join(lines) + "\n")


def group_notes(groups: list[Group], keys: list[str], metrics: list[str]) -> list[str]:
    """What the table leaves unsaid: groups too small for a spread, metrics some runs lack, kinds kept apart."""
    notes = []
    with_kind = split_by_kind(groups, keys)
    if with_kind:
        kinds = ", ".join(dict.fromkeys(str(g.kind) for g in groups))
        notes.append(f"the groups split by kind too ({kinds}): runs of different kinds are never averaged together")
    for group in groups:
        reasons = list(dict.fromkeys(d.why for d in group.stats.values() if d.why and d.n > 0))
        for why in reasons:
            notes.append(f"{group_label(group, keys, with_kind)}: {why}")
    for metric in metrics:
        lacking = [(g, g.stats[metric].missing) for g in groups if g.stats[metric].missing]
        if lacking:
            total = sum(n for _, n in lacking)
            where = ", ".join(f"{group_label(g, keys, with_kind)}: {n}" for g, n in lacking)
            notes.append(f"{_runs(total)} without {metric} counted out of its figures ({where})")
    return notes


def group_json(groups: list[Group], keys: list[str], metrics: list[str],
               comparisons: list[Versus] | None) -> list[dict[str, Any]]:
    """A JSON-ready list: per group its key values, kind, n, runs and per metric mean, std,
    ci_low, ci_high, min, max, values (in run order); with --versus, ``versus`` too (None
    for a reference group)."""
    by_group = {id(c.group): c for c in comparisons or []}
    items = []
    for group in groups:
        item: dict[str, Any] = dict(zip(keys, group.values))
        item.setdefault("kind", group.kind)
        item["n"] = len(group.runs)
        item["runs"] = [r.run_id for r in group.runs]
        for metric in metrics:
            item[metric] = group.stats[metric].as_dict()
        if comparisons is not None:
            c = by_group.get(id(group))
            item["versus"] = None if c is None else {
                "reference": dict(zip(keys, c.reference.values)), "metric": c.metric, **c.result.as_dict(),
                "pairing": c.pairing, "says": c.sentence}
        items.append(item)
    return items


def group_csv(groups: list[Group], keys: list[str], metrics: list[str], comparisons: list[Versus] | None,
              out: TextIO) -> None:
    """CSV: one row per group, raw figures (``<metric>_mean``, ``_std``, ``_ci_low``, ...)."""
    parts = ("mean", "std", "ci_low", "ci_high", "min", "max", "n", "missing")
    header = keys + ([] if "kind" in keys else ["kind"]) + ["n"] + [f"{m}_{p}" for m in metrics for p in parts]
    versus = ("difference", "ci_low", "ci_high", "p_t", "p_rank", "p_holm", "hedges_g", "tests")
    if comparisons is not None:
        header += [f"versus_{p}" for p in versus]
    by_group = {id(c.group): c for c in comparisons or []}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for group in groups:
        row = [_csv_value(v) for v in group.values] + ([] if "kind" in keys else [group.kind]) + [len(group.runs)]
        for metric in metrics:
            d = group.stats[metric].as_dict()
            row += [_csv_value(d[p]) for p in parts]
        if comparisons is not None:
            c = by_group.get(id(group))
            r = c.result.as_dict() if c else {}
            row += [_csv_value(r.get(p)) for p in versus]
        writer.writerow(row)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return _as_text(value) if isinstance(value, bool) else value


def run_groups(runs: list[Run], *, keys: list[str], filters: list[Filter], columns: str | None,
               sort: str | None, ascending: bool | None, versus: str | None, metric: str | None, fmt: str,
               out: TextIO, err: TextIO) -> list[Group]:
    """``nnlab compare --group-by KEYS [--versus VALUE]``: the group table, then the comparisons.

    Args:
        runs: the runs listed (after --filter and --last), in order.
        keys: the --group-by keys; kind is always part of the grouping.
        filters: the --filter conditions (a status among them lets other statuses be grouped).
        columns: the metrics to show (default :func:`group_metrics`).
        sort, ascending: order the groups by the mean of this key.
        versus: the reference group's values; metric: the one compared (default the main test metric).
        fmt: table, markdown, csv or json.

    Returns:
        The groups.

    Raises:
        NnlabError: for an unknown key or metric, or a --versus value no group has.
    """
    check_group_keys(runs, keys)
    if sort:
        check_keys(runs, [canonical_key(sort)], "--sort")
    metrics = group_metrics(runs, columns)
    compared = None
    if versus is not None:
        compared = canonical_key(metric) if metric else (metrics[0] if metrics else None)
        if compared is None:
            raise NnlabError("these runs have no test or validation metric to compare; name one with --metric",
                             source=f"--versus {versus}")
        check_keys(runs, [compared], "--metric")
        if compared not in metrics:
            metrics.insert(0, compared)
    groups, left_out = group_runs(runs, keys, metrics, status_filtered=any(f.key == "status" for f in filters))
    if sort:
        groups = sort_groups(groups, sort, ascending)
    comparisons, versus_notes = None, []
    if compared is not None:
        direction = default_direction(compared, [r for g in groups for r in g.runs
                                                 if _metric_value(r, compared) is not None])
        comparisons, versus_notes = compare_with_reference(groups, keys, versus, compared, direction)
    notes = left_out + (group_notes(groups, keys, metrics) if groups else []) + versus_notes
    if fmt == "json":
        from nnlab.runs.folder import to_json

        out.write(to_json(group_json(groups, keys, metrics, comparisons)))
    elif fmt == "csv":
        group_csv(groups, keys, metrics, comparisons, out)
    if fmt in ("json", "csv"):
        for line in [*(f"note: {n}" for n in notes), *(c.sentence for c in comparisons or [])]:
            err.write(line + "\n")
        return groups
    if not groups:
        err.write("no runs to group" + (" (none match the filters)" if filters else "") + "\n")
        for note in left_out:
            err.write(f"note: {note}\n")
        return groups
    with_kind = split_by_kind(groups, keys)
    total = sum(len(g.runs) for g in groups)
    by = ", ".join(keys) + (" and kind" if with_kind else "")
    title = f"{len(groups)} group{'s' if len(groups) != 1 else ''} of {_runs(total)} by {by} (95% CI: Student t)"
    headers, rows, right, parts, lead = group_cells(groups, keys, metrics)
    if fmt == "markdown":
        out.write(f"**{title}**\n\n")
        _markdown_table(headers, rows, right, out)
    else:
        _fitted_tables(headers, rows, right, parts, lead, out, title)
    if comparisons:
        references = {id(c.reference): c.reference for c in comparisons}
        ref_text = ", ".join(f"{group_label(g, keys)} ({g.kind}, n = {g.stats[compared].n})" if with_kind else
                             f"{group_label(g, keys)} (n = {g.stats[compared].n})" for g in references.values())
        tests = "Welch's t-test and Mann-Whitney U" + (
            " (paired t-test and Wilcoxon signed-rank for k-fold runs over the same folds)"
            if any(c.result.paired for c in comparisons) else "")
        tested = sum(1 for c in comparisons if c.result.p_t is not None)
        vtitle = (f"{compared}: each group minus {ref_text}; {tests}, two-sided; Holm-adjusted over the "
                  f"{tested} comparison{'s' if tested != 1 else ''} tested")
        vheaders, vrows, vright, vlead = versus_cells(comparisons, keys, with_kind)
        if fmt == "markdown":
            out.write(f"\n**{vtitle}**\n\n")
            _markdown_table(vheaders, vrows, vright, out)
        else:
            out.write("\n")
            _fitted_tables(vheaders, vrows, vright, [[i] for i in range(vlead, len(vheaders))], vlead, out, vtitle)
    lines = [f"note: {n}" for n in notes] + [c.sentence for c in comparisons or []]
    if lines:
        out.write("\n")
        if fmt == "markdown":
            out.write("\n".join(f"- {line}" for line in lines) + "\n")
        else:
            from rich.text import Text

            console = _console(out)
            for line in lines:
                console.print(Text(line))
    return groups


# -- the command --------------------------------------------------------------------------------------

def _named_runs(paths: list[str]) -> bool:
    """Whether the arguments name two runs one by one (not runs roots to list)."""
    return len(paths) == 2 and not any(Path(p).is_dir() and not is_run_folder(Path(p)) for p in paths)


def unmatched_values(runs: list[Run], filters: Iterable[Filter]) -> list[str]:
    """A note for each ``KEY=TEXT`` filter that no run's text has, naming the closest value.

    Args:
        runs: every run listed before filtering.
        filters: the ``--filter`` conditions (numbers, wildcards and other operators are let be).

    Returns:
        One line per such filter: ``no run has dataset=bostn; did you mean boston_housing?``
    """
    from nnlab.suggestions import no_such_value_message

    fields = field_keys(runs)
    notes = []
    for f in filters:
        if f.op != "=" or _as_number(f.value) is not None or any(c in f.value for c in "*?["):
            continue
        known = {v for v in (r.get(f.key, f.key not in fields) for r in runs) if isinstance(v, str)}
        if known and f.value not in known:
            notes.append(no_such_value_message(f.key, f.value, known))
    return notes


def run_compare(paths: list[str], *, runs_dir: str | Path = "runs", sort: str | None = None,
                ascending: bool | None = None, filters: list[str] = (), last: int | None = None,
                columns: str | None = None, fmt: str = "table", plot: Path | None = None,
                metric: str | None = None, group_by: str | None = None, versus: str | None = None,
                out: TextIO | None = None, err: TextIO | None = None) -> list[Run]:
    """``nnlab compare``: collect, select, print, and draw (or, with ``group_by``, the groups).

    Args:
        paths: runs roots, run folders, run ids or prefixes (none: ``runs_dir``).
        runs_dir: the default runs root.
        sort, ascending, filters, last: see :func:`select`.
        columns: ``a,b,c`` or ``all`` (default: :func:`default_columns`).
        fmt: table, csv, json or markdown.
        plot: a PNG file for the overlaid learning curves of the listed runs.
        metric: the history column to draw; with ``versus``, the metric compared.
        group_by: ``KEY[,KEY...]``: one row per group of runs (:func:`run_groups`).
        versus: the values of the reference group the others are tested against.
        out, err: where rows and warnings go (default stdout, stderr).

    Returns:
        The runs listed, in order.

    Raises:
        NnlabError: for an unknown format, key, filter or path (exit code 2).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if fmt not in FORMATS:
        raise NnlabError(f"unknown format '{fmt}' (accepted: {', '.join(FORMATS)})", source="--format")
    if last is not None and last < 1:
        raise NnlabError("must be at least 1", source="--last")
    if plot is not None:
        check_plot_path(plot)
    if versus is not None and group_by is None:
        raise NnlabError("compares groups of runs: add --group-by KEY, e.g. --group-by model.layers.0.Dense.units "
                         "--versus 16", source=f"--versus {versus}")
    keys = parse_group_keys(group_by) if group_by is not None else None
    if keys is not None and plot is not None:
        raise NnlabError("mean curves of groups are not drawn yet: drop --group-by to overlay the runs' curves",
                         source=f"--plot {plot}")
    parsed = [Filter.parse(f) for f in filters]
    found: RunSet = collect(paths, runs_dir)
    if keys is not None:
        try:
            chosen = select(found.runs, filters=parsed, last=last)
            run_groups(chosen, keys=keys, filters=parsed, columns=columns, sort=sort, ascending=ascending,
                       versus=versus, metric=metric, fmt=fmt, out=out, err=err)
            warnings = [f"{r.run_id}: {r.warning}" for r in chosen if r.warning]
            for line in warnings[:MAX_WARNINGS]:
                err.write(f"warning: {line}\n")
            if len(warnings) > MAX_WARNINGS:
                err.write(f"warning: ... and {len(warnings) - MAX_WARNINGS} more\n")
        finally:
            found.save()
        return chosen
    try:
        chosen = select(found.runs, filters=parsed, last=last, sort=sort, ascending=ascending)
        cols = parse_columns(columns, chosen)
        rows = values(chosen, cols)
        warnings = [f"{r.run_id}: {r.warning}" for r in chosen if r.warning]
        fields = field_keys(found.runs)
        config_needed = [c for c in cols + [f.key for f in parsed] + ([canonical_key(sort)] if sort else [])
                         if c not in fields]
        if config_needed:
            warnings += [f"{r.run_id}: no readable config.yaml, so its config keys are blank"
                         for r in chosen if r.readable and not r.config()]
        pair = [r for r in chosen if r.readable]
        # Two runs are shown side by side too, unless --columns asked for a table of runs that
        # --filter or --last happened to leave two of.
        side_by_side = len(pair) == 2 and len(chosen) == 2 and (columns is None or _named_runs(paths))
        if not chosen:
            for note in unmatched_values(found.runs, parsed):
                err.write(f"note: {note}\n")
        if fmt == "csv":
            render_csv(rows, cols, out)
        elif fmt == "json":
            render_json(rows, cols, out)
        elif fmt == "markdown":
            render_markdown(rows, cols, out)
            if side_by_side:
                render_pair(pair[0], pair[1], fmt, out)
        else:
            if rows:
                dropped = render_table(rows, cols, out=out, fit=columns is None)
                if dropped:
                    out.flush()
                    notes = _console(err)
                    notes.print(dropped_note(dropped, notes.width), markup=False)
                if side_by_side:
                    render_pair(pair[0], pair[1], fmt, out)
            else:
                err.write("no runs to list" + (" (none match the filters)" if parsed else "") + "\n")
        if plot is not None:
            written, drawn = plot_curves(chosen, metric, plot, lambda m: warnings.append(m))
            (err if fmt in ("csv", "json") else out).write(f"{drawn} curves: {written}\n")
        for line in warnings[:MAX_WARNINGS]:
            err.write(f"warning: {line}\n")
        if len(warnings) > MAX_WARNINGS:
            err.write(f"warning: ... and {len(warnings) - MAX_WARNINGS} more\n")
    finally:
        found.save()
    return chosen

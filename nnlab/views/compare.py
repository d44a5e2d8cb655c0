"""``nnlab compare``: many runs as one table; two runs side by side; their curves overlaid.

Rows come from :mod:`nnlab.store.reading` (metrics.json summaries, cached in an index);
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
from nnlab.store.format import HISTORY
from nnlab.store.reading import (BASELINE_ALIASES, Run, canonical_key, is_run_folder,
                                read_history)
from nnlab.store.tags import FIELD_PREFIX as TAG_PREFIX
from nnlab.views.style import (compact, duration, fit_columns, number, params_label, shrink_widths, status_style,
                               table_width, text_width, timestamp)

FORMATS = ("table", "csv", "json", "markdown", "latex")
#: Formats meant for another program (or a paper): notes and file paths go to stderr, so stdout is only the data.
DATA_FORMATS = ("csv", "json", "latex")
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
    A run's tags are keys like any other (``tag.lesson=4``: :mod:`nnlab.store.tags`); their
    values are text, compared as numbers when both sides read as numbers.
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
        want_number, have_number = as_number(self.value), as_number(actual)
        if want_number is not None and have_number is not None:
            a, b = have_number, want_number
        else:
            a, b = as_text(actual), self.value
            if self.op in ("=", "!="):
                same = fnmatch.fnmatchcase(a, b) if any(c in b for c in "*?[") else a == b
                return same if self.op == "=" else not same
        return {"=": a == b, "!=": a != b, ">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[self.op]


def as_number(value: Any) -> float | None:
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


def as_text(value: Any) -> str:
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
        if key.startswith(TAG_PREFIX):  # the user's own tags: no config key is named like them
            from nnlab.suggestions import closest_name

            tags = sorted({k for r in runs for k in r.fields if k.startswith(TAG_PREFIX)})
            close = closest_name(key, tags)
            hint = f"; did you mean '{close}'?" if close else ""
            there = f" (tags: {', '.join(tags[:30])})" if tags else " (no run has tags yet)"
            raise NnlabError(f"no run has the tag '{key[len(TAG_PREFIX):]}'{hint}{there}; tag runs with "
                             "nnlab tag RUN KEY=VALUE", source=what)
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
        present.sort(key=lambda r: sort_value(r.get(key, in_config)), reverse=not ascending)
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


def sort_value(value: Any) -> tuple:
    number = as_number(value)
    return (0, number, "") if number is not None else (1, 0.0, as_text(value))


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
    if any("tags" in r.fields for r in runs):  # the user's tags (nnlab tag); the note is --columns note
        columns.append("tags")
    return columns


#: The columns kept, in this order, after the run id, its status, the test metrics, their
#: baselines and the best validation figure, while a terminal has room for them.
LATER_COLUMNS = ("kind", "best_epoch", "epochs", "name", "dataset", "started", "duration_s", "params", "trial_params",
                 "tags")


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
    if column == "duration_s" and as_number(value) is not None:
        return duration(float(value))
    if column == "epochs" and row is not None and row.get("epochs_planned") not in (None, value):
        return f"{value}/{row['epochs_planned']}"
    if column in ("trial_params", "tags") and isinstance(value, dict):
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
        as_number(r.get(column)) is not None and not isinstance(r.get(column), str) for r in rows)


def console_for(out: TextIO):
    """A rich console on ``out``: the terminal's width, or one line per row however wide for a
    pipe or file (rich would fold to 80 columns)."""
    from rich.console import Console

    console = Console(file=out, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(file=out, highlight=False, width=100_000, no_color=True)
    return console


#: What each column of a compare table adds to its content: one space of padding each side
#: and a blank divider (box.SIMPLE_HEAD), or the two spaces of the directly written layout.
#: Spaces between columns: of a rich table's cells (padding and rule), and of the plain layout.
COLUMN_GAP, PLAIN_COLUMN_GAP = 3, 2


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
    console = console_for(out)
    cells = [[cell(c, row.get(c), row) for c in columns] for row in rows]
    numeric = [_numeric_column(rows, c) for c in columns]
    widths, ascii_columns = _widths(columns, cells)
    plain = len(rows) > RICH_TABLE_ROWS
    gap = PLAIN_COLUMN_GAP if plain else COLUMN_GAP
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


def render_latex(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    """A booktabs LaTeX ``tabular`` of the cells the table shows (numbers right-aligned)."""
    from nnlab.views.tables import latex_table

    cells = [[cell(c, row.get(c), row).replace("\n", " ") for c in columns] for row in rows]
    latex_table(columns, cells, [_numeric_column(rows, c) for c in columns], out)


def render_csv(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    """CSV with a header: raw values (seconds, full precision); nested values as JSON."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else
                         json.dumps(row[c], separators=(",", ":")) if isinstance(row[c], (dict, list)) else
                         as_text(row[c]) if isinstance(row[c], bool) else row[c] for c in columns])


def render_json(rows: list[dict[str, Any]], columns: list[str], out: TextIO) -> None:
    """A JSON list of row objects with the given columns (NaN and infinities as null)."""
    from nnlab.store.folder import to_json

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
    diff_rows = [dict(zip(headers, (k, show_value(va), show_value(vb)))) for k, va, vb in diff]
    metric_rows = []
    for k, va, vb in side:
        delta = None
        na, nb = as_number(va), as_number(vb)
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
    if narrowest > console_for(out).width:
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
    return table_width(_shortest(columns, cells, set(wrap)), COLUMN_GAP, -COLUMN_GAP)


def show_value(value: Any) -> str:
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
        if f.op != "=" or as_number(f.value) is not None or any(c in f.value for c in "*?["):
            continue
        known = {v for v in (r.get(f.key, f.key not in fields) for r in runs) if isinstance(v, str)}
        if known and f.value not in known:
            notes.append(no_such_value_message(f.key, f.value, known))
    return notes


def check_options(*, fmt: str, last: int | None, plot: Path | None) -> None:
    """Refuse a format, a --last or a --plot file compare cannot use, before any run is read.

    Raises:
        NnlabError: naming the option (exit code 2).
    """
    if fmt not in FORMATS:
        raise NnlabError(f"unknown format '{fmt}' (accepted: {', '.join(FORMATS)})", source="--format")
    if last is not None and last < 1:
        raise NnlabError("must be at least 1", source="--last")
    if plot is not None:
        check_plot_path(plot)


def run_compare(paths: list[str], *, runs_dir: str | Path = "runs", sort: str | None = None,
                ascending: bool | None = None, filters: list[str] = (), last: int | None = None,
                columns: str | None = None, fmt: str = "table", plot: Path | None = None,
                metric: str | None = None, versus: str | None = None,
                out: TextIO | None = None, err: TextIO | None = None) -> list[Run]:
    """``nnlab compare``: collect, select, print, and draw (groups: :mod:`nnlab.views.groups`).

    Args:
        paths: runs roots, run folders, run ids or prefixes (none: ``runs_dir``).
        runs_dir: the default runs root.
        sort, ascending, filters, last: see :func:`select`.
        columns: ``a,b,c`` or ``all`` (default: :func:`default_columns`).
        fmt: table, csv, json or markdown.
        plot: a PNG file for the overlaid learning curves of the listed runs.
        metric: the history column to draw.
        versus: refused here: it compares groups (``--group-by``, :mod:`nnlab.views.groups`).
        out, err: where rows and warnings go (default stdout, stderr).

    Returns:
        The runs listed, in order.

    Raises:
        NnlabError: for an unknown format, key, filter or path (exit code 2).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    check_options(fmt=fmt, last=last, plot=plot)
    if versus is not None:
        raise NnlabError("compares groups of runs: add --group-by KEY, e.g. --group-by model.layers.0.Dense.units "
                         "--versus 16", source=f"--versus {versus}")
    from nnlab.views.listing import list_runs  # the runs and their rows, as nnlab.runs() gets them

    listing = list_runs(paths, runs_dir=runs_dir, filters=filters, last=last, sort=sort, ascending=ascending,
                        columns=columns)
    chosen, cols, rows, warnings = listing.runs, listing.columns, listing.rows, listing.warnings
    pair = [r for r in chosen if r.readable]
    # Two runs are shown side by side too, unless --columns asked for a table of runs that
    # --filter or --last happened to leave two of.
    side_by_side = len(pair) == 2 and len(chosen) == 2 and (columns is None or _named_runs(paths))
    for note in listing.notes:
        err.write(f"note: {note}\n")
    if fmt == "csv":
        render_csv(rows, cols, out)
    elif fmt == "json":
        render_json(rows, cols, out)
    elif fmt == "latex":
        render_latex(rows, cols, out)
    elif fmt == "markdown":
        render_markdown(rows, cols, out)
        if side_by_side:
            render_pair(pair[0], pair[1], fmt, out)
    else:
        if rows:
            dropped = render_table(rows, cols, out=out, fit=columns is None)
            if dropped:
                out.flush()
                notes = console_for(err)
                notes.print(dropped_note(dropped, notes.width), markup=False)
            if side_by_side:
                render_pair(pair[0], pair[1], fmt, out)
        else:
            err.write("no runs to list" + (" (none match the filters)" if filters else "") + "\n")
    if plot is not None:
        written, drawn = plot_curves(chosen, metric, plot, lambda m: warnings.append(m))
        (err if fmt in DATA_FORMATS else out).write(f"{drawn} curves: {written}\n")
    write_warnings(warnings, err)
    return chosen


def write_warnings(warnings: list[str], err: TextIO) -> None:
    """The listing's warnings, one line each, the first :data:`MAX_WARNINGS` of them and a count of the rest."""
    for line in warnings[:MAX_WARNINGS]:
        err.write(f"warning: {line}\n")
    if len(warnings) > MAX_WARNINGS:
        err.write(f"warning: ... and {len(warnings) - MAX_WARNINGS} more\n")

"""``nnlab show RUN``: one run's summary, from the files in its folder.

Its tags and note, the resolved config, the model summary, the final metrics beside the baseline,
a condensed per-epoch table and the paths of the plots. Works on train, k-fold
and sweep folders, and on incomplete ones (it shows what is there and says what
is missing). Imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnlab.errors import NnlabError
from nnlab.store.format import CONFIG, HISTORY, PLOTS, SUMMARY, SWEEP, SWEEP_SUMMARY, Status
from nnlab.store.liveness import lost_reason
from nnlab.store.reading import lost_warning, read_history, read_kfold, read_metrics, read_text_file, resolve_run
from nnlab.store.tags import read_tags
from nnlab.views.summaries import metrics_table
from nnlab.views.style import duration, number, pack_columns, status_style, text_width, timestamp

#: The per-epoch table shows about this many epochs (first, last, best, and evenly spaced between).
EPOCH_ROWS = 12
#: The per-class table shows every class up to this many, else the WORST_CLASSES lowest by F1.
PER_CLASS_ROWS, WORST_CLASSES = 15, 5
#: What each column of a boxed rich table adds to its content (padding and border), and the
#: table once (its left border): tables wider than the terminal are split (see _print_split).
_GAP, _EDGES = 3, 1


def condensed_epochs(count: int, best: int | None = None, rows: int = EPOCH_ROWS) -> list[int]:
    """Which epochs (0-based positions) a condensed per-epoch table shows.

    Args:
        count: epochs in the history.
        best: the best epoch's position, always shown.
        rows: about how many to show.

    Returns:
        Sorted positions: all of them when there are few, else the first three,
        the last three, the best, and evenly spaced ones between.
    """
    if count <= rows:
        return list(range(count))
    picks = {0, 1, 2, count - 3, count - 2, count - 1}
    step = (count - 1) / max(rows - 6, 1)
    picks.update(int(round(i * step)) for i in range(rows - 6))
    if best is not None and 0 <= best < count:
        picks.add(best)
    return sorted(picks)


def show_run(arg: str, runs_dir: str | Path = "runs", console: Console | None = None) -> Path:
    """Print the summary of the run ``arg`` names.

    Args:
        arg: a run folder, run id, unique prefix of one, or ``last``.
        runs_dir: where run ids are looked up.
        console: where to print (default stdout).

    Returns:
        The run folder.

    Raises:
        RunNotFound: when ``arg`` names no run (exit code 2).
    """
    console = console or Console(highlight=False)
    folder = resolve_run(arg, runs_dir)
    try:
        metrics = read_metrics(folder)
        problem = None
    except NnlabError as err:
        metrics, problem = {}, err.message
    _header(console, folder, metrics, problem)
    _text_section(console, "config (resolved)", folder, CONFIG)
    if metrics.get("kind") != "sweep":  # a sweep's models are in its trials' folders
        _text_section(console, "model", folder, SUMMARY)
    _metrics_section(console, metrics)
    _diagnostics_section(console, metrics)
    _kfold_section(console, folder)
    _sweep_section(console, folder)
    _epochs_section(console, folder, metrics)
    _plots_section(console, folder, metrics)
    return folder


def _header(console: Console, folder: Path, metrics: dict[str, Any], problem: str | None) -> None:
    status = Status.UNREADABLE if problem else Status.of(metrics.get("status"))
    lost = lost_reason(metrics)
    if lost is not None:
        status, problem = Status.LOST, lost_warning(metrics, _relative(folder), lost)
    style = status_style(status)
    console.rule(f"[bold]{folder.name}[/]")
    facts = [f"[{style}]{status}[/]"]
    for label, key in (("kind", "kind"), ("dataset", "dataset"), ("task", "task")):
        if metrics.get(key):
            facts.append(f"{label} {metrics[key]}")
    console.print("  ".join(facts))
    facts = []
    if metrics.get("started"):
        facts.append("started " + timestamp(metrics["started"]))
    if isinstance(metrics.get("wall_time_s"), (int, float)):
        facts.append("took " + duration(float(metrics["wall_time_s"])))
    if metrics.get("epochs_run") is not None:
        planned = metrics.get("epochs_planned")
        facts.append(f"{metrics['epochs_run']}" + (f" of {planned}" if planned else "") + " epochs")
    if isinstance(metrics.get("params"), int):
        facts.append(f"{metrics['params']:,} parameters")
    if metrics.get("sweep_id"):
        facts.append(f"trial {metrics.get('trial')} of sweep {metrics['sweep_id']}")
    # Lines of words wrap at spaces (a terminal would break them inside a word); paths do not wrap.
    if facts:
        console.print(", ".join(facts))
    if isinstance(metrics.get("trial_params"), dict):
        console.print("trial parameters: " + ", ".join(f"{k}={json.dumps(v)}"
                                                       for k, v in metrics["trial_params"].items()),
                      markup=False)
    if metrics.get("message"):
        console.print(f"[{style}]{escape(str(metrics['message']))}[/]", markup=True)
    if problem:
        console.print(f"[yellow]warning:[/] {problem}")
    _tags_lines(console, folder)
    console.print(f"folder: {_relative(folder)}", soft_wrap=True)


def _tags_lines(console: Console, folder: Path) -> None:
    """The user's tags and note (tags.json: nnlab tag, nnlab note), and what is wrong with that file."""
    tags, note, problem = read_tags(folder)
    if tags:
        console.print("tags: " + ", ".join(f"{k}={v}" for k, v in tags.items()), markup=False)
    if note:
        lines = note.splitlines()
        console.print("note: " + "\n      ".join(lines), markup=False)
    if problem:
        console.print(f"[yellow]warning:[/] {escape(problem)}")


def _text_section(console: Console, title: str, folder: Path, name: str) -> None:
    console.rule(title, align="left")
    try:
        text = read_text_file(folder, name)
    except NnlabError as err:
        console.print(f"[yellow]{escape(err.message)}[/]")
        return
    if text is None:
        console.print(f"[yellow]no {name}[/]")
    else:
        console.print(text.rstrip(), markup=False, highlight=False, soft_wrap=True)


def _metrics_section(console: Console, metrics: dict[str, Any]) -> None:
    table = metrics_table(metrics, number)
    if table is None and not metrics.get("baseline"):
        return
    console.rule("final metrics", align="left")
    if table is not None:
        console.print(table)
    best = metrics.get("best")
    if isinstance(best, dict) and best.get("epoch") is not None:
        console.print(f"best {best.get('monitor')}: {number(best.get('value'))} at epoch {best['epoch']}")
    baseline = metrics.get("baseline")
    if isinstance(baseline, dict):
        figures = ", ".join(f"{k} {number(v)}" for k, v in baseline.items() if k != "name")
        console.print(f"baseline ({baseline.get('name', 'trivial')}): {figures}")


def _diagnostics_section(console: Console, metrics: dict[str, Any]) -> None:
    """A classifier's test set class by class (metrics.json ``per_class``: all classes up to
    PER_CLASS_ROWS, else the worst by F1), its most confused pairs, and a binary one's ROC AUC."""
    rows = [r for r in metrics.get("per_class") or [] if isinstance(r, dict)]
    pairs = [p for p in metrics.get("confused_pairs") or [] if isinstance(p, dict)]
    auc = metrics.get("roc_auc")
    error = metrics.get("diagnostics_error")
    if not (rows or pairs or auc is not None or error):
        return
    console.rule("per class (test)" if rows else "test diagnostics", align="left")
    if rows:
        shown = rows
        if len(rows) > PER_CLASS_ROWS:
            f1 = [r.get("f1") if isinstance(r.get("f1"), (int, float)) else math.inf for r in rows]
            worst = sorted(range(len(rows)), key=lambda i: f1[i])[:WORST_CLASSES]
            shown = [rows[i] for i in worst]
        table = Table(header_style="bold")
        table.add_column("class", justify="left", no_wrap=True)
        for header in ("precision", "recall", "f1", "support"):
            table.add_column(header, justify="right", no_wrap=True)
        for row in shown:
            figures = (number(row.get(key)) for key in ("precision", "recall", "f1", "support"))
            table.add_row(escape(str(row.get("class", "?"))), *figures)
        console.print(table)
        if len(shown) < len(rows):
            console.print(f"the {len(shown)} classes of {len(rows)} with the lowest F1 (every class: per_class "
                          "in metrics.json)")
    if pairs:
        console.print("most confused (true → predicted):")
        for p in pairs:
            share = p.get("share")
            part = f" ({100 * share:.0f}% of {p.get('true')})" if isinstance(share, (int, float)) else ""
            console.print(f"  {p.get('true')} → {p.get('predicted')}: {p.get('count')}×{part}", markup=False)
    elif rows and isinstance(metrics.get("confused_pairs"), list):
        console.print("no test example was misclassified")
    if isinstance(auc, (int, float)):
        console.print(f"ROC AUC (test): {number(auc)}")
    if error:
        console.print(f"[yellow]diagnostics not made: {escape(str(error))}[/]")


def _kfold_section(console: Console, folder: Path) -> None:
    """kfold.json: each fold's final validation metrics, their mean and std, and the best epoch."""
    try:
        data = read_kfold(folder)
    except NnlabError as err:
        console.print(f"[yellow]warning:[/] {escape(err.message)}")
        return
    if data is None:
        return
    console.rule(f"k-fold validation (k={data.get('k', '?')})", align="left")
    folds = [f for f in data.get("folds") or [] if isinstance(f, dict)]
    spread = {label: data[label] for label in ("mean", "std") if isinstance(data.get(label), dict)}
    names = list(dict.fromkeys([*(n for f in folds if isinstance(f.get("validation"), dict) for n in f["validation"]),
                                *(n for values in spread.values() for n in values)]))
    if names:
        headers = ["fold", "epochs", *(f"val_{n}" for n in names)]
        rows, sections = [], []
        for i, fold in enumerate(folds):
            validation = fold.get("validation") if isinstance(fold.get("validation"), dict) else {}
            rows.append([str(fold.get("fold", i + 1)), number(fold.get("epochs_run")),
                         *(number(validation.get(n)) for n in names)])
            sections.append(i == len(folds) - 1)
        for label, values in spread.items():
            rows.append([label, "", *(number(values.get(n)) for n in names)])
            sections.append(False)
        _print_split(console, headers, rows, [[i] for i in range(1, len(headers))], end_section=sections)
    best = data.get("best") if isinstance(data.get("best"), dict) else {}
    if best.get("epoch") is not None:
        monitor = best.get("monitor") or data.get("monitor") or "the monitored metric"
        value = best.get("value")
        console.print(f"best epoch by mean {monitor}: {best['epoch']}"
                      + (f" ({number(value)})" if value is not None else ""))


def _sweep_section(console: Console, folder: Path) -> None:
    if not (folder / SWEEP).is_file():
        return
    console.rule("sweep trials", align="left")
    try:
        text = read_text_file(folder, SWEEP_SUMMARY)
    except NnlabError as err:
        console.print(f"[yellow]{escape(err.message)}[/]")
        return
    if text is None:
        console.print(f"[yellow]no {SWEEP_SUMMARY} yet (the sweep is running, or stopped)[/]")
    else:
        console.print(text.rstrip(), markup=False, soft_wrap=True)


def _epochs_section(console: Console, folder: Path, metrics: dict[str, Any]) -> None:
    """The condensed per-epoch table (a k-fold run's: the mean over its folds), split to fit."""
    history = read_history(folder, prefer_mean=metrics.get("kind") == "kfold")
    count = max((len(v) for v in history.values()), default=0)
    if not count:
        if metrics.get("kind") in (None, "train"):
            console.rule("per epoch", align="left")
            console.print(f"[yellow]no {HISTORY} (no epoch finished)[/]")
        return
    best = metrics.get("best") if isinstance(metrics.get("best"), dict) else {}
    best_at = best.get("epoch")
    epochs = history.get("epoch") or list(range(1, count + 1))
    best_pos = next((i for i, e in enumerate(epochs) if best_at is not None and int(e) == int(best_at)), None)
    shown = condensed_epochs(count, best_pos)
    console.rule(f"per epoch ({len(shown)} of {count} shown)" if len(shown) < count else "per epoch",
                 align="left")
    headers, columns, groups, folds = _epoch_columns(history, shown, best.get("monitor"),
                                                     kfold=metrics.get("kind") == "kfold")
    if folds is not None:
        console.print(f"each figure: the mean ± std over the {folds or ''} folds".replace("  ", " "))
    rows, styles, previous = [], [], -1
    for n, pos in enumerate(shown):
        if pos != previous + 1:
            rows.append(["…", *("" for _ in columns)])
            styles.append(None)
        marker = " *" if pos == best_pos else ""
        epoch = epochs[pos]
        label = str(int(epoch)) if isinstance(epoch, float) and not math.isnan(epoch) else str(epoch)
        rows.append([label + marker, *(cells[n] for cells in columns)])
        styles.append("bold" if marker else None)
        previous = pos
    _print_split(console, ["epoch", *headers], rows, [[1 + i for i in g] for g in groups], styles=styles)
    if best_pos is not None:
        console.print(f"* best epoch by {best.get('monitor')}")


def _epoch_columns(history: dict[str, list[float]], shown: list[int], monitor: Any, *,
                   kfold: bool = False) -> tuple[list[str], list[list[str]], list[list[int]], int | None]:
    """The per-epoch table's columns: headers, the cells of the epochs shown, and groups.

    A metric and its validation figure form a group (``loss``, ``val_loss``), the monitored
    metric's group first. A k-fold mean history (``kfold``: ``loss_mean``, ``loss_std``, ...)
    gives one column per metric, ``mean ± std``; its ``folds`` column is shown only when it
    varies (some folds stopped early).

    Returns:
        ``(headers, cells per column, groups of column indices, folds)``: ``folds`` is how many
        folds a k-fold mean is over (0 when it does not say, None for a plain history).
    """
    def at(column: str, pos: int) -> Any:
        values = history.get(column) or []
        return values[pos] if pos < len(values) else None

    means = [c[: -len("_mean")] for c in history if c.endswith("_mean")] if kfold else []
    headers, columns = [], []
    folds = None
    if means:
        for name in means:
            cells = []
            for pos in shown:
                mean, std = at(f"{name}_mean", pos), at(f"{name}_std", pos)
                finite = isinstance(std, (int, float)) and not math.isnan(std)
                cells.append(number(mean) + (f" ± {number(std)}" if finite and mean is not None else ""))
            headers.append(name)
            columns.append(cells)
        counts = [v for v in history.get("folds") or [] if isinstance(v, (int, float)) and not math.isnan(v)]
        folds = int(max(counts)) if counts else 0
        if len(set(counts)) > 1:
            headers.append("folds")
            columns.append(["-" if at("folds", p) is None else f"{at('folds', p):g}" for p in shown])
        taken = {f"{n}_mean" for n in means} | {f"{n}_std" for n in means} | set(means) | {"epoch", "folds"}
    else:
        taken = {"epoch"}
    for column in history:
        if column not in taken:
            headers.append(column)
            columns.append([number(at(column, p)) for p in shown])
    base = [h.removeprefix("val_") for h in headers]
    first = str(monitor).removeprefix("val_")
    order = sorted(dict.fromkeys(base), key=lambda b: b != first)
    groups = [sorted((i for i, b in enumerate(base) if b == name), key=lambda i: headers[i].startswith("val_"))
              for name in order]
    return headers, columns, groups, folds


def _print_split(console: Console, headers: list[str], rows: list[list[str]], groups: list[list[int]], *,
                 styles: list[str | None] | None = None, end_section: list[bool] | None = None) -> None:
    """Print a table whose first column labels the rows, split into several when it is wider
    than the terminal, so that no figure or header is ever cut.

    Args:
        console: where to print (its width decides the split).
        headers: the columns; the first is repeated in every table.
        rows: the cells, one list per row.
        groups: the other columns' indices in the order shown, grouped: a group stays in
            one table when it fits in one (:func:`nnlab.views.style.pack_columns`).
        styles: a style per row (the best epoch in bold).
        end_section: whether a rule follows each row.
    """
    widths = [text_width([h, *(row[i] for row in rows)]) for i, h in enumerate(headers)]
    for chosen in pack_columns(groups, widths, console.width, gap=_GAP, edges=_EDGES, fixed=[0]):
        table = Table(header_style="bold")
        for i in [0, *chosen]:
            table.add_column(headers[i], justify="right", no_wrap=True)
        for n, row in enumerate(rows):
            table.add_row(*(row[i] for i in [0, *chosen]), style=styles[n] if styles else None,
                          end_section=bool(end_section and end_section[n]))
        console.print(table)


def _plots_section(console: Console, folder: Path, metrics: dict[str, Any]) -> None:
    listed = [p for p in metrics.get("plots") or [] if isinstance(p, str)]
    found = sorted(str(p.relative_to(folder)) for p in folder.glob(f"{PLOTS}/**/*.png"))
    plots = list(dict.fromkeys([*listed, *found]))
    console.rule("plots", align="left")
    if not plots:
        console.print("none" + (f" ({metrics['plots_error']})" if metrics.get("plots_error") else ""))
    for plot in plots:
        path = folder / plot
        console.print(str(_relative(path)) + ("" if path.is_file() else "  [yellow](missing)[/]"), soft_wrap=True)


def _relative(path: Path) -> Path:
    """Relative to the working directory when inside it, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd())
    except ValueError:
        return absolute

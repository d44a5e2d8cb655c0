"""What nnlab prints: per-epoch progress and the summary after a run (rich).

Figures, config values and statuses are written as :mod:`nnlab.views.style` says. This
module renders what it is given: it imports nothing of the training, k-fold or sweep
code (which import it).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnlab import metric_names
from nnlab.runs.format import Status
from nnlab.views.style import compact, number, param_columns, status_style

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def format_seconds(seconds: float) -> str:
    """An epoch's duration: ``1.23s``, or milliseconds below a tenth of a second (``4.1ms``)."""
    return f"{seconds:.2f}s" if seconds >= 0.1 else f"{seconds * 1000:.1f}ms"


def format_logs(logs: dict[str, float]) -> str:
    """``loss 0.3120  accuracy 0.8810  val_loss ...``: loss first, validation last."""
    order = sorted(logs, key=lambda k: (k.startswith("val_"), k.removeprefix("val_") != "loss"))
    return "  ".join(f"{k} {number(logs[k])}" for k in order)


class EpochProgress:
    """Per-epoch progress: a live bar on a terminal, a throttled log line elsewhere.

    Use as a context manager; call the instance after each epoch.

    Args:
        label: what is training (the config's name).
        total: epochs planned.
        max_lines: on a non-terminal, print at most about this many lines.
    """

    def __init__(self, label: str, total: int | None = None, *, max_lines: int = 25):
        self.label = label
        self.total = total  # None: learnt from the first report
        self.max_lines = max_lines
        self.live = console.is_terminal
        self._progress = None
        self._task = None
        self._last_print = 0.0

    def __enter__(self) -> "EpochProgress":
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]{task.fields[label]}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      TextColumn("{task.fields[logs]}"), console=console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total, label=self.label, logs="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, epoch: int, epochs: int, logs: dict[str, float], seconds: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=epochs, completed=epoch, logs=format_logs(logs))
            return
        now = time.monotonic()
        every = max(1, epochs // self.max_lines)
        if epoch == 1 or epoch == epochs or epoch % every == 0 or now - self._last_print > 30:
            self._last_print = now
            console.print(f"{self.label} epoch {epoch}/{epochs} ({format_seconds(seconds)})  {format_logs(logs)}",
                          soft_wrap=True)
            sys.stdout.flush()


def metrics_table(metrics: dict[str, Any], fmt: Any = None) -> Table | None:
    """A metric per row, the train, validation and test figures of metrics.json side by side.

    Args:
        metrics: metrics.json's content.
        fmt: formats one figure (default: :func:`nnlab.views.style.number`).

    Returns:
        The table, or None when metrics.json has none of the three parts.
    """
    fmt = fmt or number
    parts = [p for p in ("train", "validation", "test") if isinstance(metrics.get(p), dict) and metrics[p]]
    if not parts:
        return None
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    for part in parts:
        table.add_column(part, justify="right")
    for name in dict.fromkeys(n for part in parts for n in metrics[part]):
        table.add_row(name, *(fmt(metrics[part].get(name)) for part in parts))
    return table


def _status_header(metrics: dict[str, Any], details: str) -> None:
    """``completed NAME: DETAILS`` in the status's colour, then the run's message if it has one."""
    status = metrics.get("status")
    style = status_style(status)
    console.print(f"[{style}]{status}[/] {metrics.get('name')}: {details}")
    if metrics.get("message"):
        console.print(f"[{style}]{metrics['message']}[/]")


def run_summary(metrics: dict[str, Any], run_path: str) -> None:
    """The short summary after a run: status, metrics against the baseline, the folder."""
    _status_header(metrics, f"{metrics.get('epochs_run')} epochs in {metrics.get('wall_time_s')} s, "
                            f"{metrics.get('params'):,} parameters")
    table = metrics_table(metrics)
    if table is not None:
        console.print(table)
    base = metrics.get("baseline")
    if base:
        figures = ", ".join(f"{k} {number(v)}" for k, v in base.items() if k != "name")
        console.print(f"baseline: {figures}")
    console.print(f"run folder: [bold]{run_path}[/]")


def trial_line(outcome: Any, total: int) -> None:
    """One line per finished sweep trial."""
    params = ", ".join(f"{k}={compact(v)}" for k, v in outcome.params.items()) or "(the config as it is)"
    style = status_style(outcome.status)
    console.print(f"trial {outcome.index + 1}/{total} [{style}]{outcome.status}[/] {params}", soft_wrap=True)


def sweep_summary(result: Any) -> None:
    """The ranked trials of a sweep as a table, what the metric means, then the sweep folder.

    Args:
        result: a :class:`nnlab.sweep.run.SweepResult`: ``outcomes`` (ranked), ``metric``,
            ``note`` (what the metric is, one sentence), ``status`` and ``run``.
    """
    headers, cells = param_columns(result.outcomes)
    table = Table(title=f"trials ranked by {result.metric}", header_style="bold")
    for column in ("rank", "trial", *headers, result.metric, "status", "run folder"):
        table.add_column(column, justify="right" if column in ("rank", "trial", result.metric) else "left",
                         overflow="fold")
    for rank, o in enumerate(result.outcomes, start=1):
        value = metric_names.value_of(o.metrics, result.metric)
        table.add_row(str(rank), str(o.index), *cells(o.params), number(value),
                      o.status + (f": {o.message}" if o.message and o.status != Status.COMPLETED else ""),
                      o.folder.rsplit("/", 1)[-1] if o.folder else "-")
    console.print(table)
    note = getattr(result, "note", "")
    if note:
        console.print(escape(note), highlight=False)
    console.print(f"sweep {result.status}; sweep folder: [bold]{result.run.path}[/]")


class KFoldProgress:
    """Progress of a k-fold validation: a bar per fold (epochs, running metrics), then the final model.

    On a terminal the bars are live; elsewhere a few lines per fold are printed.
    Folds trained in worker processes report only when they finish. Use as a
    context manager; :func:`nnlab.kfold.run_kfold` calls its methods.

    Args:
        label: what is validated (the config's name).
        max_lines: on a non-terminal, print about this many epoch lines per fold.
    """

    def __init__(self, label: str, *, max_lines: int = 4):
        self.label = label
        self.max_lines = max_lines
        self.live = console.is_terminal
        self._progress = None
        self._tasks: dict[int, Any] = {}
        self._k = 0
        self._last_print = 0.0

    def __enter__(self) -> "KFoldProgress":
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.fields[logs]}"), console=console)
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def fold_started(self, fold: int, k: int, epochs: int) -> None:
        self._k = k
        if self._progress is not None:
            self._tasks[fold] = self._progress.add_task(f"{self.label} fold {fold + 1}/{k}", total=epochs, logs="")

    def epoch(self, fold: int, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        where = "final model" if fold < 0 else f"fold {fold + 1}/{self._k}"
        if self._progress is not None:
            self._progress.update(self._tasks[fold], total=epochs, completed=epoch, logs=format_logs(logs))
            return
        now = time.monotonic()
        every = max(1, epochs // self.max_lines)
        if epoch == 1 or epoch == epochs or epoch % every == 0 or now - self._last_print > 30:
            self._last_print = now
            console.print(f"{self.label} {where} epoch {epoch}/{epochs}  {format_logs(logs)}", soft_wrap=True)
            sys.stdout.flush()

    def fold_finished(self, result: Any) -> None:
        logs = {f"val_{name}": value for name, value in result.validation.items()}
        if self._progress is not None:
            task = self._tasks.get(result.fold)
            if task is not None:
                self._progress.update(task, total=result.epochs_run, completed=result.epochs_run,
                                      logs=format_logs(logs))
            return
        console.print(f"{self.label} fold {result.fold + 1}/{result.k} {result.status} after "
                      f"{result.epochs_run} epochs ({result.wall_time_s:.1f}s)  {format_logs(logs)}", soft_wrap=True)
        sys.stdout.flush()

    def final_started(self, epochs: int) -> None:
        if self._progress is not None:
            self._tasks[-1] = self._progress.add_task(f"{self.label} final model", total=epochs, logs="")
        else:
            console.print(f"{self.label} final model: {epochs} epochs on the whole training part")


#: Which baseline figure stands beside which test metric.
_BASELINE_FOR = {"regression": {"mae": "linear_regression_mae", "mse": "linear_regression_mse"},
                 "classification": {"accuracy": "majority_class_accuracy"}}


#: Loss names that are a metric the baseline reports too.
_LOSS_ALIASES = {"mse": "mse", "mean_squared_error": "mse", "mae": "mae", "mean_absolute_error": "mae"}


def kfold_summary(result: Any) -> None:
    """After ``nnlab kfold``: a row per fold, mean ± std, the best epoch, and the final model's
    test metrics beside the baseline."""
    metrics, summary = result.metrics, result.summary
    _status_header(metrics, f"{metrics.get('folds_completed')} of {metrics.get('k')} folds in "
                            f"{metrics.get('wall_time_s')} s, {metrics.get('params'):,} parameters")
    folds = summary.get("folds") or []
    if folds:
        names = sorted(dict.fromkeys(n for f in folds for n in f["validation"]), key=lambda n: n != "loss")
        table = Table(title="validation metrics at the end of each fold", header_style="bold")
        for column in ("fold", "epochs", "train/val rows", *(f"val_{n}" for n in names), "seconds"):
            table.add_column(column, justify="left" if column == "fold" else "right")
        for i, f in enumerate(folds):
            table.add_row(str(f["fold"]), str(f["epochs_run"]), f"{f['train_rows']}/{f['validation_rows']}",
                          *(number(f["validation"].get(n)) for n in names), f"{f['wall_time_s']:.1f}",
                          end_section=i == len(folds) - 1)
        table.add_row("mean", "", "", *(number(summary["mean"].get(n)) for n in names), "", style="bold",
                      end_section=False)
        table.add_row("± std", "", "", *(number(summary["std"].get(n)) for n in names), "")
        console.print(table)
    best = summary.get("best")
    if best:
        smoothed = f", smoothed with factor {best['smoothing']}" if best.get("smoothing") else ""
        # The direction the run chose by (kfold.mode, or Keras's metric), else the name's.
        direction = best.get("direction") or metric_names.direction(best["monitor"])
        which = {"max": "highest", "min": "lowest"}.get(direction, "best")
        console.print(f"best epoch: [bold]{best['epoch']}[/] ({which} mean {best['monitor']} over the "
                      f"folds{smoothed}: {number(best['value'])})")
    final = summary.get("final")
    if final:
        kind = "regression" if metrics.get("task") == "regression" else "classification"
        base = final.get("baseline") or {}
        table = Table(title=f"final model: {final['epochs']} epochs on all {metrics.get('train_rows')} training rows",
                      header_style="bold")
        for column in ("metric", "test", "baseline"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for name, value in sorted(final["test"].items(), key=lambda item: item[0] != "loss"):
            # A mean squared error loss stands beside the baseline's mean squared error.
            partner = _BASELINE_FOR[kind].get(_LOSS_ALIASES.get(final.get("loss"), "") if name == "loss" else name)
            shown = f"{number(base.get(partner))} ({partner})" if partner and partner in base else "-"
            table.add_row(name, number(value), shown)
        console.print(table)
        figures = ", ".join(f"{k} {number(v)}" for k, v in base.items() if k != "name")
        if figures:
            console.print(f"baseline: {figures}")
    console.print(f"run folder: [bold]{result.run.path}[/]")

"""Progress while training: a live bar per run or fold on a terminal, a few log lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.markup import escape

from nnlab.views.console import console
from nnlab.views.style import compact, number, status_style


def format_seconds(seconds: float) -> str:
    """An epoch's duration: ``1.23s``, or milliseconds below a tenth of a second (``4.1ms``)."""
    return f"{seconds:.2f}s" if seconds >= 0.1 else f"{seconds * 1000:.1f}ms"


def format_logs(logs: dict[str, float], *, bar: bool = False) -> str:
    """``loss 0.3120  accuracy 0.8810  val_loss ...``: loss first, validation last.

    Args:
        logs: the epoch's metrics.
        bar: for a live bar, ``loss=0.3120 accuracy=0.8810``: a narrow terminal wraps it between
            metrics, never between a name and its value.
    """
    order = sorted(logs, key=lambda k: (k.startswith("val_"), k.removeprefix("val_") != "loss"))
    if bar:
        return " ".join(f"{k}={number(logs[k])}" for k in order)
    return "  ".join(f"{k} {number(logs[k])}" for k in order)


#: What the bar says until the first epoch ends (data loading, model building and tracing come first).
STARTING = "loading data, building the model..."


def progress_bars(label_field: str = "{task.fields[label]}"):
    """A rich Progress whose epoch count and elapsed time always show: the bar is short and fixed,
    the metrics come last and wrap onto further lines in a narrow terminal instead of hiding the rest."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Column

    return Progress(TextColumn(f"[bold]{label_field}", table_column=Column(no_wrap=True)),
                    BarColumn(bar_width=16), MofNCompleteColumn(table_column=Column(no_wrap=True)),
                    TimeElapsedColumn(table_column=Column(no_wrap=True)),
                    TextColumn("{task.fields[logs]}", table_column=Column(ratio=1, no_wrap=False, overflow="fold")),
                    console=console, transient=False, expand=True)


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
            self._progress = progress_bars()
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total, label=self.label, logs=STARTING)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, epoch: int, epochs: int, logs: dict[str, float], seconds: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=epochs, completed=epoch, logs=format_logs(logs, bar=True))
            return
        now = time.monotonic()
        every = max(1, epochs // self.max_lines)
        if epoch == 1 or epoch == epochs or epoch % every == 0 or now - self._last_print > 30:
            self._last_print = now
            console.print(f"{self.label} epoch {epoch}/{epochs} ({format_seconds(seconds)})  {format_logs(logs)}",
                          soft_wrap=True)
            sys.stdout.flush()


class TrialLines:
    """One line per finished sweep trial: ``[4/7] trial 3 completed lr=0.1``.

    Trials keep the number the ranked table, sweep.json and ``--filter trial=N`` give
    them (from 0); the count in brackets says how many of the trials have finished.
    """

    def __init__(self):
        self.done = 0

    def __call__(self, outcome: Any, total: int) -> None:
        self.done += 1
        params = ", ".join(f"{k}={compact(v)}" for k, v in outcome.params.items()) or "(the config as it is)"
        style = status_style(outcome.status)
        count = escape(f"[{self.done}/{total}]")
        repeat = getattr(outcome, "repeat", None)
        which = f"trial {outcome.index}" + ("" if repeat is None else f" repeat {repeat}")
        console.print(f"{count} {which} [{style}]{outcome.status}[/] {escape(params)}",
                      soft_wrap=True, markup=True)


class KFoldProgress:
    """Progress of a k-fold validation: a bar per fold (epochs, running metrics), then the final model.

    On a terminal the bars are live; elsewhere a few lines per fold are printed.
    Folds trained in worker processes report only when they finish. Use as a
    context manager; :func:`nnlab.crossval.run_kfold` calls its methods.

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
            self._progress = progress_bars("{task.description}")
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def fold_started(self, fold: int, k: int, epochs: int) -> None:
        self._k = k
        if self._progress is not None:
            self._tasks[fold] = self._progress.add_task(f"{self.label} fold {fold + 1}/{k}", total=epochs,
                                                        logs=STARTING if not self._tasks else "")

    def epoch(self, fold: int, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        where = "final model" if fold < 0 else f"fold {fold + 1}/{self._k}"
        if self._progress is not None:
            self._progress.update(self._tasks[fold], total=epochs, completed=epoch,
                                  logs=format_logs(logs, bar=True))
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
                                      logs=format_logs(logs, bar=True))
            return
        console.print(f"{self.label} fold {result.fold + 1}/{result.k} {result.status} after "
                      f"{result.epochs_run} epochs ({result.wall_time_s:.1f}s)  {format_logs(logs)}", soft_wrap=True)
        sys.stdout.flush()

    def final_started(self, epochs: int) -> None:
        if self._progress is not None:
            self._tasks[-1] = self._progress.add_task(f"{self.label} final model", total=epochs, logs=STARTING)
        else:
            console.print(f"{self.label} final model: {epochs} epochs on the whole training part")

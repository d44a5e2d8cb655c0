"""What nnlab prints: per-epoch progress and the summary after a run (rich)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def format_logs(logs: dict[str, float]) -> str:
    """``loss 0.3120  accuracy 0.8810  val_loss ...``: loss first, validation last."""
    order = sorted(logs, key=lambda k: (k.startswith("val_"), k.removeprefix("val_") != "loss"))
    return "  ".join(f"{k} {logs[k]:.4f}" for k in order)


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
            console.print(f"{self.label} epoch {epoch}/{epochs} ({seconds:.2f}s)  {format_logs(logs)}",
                          soft_wrap=True)
            sys.stdout.flush()


def run_summary(metrics: dict[str, Any], run_path: str) -> None:
    """The short summary after a run: status, metrics against the baseline, the folder."""
    status = metrics.get("status")
    style = {"completed": "green", "interrupted": "yellow"}.get(status, "red")
    console.print(f"[{style}]{status}[/] {metrics.get('name')}: {metrics.get('epochs_run')} epochs "
                  f"in {metrics.get('wall_time_s')} s, {metrics.get('params'):,} parameters")
    if metrics.get("message"):
        console.print(f"[{style}]{metrics['message']}[/]")
    parts = [p for p in ("train", "validation", "test") if metrics.get(p)]
    if parts:
        table = Table(show_header=True, header_style="bold")
        table.add_column("metric")
        for part in parts:
            table.add_column(part, justify="right")
        names = list(dict.fromkeys(n for part in parts for n in metrics[part]))
        for name in names:
            table.add_row(name, *(_fmt(metrics[part].get(name)) for part in parts))
        console.print(table)
    base = metrics.get("baseline")
    if base:
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in base.items() if k != "name")
        console.print(f"baseline: {figures}")
    console.print(f"run folder: [bold]{run_path}[/]")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)

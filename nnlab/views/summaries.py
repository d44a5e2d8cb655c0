"""What is printed after a run, a k-fold validation or a sweep: tables of its results."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from nnlab import metric_names
from nnlab.runs.format import Status
from nnlab.views.console import console
from nnlab.views.style import number, param_columns, status_style


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


def run_summary(metrics: dict[str, Any], run_path: str, history: dict[str, list[float]] | None = None) -> None:
    """The short summary after a run: status, early stopping, metrics against the baseline, the folder,
    and for a stopped run the command that resumes it.

    Args:
        metrics: metrics.json's content.
        run_path: the run folder.
        history: the per-epoch history, to say how the train column differs from the last epoch.
    """
    params = metrics.get("params")
    _status_header(metrics, f"{metrics.get('epochs_run')} epochs in {metrics.get('wall_time_s')} s"
                            + (f", {params:,} parameters" if isinstance(params, int) else ""))
    stopped = metrics.get("early_stopping")
    if stopped:
        restored = (f"; weights of epoch {stopped['restored_epoch']} restored" if stopped.get("restored_epoch")
                    else "")
        console.print(f"stopped early at epoch {stopped['stopped_epoch']}: {stopped.get('monitor', 'the monitor')} "
                      f"stopped improving{restored}")
    table = metrics_table(metrics)
    if table is not None:
        console.print(table)
        last_loss = ((history or {}).get("loss") or [None])[-1]
        train_loss = (metrics.get("train") or {}).get("loss")
        if last_loss is not None and train_loss is not None and abs(train_loss - last_loss) > 0.01 * abs(last_loss):
            console.print(f"train is measured again after training, on all {metrics.get('train_rows'):,} training "
                          f"rows with the final weights and training-only layers (dropout) off; the last epoch's "
                          f"loss, {number(last_loss)}, was averaged over the epoch while the weights changed")
    base = metrics.get("baseline")
    if base:
        figures = ", ".join(f"{k} {number(v)}" for k, v in base.items() if k != "name")
        console.print(f"baseline: {figures}")
    console.print(f"run folder: [bold]{escape(str(run_path))}[/]", soft_wrap=True)
    if metrics.get("checkpoint_epoch") and metrics.get("status") in (Status.INTERRUPTED.value, Status.FAILED.value):
        console.print(f"resume it: [bold]nnlab train --resume {escape(str(run_path))}[/]", soft_wrap=True)


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

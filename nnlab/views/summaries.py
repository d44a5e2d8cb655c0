"""What is printed after a run, a k-fold validation or a sweep: tables of its results."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from nnlab import metric_names
from nnlab.store.format import Status
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

    Long parameter keys are headed by their last part (``units``) with a legend below; no
    cell is cut: where the table with the trials' run folders would not fit the terminal,
    the folders (in sweep.json and summary.md) are left out and a line says so.

    Args:
        result: a :class:`nnlab.sweeps.run.SweepResult`: ``outcomes`` (ranked), ``metric``,
            ``note`` (what the metric is, one sentence), ``status`` and ``run``; with ``--seeds``,
            ``trials`` (each trial over its repeats), shown one row per trial.
    """
    if getattr(result, "trials", None):
        _repeated_sweep_summary(result)
        return
    headers, cells = param_columns(result.outcomes)
    short = short_keys(headers)
    rows = []
    for rank, o in enumerate(result.outcomes, start=1):
        value = metric_names.value_of(o.metrics, result.metric)
        # Only completed trials are ranked; a pruned one's figure is its last before the pruner stopped it.
        said = o.message and o.status not in (Status.COMPLETED, Status.PRUNED)
        rows.append([str(rank) if o.status == Status.COMPLETED else "-", str(o.index), *cells(o.params),
                     number(value), o.status + (f": {o.message}" if said else ""),
                     o.folder.rsplit("/", 1)[-1] if o.folder else "-"])
    columns = ["rank", "trial", *short, result.metric, "status", "run folder"]
    widths = [max(_longest_word(c), *(_longest_word(r[i]) for r in rows)) for i, c in enumerate(columns)]
    with_folders = sum(widths) + 3 * len(columns) + 1 <= console.width
    if not with_folders:
        columns, widths, rows = columns[:-1], widths[:-1], [r[:-1] for r in rows]
    table = Table(title=f"trials ranked by {result.metric}", header_style="bold")
    for column, width in zip(columns, widths):
        table.add_column(column, justify="right" if column in ("rank", "trial", result.metric) else "left",
                         min_width=width)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for key, shown in zip(headers, short):
        if key != shown:
            console.print(f"{shown}: {key}", highlight=False)
    if not with_folders:
        console.print("(each trial's run folder is in sweep.json and summary.md; a wider terminal shows them here)")
    note = getattr(result, "note", "")
    if note:
        console.print(escape(note), highlight=False)
    console.print(f"sweep {result.status}; sweep folder: [bold]{escape(str(result.run.path))}[/]", soft_wrap=True)


def _repeated_sweep_summary(result: Any) -> None:
    """A sweep with ``--seeds``: one row per trial, ranked by its mean over the repeats."""
    headers, cells = param_columns(result.trials)
    short = short_keys(headers)
    table = Table(title=f"trials ranked by their mean {result.metric} over the repeats", header_style="bold")
    for column in ("rank", "trial", *short, "mean ± std", "95% CI", "n"):
        table.add_column(column, justify="left" if column in short else "right", no_wrap=column not in short)
    reasons = set()
    for rank, t in enumerate(result.trials, start=1):
        d = t.description
        if d.why:
            reasons.add(d.why)
        spread = f"{number(d.mean)} ± {number(d.std)}" if d.std is not None else number(d.mean)
        interval = f"{number(d.ci_low)} to {number(d.ci_high)}" if d.ci_low is not None else "-"
        table.add_row(str(rank), str(t.index), *cells(t.params), spread, interval, str(d.n))
    console.print(table)
    for key, shown in zip(headers, short):
        if key != shown:
            console.print(f"{shown}: {key}", highlight=False)
    for reason in sorted(reasons):
        console.print(f"-: {reason}")
    incomplete = [t for t in result.trials if not t.statuses.startswith(f"{len(t.runs)}/")]
    for t in incomplete:
        console.print(f"trial {t.index}: {t.statuses}")
    note = getattr(result, "note", "")
    if note:
        console.print(escape(note), highlight=False)
    console.print(f"sweep {result.status}; sweep folder: [bold]{escape(str(result.run.path))}[/] (each repeat's "
                  "run folder is in sweep.json and summary.md)", soft_wrap=True)


def short_keys(keys: list[str], longest: int = 16) -> list[str]:
    """Table headers for dotted keys: a key longer than ``longest`` by its shortest dotted end that
    no other key shares and that is not a bare list position (``model.layers.0.Dense.units`` -> ``units``)."""
    shown = []
    for key in keys:
        parts = key.split(".")
        choice = key
        if len(key) > longest:
            for n in range(1, len(parts)):
                end = ".".join(parts[-n:])
                if not parts[-n].isdigit() and sum(k == end or k.endswith("." + end) for k in keys) == 1:
                    choice = end
                    break
        shown.append(choice)
    return shown


def _longest_word(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(word) for word in str(text).split()), default=1)


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
    console.print(f"run folder: [bold]{escape(str(result.run.path))}[/]", soft_wrap=True)


def repeats_summary(name: str, metrics: list[dict[str, Any]], folders: list[str], seeds: list[int]) -> None:
    """After ``--seeds``: one table of every metric over the repeats (mean ± std, 95% CI, min, max, n),
    then each repeat's seed, status and folder.

    Args:
        name: the config's name.
        metrics: each repeat's metrics.json content, in order.
        folders: each repeat's run folder.
        seeds: each repeat's seed.
    """
    from nnlab.repeats import group_summary

    statuses = [m.get("status") for m in metrics]
    done = sum(s == Status.COMPLETED.value for s in statuses)
    overall = Status.COMPLETED.value if done == len(metrics) else statuses[-1] if done == 0 else "completed in part"
    style = status_style(overall if overall in {s.value for s in Status} else Status.INTERRUPTED)
    console.print(f"[{style}]{overall}[/] {escape(name)}: {len(metrics)} repeats, {done} completed "
                  f"(group {metrics[0].get('group', '-') if metrics else '-'})")
    table = Table(title="over the repeats", header_style="bold")
    for column in ("metric", "mean ± std", "95% CI of the mean", "n"):
        table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=True)
    reasons = set()
    prefixes = {"train": "train_", "validation": "val_", "test": "test_"}
    for part, described in group_summary([m for m in metrics if m.get("status") == Status.COMPLETED.value]).items():
        for metric, d in described.items():
            spread = f"{number(d.mean)} ± {number(d.std)}" if d.std is not None else number(d.mean)
            interval = f"{number(d.ci_low)} to {number(d.ci_high)}" if d.ci_low is not None else "-"
            if d.why:
                reasons.add(d.why)
            table.add_row(prefixes[part] + metric, spread, interval, str(d.n))
    if table.row_count:
        console.print(table)
    for reason in sorted(reasons):
        console.print(f"-: {reason}")
    for seed, m, folder in zip(seeds, metrics, folders):
        console.print(f"seed {seed} [{status_style(m.get('status'))}]{m.get('status')}[/]: {escape(folder)}",
                      soft_wrap=True)

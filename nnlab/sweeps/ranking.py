"""What ranks a sweep's trials: the metric, its direction, and the ranking and its summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab.config import Config
from nnlab.errors import ConfigError
from nnlab.metric_names import direction, direction_of_objects, unknown_direction_message, value_of
from nnlab.store.format import Status


def default_metric(config: Config, kfold: bool = False) -> str | None:
    """k-fold trials: the config's kfold.monitor; else val_loss where trials validate; else None.

    Never a test metric: choosing the best trial on the test set makes its test figure
    an optimistic one (the mistake the lessons warn against).
    """
    if kfold:
        return config.kfold.monitor
    t = config.training
    return "val_loss" if (t.validation_split or t.validation_holdout) else None


def best_monitor(config: Config, kfold: bool = False) -> str:
    """The metric whose best epoch a trial's metrics.json records (``best``)."""
    if kfold:
        return config.kfold.monitor
    t = config.training
    return "val_loss" if (t.validation_split or t.validation_holdout) else "loss"


def sweep_metric(base: Config, metric: str | None, kfold: bool = False) -> str:
    """What ranks the trials: ``metric``, else the sweep section's, else :func:`default_metric`.

    Raises:
        ConfigError: for a metric the trials cannot report: k-fold trials have only
            validation figures (``val_*``, ``best_val_*``), and ``best_X`` needs X to be
            the monitored metric (:func:`best_monitor`).
    """
    from_config = metric is None and base.sweep is not None and base.sweep.metric is not None
    chosen = metric or (base.sweep.metric if from_config else None) or default_metric(base, kfold)
    if chosen is None:
        raise ConfigError("the trials hold out no validation rows, so nothing fair can rank them (choosing on the "
                          "test set makes the winner's test figure optimistic): hold some out with --set "
                          "training.validation_split=0.2 (or training.validation_holdout=N), validate every trial "
                          "with --kfold, or rank on the test set on purpose with --metric test_loss",
                          source=base.source, key="training")

    def refuse(message: str) -> ConfigError:
        if from_config:
            return base.error(("sweep", "metric"), message)
        return ConfigError(message, source=f"--metric {chosen}")

    if kfold and not chosen.startswith(("val_", "best_val_")):
        raise refuse(f"k-fold trials report validation metrics only: val_* (mean over the folds after the last "
                     f"epoch) or best_{base.kfold.monitor} (the averaged curve at its best epoch); "
                     f"got '{chosen}'")
    if chosen.startswith("best_") and chosen[len("best_"):] != best_monitor(base, kfold):
        monitor = best_monitor(base, kfold)
        hint = " (set kfold.monitor to change it)" if kfold else ""
        raise refuse(f"the trials record the best epoch of {monitor}{hint}, so best_{monitor} is the "
                     f"best-epoch metric they can be ranked by; got '{chosen}'")
    return chosen


def sweep_direction(base: Config, metric: str) -> str:
    """Whether the best trial has the highest (``max``) or lowest (``min``) ``metric``.

    ``sweep.mode`` when set; else Keras's metric objects of the config (``R2Score``
    says "up"); else the metric's name (:mod:`nnlab.metric_names`).

    Raises:
        ConfigError: when nothing can tell, naming ``sweep.mode``.
    """
    from nnlab.keras_objects import build_objects

    mode = base.sweep.mode if base.sweep is not None else "auto"
    way = direction(metric, direction_of_objects(build_objects(base).metrics), mode)
    if way is None:
        message = unknown_direction_message(metric, "sweep.mode")
        if base.sweep is not None and base.sweep.metric == metric:
            raise base.error(("sweep", "metric"), message)
        raise ConfigError(message, source=f"--metric {metric}")
    return way


def ranked(outcomes: list[Any], metric: str, way: str) -> list[Any]:
    """Completed trials best first by ``metric`` in direction ``way`` (max or min), then every other trial."""
    higher = way == "max"

    def key(o: Any):
        value = value_of(o.metrics, metric) if o.status == "completed" else None
        if value is None or math.isnan(value):
            return (1, 0.0, o.index)
        return (0, -value if higher else value, o.index)

    return sorted(outcomes, key=key)


def metric_note(metric: str, kfold: bool) -> str:
    """What the ranking metric of a sweep's trials is, in one sentence."""
    if metric.startswith("best_"):
        what = f"{metric[5:]} at the epoch where it was best"
        if kfold:
            what = (f"the mean over the folds of {metric[5:]} at the epoch where that mean was best "
                    f"(kfold.monitor, after kfold.smoothing)")
        return f"{metric} is {what}."
    if kfold:
        return (f"{metric} is the mean over the folds of each fold's {metric} after its last epoch "
                f"(its standard deviation is validation_std in the trial's metrics.json).")
    if metric.startswith("test_"):
        return (f"{metric} is the trained model's on the test set, after the last epoch: ranked on the test set "
                "as asked, so the best trial's test figure is optimistic; confirm it on data no trial saw.")
    return f"{metric} is the trained model's, after the last epoch."


@dataclass
class TrialStats:
    """A trial of a sweep with ``--seeds``: its repeats and what they say together.

    Args:
        index: the trial's number.
        params: its parameters (the seed aside).
        runs: its repeats' outcomes, in seed order.
        description: the ranking metric over the completed repeats (:func:`nnlab.stats.describe`).
    """

    index: int
    params: dict[str, Any]
    runs: list[Any]
    description: Any

    @property
    def statuses(self) -> str:
        """``3/3 completed``, or what the other repeats became."""
        done = sum(r.status == Status.COMPLETED.value for r in self.runs)
        others = sorted({r.status for r in self.runs} - {Status.COMPLETED.value})
        return f"{done}/{len(self.runs)} completed" + (f" ({', '.join(others)})" if others else "")

    def as_dict(self) -> dict[str, Any]:
        """For sweep.json."""
        return {"trial": self.index, "params": self.params, "statuses": self.statuses,
                "folders": [r.folder for r in self.runs], **self.description.as_dict()}


def rank_trials(outcomes: list[Any], metric: str, way: str) -> list[TrialStats]:
    """The trials best first by their mean ``metric`` over their completed repeats (direction ``way``);
    trials with no completed repeat last."""
    from nnlab.stats import describe

    runs: dict[int, list[Any]] = {}
    for outcome in outcomes:
        runs.setdefault(outcome.index, []).append(outcome)
    trials = []
    for index, repeats in runs.items():
        values = [value_of(r.metrics, metric) if r.status == Status.COMPLETED.value else None for r in repeats]
        trials.append(TrialStats(index, repeats[0].params, repeats, describe(values)))

    def key(t: TrialStats):
        mean = t.description.mean
        if mean is None or math.isnan(mean):
            return (1, 0.0, t.index)
        return (0, -mean if way == "max" else mean, t.index)

    return sorted(trials, key=key)


def summary_markdown(order: list[Any], metric: str, kfold: bool = False,
                     trials: list[TrialStats] | None = None) -> str:
    """The ranked trials as a Markdown table, and what the metric means.

    Args:
        order: every run, ranked.
        metric: what ranks them.
        kfold: the trials are k-fold validations.
        trials: with ``--seeds``, the trials ranked by their mean (one row each: mean ± std, 95% CI, n).
    """
    from nnlab.views.style import number, param_columns

    if trials:
        headers, param_cells = param_columns(trials)
        header = ["rank", "trial", *headers, f"{metric} mean ± std", "95% CI", "n", "repeats"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for rank, t in enumerate(trials, start=1):
            d = t.description
            spread = f"{number(d.mean)} ± {number(d.std)}" if d.std is not None else number(d.mean)
            interval = f"{number(d.ci_low)} to {number(d.ci_high)}" if d.ci_low is not None else "-"
            cells = [str(rank), str(t.index), *param_cells(t.params), spread, interval, str(d.n), t.statuses]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n\n" + metric_note(metric, kfold) + " Each trial ran once per seed; " \
            "the interval is the 95% Student-t interval of its mean.\n"

    headers, param_cells = param_columns(order)
    header = ["rank", "trial", *headers, metric, "status", "folder"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, o in enumerate(order, start=1):
        value = value_of(o.metrics, metric)
        cells = [str(rank), str(o.index), *param_cells(o.params),
                 number(value), o.status, Path(o.folder).name if o.folder else "-"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + metric_note(metric, kfold) + "\n"

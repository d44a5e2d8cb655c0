"""Pruning a search's trials: each trial reports its validation metric to the study, Optuna's pruner decides.

A trial may train several runs one after another: the repeats of ``--seeds``, the
folds of ``--kfold`` (or both). Each is a *stage* of the trial's steps: stage ``s``,
epoch ``e`` is step ``s * epochs + e + 1``, and the value reported there is the mean,
over the stages so far, of their metric at epoch ``e``. So the last stage reports
the mean over every fold (or repeat) per epoch, and every trial is compared with
the others at the same step on the same quantity (the same folds, the same seeds),
which lets the pruner stop a k-fold trial in its first fold already.

Values are reported at the pruner's decision steps (and the last step), where the
pruner reads them: every epoch would be one database write an epoch, more than a
small lesson's epoch costs. A fused fit ends its chunk of epochs at each decision
step, so a pruned trial trains no epoch past the one it was pruned at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nnlab.errors import NnlabError
from nnlab.suggestions import unknown_name_message

#: The pruners ``--pruner`` accepts.
PRUNERS = ("median", "asha", "hyperband")
#: How fast successive halving narrows (Optuna's default): a third of the trials go on at each rung.
REDUCTION_FACTOR = 3
#: Trials a median pruner lets finish before it prunes any (Optuna's default).
MEDIAN_STARTUP_TRIALS = 5


def check_pruner(name: str, source: str = "--pruner") -> str:
    """``name`` when it is a pruner, else one message with a did-you-mean.

    Raises:
        NnlabError: an unknown pruner.
    """
    if name not in PRUNERS:
        raise NnlabError(unknown_name_message("pruner", name, PRUNERS), source=source)
    return name


@dataclass(frozen=True)
class PrunerSpec:
    """A pruner, as plain data (a worker rebuilds it): its name and the steps a trial has.

    Args:
        name: median, asha or hyperband.
        steps: the steps of a whole trial (stages x epochs).
    """

    name: str
    steps: int

    @property
    def min_resource(self) -> int:
        """The first rung of successive halving: a ninth of the trial (rounded up), so the rungs are a ninth,
        a third and the whole of it, counted down from its end. Rounded down, the top rung fell just before
        the end (epoch 36 of 40), where pruning saves little and drops a nearly finished trial."""
        return max(1, -(-self.steps // REDUCTION_FACTOR ** 2))

    @property
    def warmup(self) -> int:
        """Steps a median pruner waits before it compares (a tenth of the trial)."""
        return max(1, self.steps // 10)

    @property
    def interval(self) -> int:
        """Steps between a median pruner's decisions (a twentieth of the trial)."""
        return max(1, self.steps // 20)

    def build(self) -> Any:
        """The Optuna pruner."""
        import optuna

        if self.name == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=self.warmup,
                                               interval_steps=self.interval)
        if self.name == "asha":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=self.min_resource,
                                                          reduction_factor=REDUCTION_FACTOR)
        return optuna.pruners.HyperbandPruner(min_resource=self.min_resource, max_resource=self.steps,
                                              reduction_factor=REDUCTION_FACTOR)

    def decides_at(self, step: int) -> bool:
        """Whether the pruner may stop a trial at ``step`` (1-based), so its value must be reported there."""
        if step >= self.steps:
            return True
        if self.name == "median":
            return step > self.warmup and (step - self.warmup) % self.interval == 0
        ratio = step / self.min_resource
        rung = round(math.log(ratio, REDUCTION_FACTOR)) if ratio >= 1 else -1
        return rung >= 0 and self.min_resource * REDUCTION_FACTOR ** rung == step

    def as_dict(self) -> dict[str, Any]:
        """For sweep.json."""
        settings: dict[str, Any] = {"name": self.name, "steps": self.steps}
        if self.name == "median":
            settings.update(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=self.warmup,
                            interval_steps=self.interval)
        else:
            settings.update(min_resource=self.min_resource, reduction_factor=REDUCTION_FACTOR)
        return settings


@dataclass(frozen=True)
class PruningTarget:
    """Where a trial reports to, as plain data that travels to a worker process or a Ray task.

    Args:
        storage: the study's database URL (``sqlite:///.../study.db``).
        study: the study's name.
        trial_id: the Optuna trial's id in the storage.
        monitor: the history column reported (e.g. ``val_loss``).
        pruner: the pruner.
        epochs: epochs of one stage.
    """

    storage: str
    study: str
    trial_id: int
    monitor: str
    pruner: PrunerSpec
    epochs: int


def open_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url``; SQLite waits for a writer of another process instead of failing."""
    import optuna

    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})


class TrialReporter:
    """Reports a trial's validation metric to its study, stage by stage, and asks the pruner.

    Made once per trial where the trial runs; :meth:`callback` gives the Keras callback of
    each run (or fold) in turn.

    Args:
        target: the study and trial.
    """

    def __init__(self, target: PruningTarget):
        import optuna

        self.target = target
        study = optuna.load_study(study_name=target.study, storage=open_storage(target.storage),
                                  pruner=target.pruner.build())
        self.trial = optuna.trial.Trial(study, target.trial_id)
        self.stage = -1
        self.values: list[list[float]] = []  # per stage, the monitor at each epoch
        self.pruned_at: int | None = None  # the step the pruner stopped the trial at

    @property
    def pruned(self) -> bool:
        """Whether the pruner stopped the trial."""
        return self.pruned_at is not None

    def callback(self) -> Any:
        """The Keras callback of the trial's next run or fold (its next stage)."""
        from nnlab.training.callbacks import PruneCheck

        self.stage += 1
        self.values.append([])
        stage = self.stage
        return PruneCheck(lambda epoch, logs: self.epoch_ended(stage, epoch, logs),
                          lambda done: self.epochs_until_decision(stage, done))

    def epoch_ended(self, stage: int, epoch: int, logs: dict[str, float]) -> bool:
        """Record the stage's metric at ``epoch`` (0-based); report it and ask the pruner at a decision step.

        Returns:
            True when the trial is to stop here.
        """
        value = logs.get(self.target.monitor)
        if value is None or not math.isfinite(float(value)):
            return False  # a missing or diverged value: the divergence guard, not the pruner, ends the run
        values = self.values[stage]
        values.extend([math.nan] * (epoch + 1 - len(values)))
        values[epoch] = float(value)
        step = stage * self.target.epochs + epoch + 1
        if not self.target.pruner.decides_at(step):
            return False
        seen = [v[epoch] for v in self.values[: stage + 1] if len(v) > epoch and math.isfinite(v[epoch])]
        self.trial.report(sum(seen) / len(seen), step)
        if self.trial.should_prune():
            self.pruned_at = step
            return True
        return False

    def epochs_until_decision(self, stage: int, epochs_done: int) -> int | None:
        """Epochs from ``epochs_done`` (of this stage) to the next decision step, for a fused fit's chunks."""
        base = stage * self.target.epochs
        for epoch in range(epochs_done + 1, self.target.epochs + 1):
            if self.target.pruner.decides_at(base + epoch):
                return epoch - epochs_done
        return None

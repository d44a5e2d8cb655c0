"""Keras callbacks of nnlab: the per-epoch history file, progress, divergence and stop requests."""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from nnlab.backend import keras
from nnlab.interrupts import raise_pending

_Callback = keras().callbacks.Callback


#: history.csv gets the finished epochs' rows at least this often (seconds), and at the end of training.
HISTORY_FLUSH_SECONDS = 0.5


class HistoryLog(_Callback):
    """Keeps every finished epoch's logs and appends them to history.csv as it goes.

    The file holds every epoch finished up to :data:`HISTORY_FLUSH_SECONDS` ago, so a run
    that is killed keeps its history so far; a stopped or crashed run has the whole of it
    in memory, and the complete file is rewritten atomically at the end. (Rows are written
    in groups: opening the file for each of 10,000 short epochs cost more than training them.)

    Args:
        path: the history.csv to append to (None: keep the history in memory only).
        history: the history of the epochs before this fit, when resuming.
    """

    def __init__(self, path: Path | None, history: dict[str, list[float]] | None = None):
        super().__init__()
        self.path = path
        # A resumed run continues the history it had (its file already has a header).
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        self._columns: list[str] | None = list(self.history) if self.history else None
        self._rows: list[list[Any]] = []
        self._flushed = time.perf_counter()

    @property
    def epochs_done(self) -> int:
        """Number of epochs finished so far."""
        return max((len(v) for v in self.history.values()), default=0)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        if self._columns is None:
            self._columns = list(logs)
            if self.path is not None:
                with open(self.path, "w", newline="", encoding="utf-8") as handle:
                    csv.writer(handle, lineterminator="\n").writerow(["epoch", *self._columns])
        for name in self._columns:
            self.history.setdefault(name, []).append(logs.get(name, math.nan))
        if self.path is not None:
            self._rows.append([epoch + 1, *(repr(logs.get(c, math.nan)) for c in self._columns)])
            if time.perf_counter() - self._flushed >= HISTORY_FLUSH_SECONDS:
                self.flush()

    def on_train_end(self, logs=None) -> None:
        self.flush()

    def flush(self) -> None:
        """Append the rows not yet in the file."""
        if self.path is not None and self._rows:
            with open(self.path, "a", newline="", encoding="utf-8") as handle:
                csv.writer(handle, lineterminator="\n").writerows(self._rows)
            self._rows.clear()
        self._flushed = time.perf_counter()


class LastEpochWeights(_Callback):
    """Keeps a copy of the weights and optimizer state after the last finished epoch.

    Copying in memory costs little next to an epoch, and lets a stopped or crashed
    run save a checkpoint of its last whole epoch rather than of half an epoch.
    Epochs whose loss is NaN or infinite are not kept.
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self._weights: list | None = None
        self._optimizer: list | None = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        import numpy as np

        self._weights = [np.array(w, copy=True) for w in self.model.get_weights()]
        self._optimizer = [np.array(v, copy=True) for v in self.model.optimizer.variables]
        self.epoch = epoch + 1

    def restore(self, model: Any) -> bool:
        """Put the kept weights and optimizer state back into ``model``; False if none were kept."""
        if self._weights is None:
            return False
        model.set_weights(self._weights)
        for variable, value in zip(model.optimizer.variables, self._optimizer):
            variable.assign(value)
        return True


#: Seconds of training between two checkpoints of a running run (``NNLAB_CHECKPOINT_SECONDS``):
#: what a run killed outright loses at most. Not a config key: it changes no result.
CHECKPOINT_SECONDS_ENV = "NNLAB_CHECKPOINT_SECONDS"
CHECKPOINT_SECONDS = 60.0


def checkpoint_seconds() -> float:
    """:data:`CHECKPOINT_SECONDS`, or the environment's ``NNLAB_CHECKPOINT_SECONDS``."""
    try:
        return max(0.0, float(os.environ.get(CHECKPOINT_SECONDS_ENV, CHECKPOINT_SECONDS)))
    except ValueError:
        return CHECKPOINT_SECONDS


class PeriodicCheckpoint(_Callback):
    """Calls ``save(epoch)`` (1-based) at an epoch's end once :func:`checkpoint_seconds` have passed
    since the fit began or the last save; the history file is flushed first, so it always holds
    the checkpoint's epochs. Epochs whose loss is NaN or infinite are not saved.

    Args:
        save: saves the model as the run's checkpoint of that epoch.
        flush: writes the history rows not yet in the file.
    """

    def __init__(self, save: Callable[[int], None], flush: Callable[[], None]):
        super().__init__()
        self.save, self.flush = save, flush
        self.seconds = checkpoint_seconds()
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        if time.perf_counter() - self._last >= self.seconds:
            self.flush()
            self.save(epoch + 1)
            self._last = time.perf_counter()


class DivergenceGuard(_Callback):
    """Stops training when the loss becomes NaN or infinite, and remembers the epoch."""

    def __init__(self):
        super().__init__()
        self.diverged_at: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = self._epoch + 1
            self.model.stop_training = True


class StopCheck(_Callback):
    """Ends training for a stop signal whose exception was lost (see :func:`nnlab.interrupts.stop_signals`)."""

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        raise_pending()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        raise_pending()


class EpochReporter(_Callback):
    """Calls ``report(epoch, epochs, logs, seconds)`` after every epoch.

    Args:
        report: the progress callback.
        epochs: the last epoch.
        seconds: returns the epoch's seconds when the fit measured them itself (a fused fit
            replays finished epochs, so the time between the callbacks is not the epoch's), or None.
    """

    def __init__(self, report: Callable[[int, int, dict[str, float], float], None], epochs: int,
                 seconds: Callable[[], float | None] | None = None):
        super().__init__()
        self.report = report
        self.epochs = epochs
        self.seconds = seconds
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        measured = self.seconds() if self.seconds is not None else None
        self.report(epoch + 1, self.epochs, logs, time.perf_counter() - self._started if measured is None else measured)


def _is_number(value: Any) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


class PruneCheck(_Callback):
    """Ends training when a search's pruner says so (:class:`nnlab.sweeps.pruning.TrialReporter`).

    Args:
        judge: ``judge(epoch, logs)``: True when the trial is to stop after this epoch.
        until_decision: ``until_decision(epochs_done)``: epochs to the next epoch ``judge`` may stop at
            (None: none left); a fused fit ends its chunk there, so no epoch past it is trained.
    """

    def __init__(self, judge: Callable[[int, dict[str, Any]], bool], until_decision: Callable[[int], int | None]):
        super().__init__()
        self.judge, self.until_decision = judge, until_decision
        self.stopped_at: int | None = None  # 1-based epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.judge(epoch, dict(logs or {})):
            self.stopped_at = epoch + 1
            self.model.stop_training = True

    def epochs_until_decision(self, epochs_done: int) -> int | None:
        """See ``until_decision``."""
        return self.until_decision(epochs_done)

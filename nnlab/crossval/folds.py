"""One fold of a k-fold validation: train on these rows, validate on those, through the one fit.

A fold is a pure function, :func:`run_fold`, of the config, the fold index and the
seed: it returns its history, its metrics and the files it made (TensorBoard logs)
and writes nothing the driver needs, so a process pool (``--jobs``) or a Ray cluster
can run it. It trains through :class:`nnlab.training.fit.Fit`, as ``nnlab train`` does,
with the feed's options for many short epochs.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nnlab.config import Config, config_from_dict
from nnlab.datasets.base import Dataset
from nnlab.errors import NnlabError
from nnlab.store.format import Status


class FoldReport(Protocol):
    """What the driver tells a progress display (see :class:`nnlab.views.progress.KFoldProgress`)."""

    def fold_started(self, fold: int, k: int, epochs: int) -> None: ...

    def epoch(self, fold: int, epoch: int, epochs: int, logs: dict[str, float]) -> None: ...

    def fold_finished(self, result: "FoldResult") -> None: ...

    def final_started(self, epochs: int) -> None: ...


@dataclass
class FoldResult:
    """What one fold returns: plain, picklable data.

    Args:
        fold: the fold's 0-based index (folders and tables number folds from 1).
        k: number of folds.
        history: every metric per epoch, validation metrics as ``val_*``.
        validation: the validation metrics of the model at the end of the fold.
        train_rows, validation_rows: rows trained and validated on.
        epochs_run: epochs finished (fewer than planned after early stopping).
        status: ``completed`` or ``diverged``.
        message: why, when not completed.
        wall_time_s: seconds the fold took.
        execution: what ran (:meth:`nnlab.training.fit.Fit.execution`).
        directions: ``{metric: "max" | "min"}`` from the fold model's metric objects.
        files: files the fold made, by path relative to its fold folder (TensorBoard logs).
    """

    fold: int
    k: int
    history: dict[str, list[float]]
    validation: dict[str, float]
    train_rows: int
    validation_rows: int
    epochs_run: int
    status: str = Status.COMPLETED.value
    message: str | None = None
    wall_time_s: float = 0.0
    execution: dict[str, Any] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict, repr=False)


class FoldError(Exception):
    """A fold that raised, carried back from a worker as plain text (Keras's errors do not all pickle).

    Args:
        message: the reason, one line.
        details: the worker's traceback.
    """

    def __init__(self, message: str, details: str = ""):
        super().__init__(message, details)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


def fold_indices(n: int, k: int, shuffle: bool = False, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row indices of each fold's training and validation rows (scikit-learn's KFold).

    Without shuffle the validation folds are contiguous blocks in order, as in the
    lesson's listing (the first ``n % k`` folds get one row more); with shuffle the
    rows are permuted with ``seed`` first.

    Args:
        n: rows of the training part.
        k: number of folds (2 to n).
        shuffle: permute the rows before cutting them into folds.
        seed: the permutation's seed.

    Returns:
        ``k`` pairs ``(train_rows, validation_rows)``; every row is validated on exactly once.
    """
    from sklearn.model_selection import KFold

    splitter = KFold(n_splits=k, shuffle=shuffle, random_state=seed % 2**32 if shuffle else None)
    return list(splitter.split(np.zeros((n, 1))))


def fold_seed(seed: int, fold: int) -> int:
    """The seed a fold's model and batches are drawn with: the same whichever process runs it."""
    return (seed + fold) % 2**32


def run_fold(config_dict: dict[str, Any], fold: int, k: int, seed: int, data_dir: str | None = None,
             epochs: int | None = None) -> FoldResult:
    """Train and validate one fold, from plain data: what a worker process or a Ray task runs.

    Loads the dataset (a process keeps the last one it loaded), cuts the same folds as
    the driver, and calls :func:`train_fold`. Writes nothing.

    Args:
        config_dict: the resolved config (:meth:`Config.to_dict`).
        fold: 0-based index of the fold.
        k: number of folds.
        seed: the config's seed; the fold's model and batches derive from it (the folds are cut with
            ``kfold.split_seed``, the same whatever the seed).
        data_dir: a folder of downloaded dataset files.
        epochs: train this many epochs instead of the config's.

    Returns:
        The fold's history and final validation metrics.

    Raises:
        FoldError: anything that went wrong, as picklable text.
    """
    try:
        config = config_from_dict(config_dict)
        from nnlab.backend import use_backend

        use_backend(config.backend, source=config.source)  # a Ray worker or a pool process: before Keras
        if epochs is not None:
            config = config.with_overrides([f"training.epochs={int(epochs)}"])
        dataset = cached_dataset(config, data_dir)
        train_rows, val_rows = fold_indices(len(dataset.y_train), k, config.kfold.shuffle,
                                            config.kfold.split_seed)[fold]
        return train_fold(config, dataset, fold, k, train_rows, val_rows, seed)
    except FoldError:
        raise
    except Exception as err:  # NnlabError, or whatever Keras raises, as text that survives pickling
        raise as_fold_error(err, fold) from None


def as_fold_error(err: Exception, fold: int | None = None) -> FoldError:
    """An exception of a fold as a FoldError naming the fold."""
    from nnlab.keras_objects import keras_reason

    reason = str(err) if isinstance(err, NnlabError) else keras_reason(err)
    prefix = "" if fold is None else f"fold {fold + 1}: "
    return FoldError(prefix + reason, traceback.format_exc())


_DATASETS: dict[str, Dataset] = {}


def _dataset_key(config: Config, data_dir: str | Path | None) -> str:
    import json

    return json.dumps([config.to_dict()["dataset"], None if data_dir is None else str(data_dir)], sort_keys=True,
                      default=str)


def cached_dataset(config: Config, data_dir: str | Path | None, loaded: Dataset | None = None) -> Dataset:
    """The dataset of ``config``; a process that runs several folds loads it once.

    Args:
        config: the fold's config.
        data_dir: a folder of downloaded dataset files.
        loaded: the dataset already loaded by the caller (the driver), kept for its own folds.
    """
    from nnlab.datasets.loading import load_dataset

    key = _dataset_key(config, data_dir)
    if loaded is not None or key not in _DATASETS:
        _DATASETS.clear()  # keep one: a process runs the folds of one experiment at a time
        _DATASETS[key] = loaded if loaded is not None else load_dataset(config, data_dir)
    return _DATASETS[key]


def train_fold(config: Config, dataset: Dataset, fold: int, k: int, train_rows: np.ndarray,
               val_rows: np.ndarray, seed: int, report: FoldReport | None = None, prune: Any = None) -> FoldResult:
    """Train a fresh model on ``train_rows`` and validate it on ``val_rows`` every epoch.

    Args:
        config: the validated config.
        dataset: the loaded dataset.
        fold: 0-based index of the fold.
        k: number of folds.
        train_rows, val_rows: row indices into the training part.
        seed: the k-fold seed.
        report: progress display, or None.
        prune: a search's :class:`~nnlab.training.callbacks.PruneCheck` for this fold, or None.

    Returns:
        The fold's result (status ``diverged`` when its loss became NaN, ``pruned`` when ``prune``
        stopped it).
    """
    from nnlab.backend import seed_everything
    from nnlab.metric_names import directions_of
    from nnlab.model import build_model
    from nnlab.training.data import prepare
    from nnlab.training.feed import configure_execution
    from nnlab.training.fit import Fit
    from nnlab.training.results import divergence_message, pruned_message

    clock = time.perf_counter()
    seed_everything(fold_seed(seed, fold), config.training.deterministic)
    data = prepare(config, dataset, train_rows, val_rows)  # preprocessing fitted on train_rows only
    model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
    configure_execution(model, config)
    progress = None
    if report is not None:
        def progress(epoch: int, total: int, logs: dict[str, float], seconds: float) -> None:
            report.epoch(fold, epoch, total, logs)
    with tempfile.TemporaryDirectory(prefix="nnlab-fold-") as scratch:
        fitting = Fit(config, model, data, seed=fold_seed(seed, fold), report=progress,
                      tensorboard_dir=Path(scratch) / "tensorboard", repeat=True,
                      extra_callbacks=None if prune is None else [prune])
        fitting.run()
        files = {str(p.relative_to(scratch)): p.read_bytes() for p in sorted(Path(scratch).rglob("*")) if p.is_file()}
    result = FoldResult(fold=fold, k=k, history=fitting.history, validation=fitting.feed.measure_validation(model),
                        train_rows=len(train_rows), validation_rows=len(val_rows), epochs_run=fitting.epochs_done,
                        execution=fitting.execution(), directions=directions_of(model), files=files)
    if fitting.diverged_at is not None:
        result.status = Status.DIVERGED.value
        result.message = f"fold {fold + 1}: {divergence_message(fitting.diverged_at)}"
    elif prune is not None and prune.stopped_at is not None:
        result.status = Status.PRUNED.value
        result.message = pruned_message(prune.stopped_at, fitting.epochs, f"fold {fold + 1}: ")
    result.wall_time_s = round(time.perf_counter() - clock, 3)
    return result

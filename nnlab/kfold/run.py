"""``nnlab kfold``: k-fold validation, averaged learning curves, the best epoch, the final model.

A small training part (Boston housing has 404 rows) gives a validation score that
swings with the split, so it is cut into k folds: each fold trains a fresh model on
the other k - 1 and validates on itself every epoch. The per-epoch validation
curves are averaged over the folds, the best epoch is read off the averaged curve,
and ``--final`` trains one model on the whole training part for that many epochs
and evaluates it once on the test set, which k-fold never touches.

Everything fitted to data (standardization) is fitted on each fold's training rows
only: the lesson's listing normalizes with statistics of the whole training part
before splitting, which lets the validation fold leak into its own preprocessing.

A fold is a pure function, :func:`run_fold`, of the config, the fold index and the
seed: it returns its history and metrics and writes nothing, so a process pool
(``--jobs``) or a Ray cluster can run it. Only the driver, :func:`run_kfold`, writes
the run folder ``runs/<timestamp>_<name>_kfold/``.
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nnlab.config import Config, config_from_dict
from nnlab.datasets.base import Dataset
from nnlab.errors import NnlabError
from nnlab.interrupts import Interrupted, stop_signals
from nnlab.runs.folder import RunFolder, utc_now, write_history_csv

#: Validation sets up to this many rows are measured as one batch after each epoch.
ONE_BATCH_ROWS = 4096
#: The most training steps run in one call into the backend (a Ctrl-C waits for at most one call).
MAX_STEPS_PER_EXECUTION = 128


class FoldReport(Protocol):
    """What the driver tells a progress display (see :class:`nnlab.views.console.KFoldProgress`)."""

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
    """

    fold: int
    k: int
    history: dict[str, list[float]]
    validation: dict[str, float]
    train_rows: int
    validation_rows: int
    epochs_run: int
    status: str = "completed"
    message: str | None = None
    wall_time_s: float = 0.0


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


@dataclass
class KFoldResult:
    """What :func:`run_kfold` returns."""

    run: RunFolder
    metrics: dict[str, Any]
    summary: dict[str, Any]
    folds: list[FoldResult] = field(default_factory=list)
    exit_code: int = 0


# -- folds -----------------------------------------------------------------------------------

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

    Loads the dataset (a worker keeps the last one it loaded), cuts the same folds as
    the driver, fits preprocessing on the fold's training rows only, trains a fresh
    model and validates it on the held-out fold every epoch. Writes nothing.

    Args:
        config_dict: the resolved config (:meth:`Config.to_dict`).
        fold: 0-based index of the fold.
        k: number of folds.
        seed: the k-fold seed (the config's seed); splits and the fold's model derive from it.
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
        dataset = _cached_dataset(config, data_dir)
        train_rows, val_rows = fold_indices(len(dataset.y_train), k, config.kfold.shuffle, seed)[fold]
        return train_fold(config, dataset, fold, k, train_rows, val_rows, seed)
    except NnlabError as err:
        raise FoldError(str(err), traceback.format_exc()) from None
    except Exception as err:  # whatever Keras or the backend raises, as text that survives pickling
        from nnlab.keras_objects import keras_reason

        raise FoldError(keras_reason(err), traceback.format_exc()) from None


_DATASETS: dict[str, Dataset] = {}


def _cached_dataset(config: Config, data_dir: str | None) -> Dataset:
    """The dataset of ``config``; a worker that runs several folds loads it once."""
    import json

    from nnlab.datasets.loading import load_dataset

    key = json.dumps([config.to_dict()["dataset"], data_dir], sort_keys=True, default=str)
    if key not in _DATASETS:
        _DATASETS.clear()  # keep one: a worker runs the folds of one experiment at a time
        _DATASETS[key] = load_dataset(config, data_dir)
    return _DATASETS[key]


def train_fold(config: Config, dataset: Dataset, fold: int, k: int, train_rows: np.ndarray,
               val_rows: np.ndarray, seed: int, report: FoldReport | None = None) -> FoldResult:
    """Train a fresh model on ``train_rows`` and validate it on ``val_rows`` every epoch.

    Args:
        config: the validated config.
        dataset: the loaded dataset.
        fold: 0-based index of the fold.
        k: number of folds.
        train_rows, val_rows: row indices into the training part.
        seed: the k-fold seed.
        report: progress display, or None.

    Returns:
        The fold's result (status ``diverged`` when its loss became NaN).
    """
    from nnlab.backend import seed_everything
    from nnlab.model import build_model
    from nnlab.train.run import prepare

    clock = time.perf_counter()
    seed_everything(fold_seed(seed, fold), config.training.deterministic)
    data = prepare(config, dataset, train_rows, val_rows)  # preprocessing fitted on train_rows only
    model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
    epochs = config.training.epochs
    progress = None
    if report is not None:
        def progress(epoch: int, total: int, logs: dict[str, float], seconds: float) -> None:
            report.epoch(fold, epoch, total, logs)
    log, guard, validator = fit(config, model, data.x_train, data.y_train, epochs=epochs,
                                seed=fold_seed(seed, fold), validation=data.validation, report=progress)
    result = FoldResult(fold=fold, k=k, history=log.history, validation=validator.measure(),
                        train_rows=len(train_rows), validation_rows=len(val_rows), epochs_run=log.epochs_done)
    if guard.diverged_at is not None:
        result.status = "diverged"
        result.message = (f"fold {fold + 1}: the loss became NaN or infinite in epoch {guard.diverged_at}; "
                          "lower the learning rate")
    result.wall_time_s = round(time.perf_counter() - clock, 3)
    return result


# -- fitting ---------------------------------------------------------------------------------

def fit(config: Config, model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int,
        validation: tuple[np.ndarray, np.ndarray] | None = None, report: Any = None,
        history_path: Path | None = None, early_stopping: bool = True):
    """model.fit for many short epochs, with the per-epoch overhead taken out.

    A fold of Boston housing is 100 epochs of 19 small batches, where Keras's own
    per-epoch work (a new input iterator, a full ``evaluate`` for validation_data)
    costs several times the arithmetic. Here the batches come from one repeating
    tf.data pipeline (shuffled anew each epoch, like fit's own shuffle), one epoch's
    steps run in one backend call (steps_per_execution), and the validation rows are
    measured as one batch (:func:`validation_callback`). The updates are the same
    as those of fit on arrays; only the order of the shuffled batches differs.

    tf.data and steps_per_execution are TensorFlow's. On JAX each epoch is one
    compiled call over the arrays put on the device once (:mod:`nnlab.train.device_loop`);
    on PyTorch (or JAX with ``input_pipeline: arrays``) this is model.fit on the
    arrays, with the same batch size, shuffle, callbacks and history.

    Args:
        config: the validated config (batch size, shuffle, early stopping).
        model: the compiled model.
        x, y: the training arrays.
        epochs: epochs to train.
        seed: seed of the batch shuffle.
        validation: ``(x_val, y_val)`` to measure after every epoch, or None.
        report: ``report(epoch, epochs, logs, seconds)`` after every epoch, or None.
        history_path: a history.csv to append each epoch to, or None.
        early_stopping: apply the config's early stopping (when there is validation data).

    Returns:
        ``(history_log, divergence_guard, validation_callback or None)``.
    """
    from nnlab.backend import keras
    from nnlab.train.callbacks import DivergenceGuard, EpochReporter, HistoryLog, StopCheck
    from nnlab.train.run import batch_size

    k = keras()
    size = batch_size(config, len(x))
    steps = math.ceil(len(x) / size)
    tensorflow = uses_tf_data()
    if tensorflow and getattr(model, "steps_per_execution", 1) == 1:
        # A plain attribute of Keras's trainer, read when fit builds its train function.
        model.steps_per_execution = steps_per_execution(steps)
    validator = None if validation is None else validation_callback(*validation, size)
    log, guard = HistoryLog(history_path), DivergenceGuard()
    # The validation callback runs first: the others see its val_* entries in the epoch's logs.
    callbacks = [c for c in (validator, log, guard) if c is not None]
    if report is not None:
        callbacks.append(EpochReporter(report, epochs))
    stop = config.training.early_stopping
    if stop is not None and early_stopping and validation is not None:
        callbacks.append(k.callbacks.EarlyStopping(monitor=stop.monitor, patience=stop.patience,
                                                   min_delta=stop.min_delta,
                                                   restore_best_weights=stop.restore_best_weights))
    callbacks.append(StopCheck())  # last: a stop ends training after the epoch is recorded
    if tensorflow:
        model.fit(batches(x, y, size, shuffle=config.training.shuffle, seed=seed), epochs=epochs,
                  steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=callbacks)
    elif uses_device_loop(config, x, y):
        from nnlab.train import device_loop

        device_loop.fit(model, x, y, batch_size=size, epochs=epochs, shuffle=config.training.shuffle, seed=seed,
                        callbacks=callbacks)
    else:  # fit's own shuffle draws from the seeded global generators
        model.fit(x, y, batch_size=size, epochs=epochs, shuffle=config.training.shuffle, verbose=0,
                  callbacks=callbacks)
    return log, guard, validator


def uses_tf_data() -> bool:
    """Whether :func:`fit` feeds Keras from a tf.data pipeline: on the TensorFlow backend only."""
    from nnlab.backend import keras

    return keras().backend.backend() == "tensorflow"


def uses_device_loop(config: Config, x: np.ndarray, y: np.ndarray) -> bool:
    """Whether :func:`fit` runs each epoch as one compiled call on the device (JAX; see nnlab.train.device_loop)."""
    from nnlab.backend import keras
    from nnlab.train.feed import feed_kind, pipeline

    return feed_kind(pipeline(config, keras().backend.backend()), x, y) == "device"


def steps_per_execution(steps: int, cap: int = MAX_STEPS_PER_EXECUTION) -> int:
    """The largest divisor of an epoch's ``steps`` up to ``cap``, so that epochs end on a call's end."""
    return max(d for d in range(1, min(steps, cap) + 1) if steps % d == 0)


def batches(x: np.ndarray, y: np.ndarray, size: int, *, shuffle: bool, seed: int):
    """:func:`nnlab.train.feed.batches`, repeated without end (a fold's fit counts its steps per epoch).

    Each pass has ``ceil(len(x) / size)`` batches, the last one partial, as fit on
    arrays has, reshuffled each pass when ``shuffle``.
    """
    from nnlab.train.feed import batches as one_pass

    return one_pass(x, y, size, shuffle=shuffle, seed=seed).repeat()


def validation_callback(x: np.ndarray, y: np.ndarray, size: int):
    """A Keras callback that measures the validation metrics after every epoch.

    It adds them to the epoch's logs as ``val_*`` (as fit's validation_data does),
    measuring up to :data:`ONE_BATCH_ROWS` rows as one batch instead of running a
    whole ``evaluate`` per epoch. ``measure()`` gives the current values.
    """
    from nnlab.backend import keras

    class ValidationLog(keras().callbacks.Callback):
        def measure(self) -> dict[str, float]:
            if len(x) <= ONE_BATCH_ROWS:
                result = self.model.test_on_batch(x, y, return_dict=True)
            else:
                result = self.model.evaluate(x, y, batch_size=max(size, 256), verbose=0, return_dict=True)
            return {name: float(value) for name, value in result.items()}

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if logs is not None:
                logs.update({f"val_{name}": value for name, value in self.measure().items()})

    return ValidationLog()


# -- across folds ----------------------------------------------------------------------------

def smooth_curve(values: list[float] | np.ndarray, factor: float) -> np.ndarray:
    """Exponential moving average, as the lesson smooths its validation curve.

    ``smoothed[0] = values[0]``; ``smoothed[i] = factor * smoothed[i-1] + (1 - factor) * values[i]``.
    """
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    for i, value in enumerate(values):
        out[i] = value if i == 0 else factor * out[i - 1] + (1 - factor) * value
    return out


def mean_history(histories: list[dict[str, list[float]]]) -> dict[str, dict[str, np.ndarray]]:
    """Per epoch, the mean and standard deviation (ddof 0) of every metric across folds.

    Folds that stopped early count only for the epochs they ran.

    Returns:
        ``{metric: {"mean": array, "std": array, "folds": array of how many folds ran the epoch}}``.
    """
    names = list(dict.fromkeys(name for h in histories for name in h))
    out = {}
    for name in names:
        curves = [np.asarray(h.get(name, []), dtype=float) for h in histories]
        length = max((len(c) for c in curves), default=0)
        table = np.full((len(curves), length), np.nan)
        for i, curve in enumerate(curves):
            table[i, : len(curve)] = curve
        present = np.sum(~np.isnan(table), axis=0)
        with warnings.catch_warnings():  # "mean of empty slice" for an epoch no fold reached
            warnings.simplefilter("ignore", category=RuntimeWarning)
            out[name] = {"mean": np.nanmean(table, axis=0), "std": np.nanstd(table, axis=0), "folds": present}
    return out


def pick_best_epoch(curve: list[float] | np.ndarray, monitor: str, smoothing: float = 0.0) -> dict[str, Any] | None:
    """The best epoch of an averaged validation curve.

    The lowest value (the highest for accuracy-like monitors), after an optional
    exponential moving average with factor ``smoothing``.

    Returns:
        ``{"monitor", "epoch" (1-based), "value" (the mean at that epoch), "smoothing",
        "smoothed_value"}``, or None when the curve is empty or all NaN.
    """
    from nnlab.train.run import best_epoch

    curve = np.asarray(curve, dtype=float)
    if not len(curve) or np.all(np.isnan(curve)):
        return None
    scored = smooth_curve(curve, smoothing) if smoothing else curve
    best = best_epoch({monitor: list(scored)}, monitor)
    if best is None:
        return None
    epoch = best["epoch"]
    return {"monitor": monitor, "epoch": epoch, "value": float(curve[epoch - 1]), "smoothing": smoothing,
            "smoothed_value": float(scored[epoch - 1])}


def summarize(folds: list[FoldResult], monitor: str, smoothing: float = 0.0) -> dict[str, Any]:
    """The k-fold figures: per fold, mean and std of the final validation metrics, the best epoch.

    Args:
        folds: the finished folds.
        monitor: the validation metric the best epoch is read from.
        smoothing: exponential moving average factor for the best-epoch pick.

    Returns:
        A JSON-friendly dict (kfold.json's figures) plus ``curves``, the per-epoch
        statistics of :func:`mean_history` (arrays; not JSON).
    """
    names = list(dict.fromkeys(name for f in folds for name in f.validation))
    finals = {name: np.asarray([f.validation.get(name, np.nan) for f in folds], dtype=float) for name in names}
    curves = mean_history([f.history for f in folds])
    best = None
    if monitor in curves:
        # Epochs that every fold ran (early stopping can end folds at different epochs).
        common = int(np.sum(curves[monitor]["folds"] == len(folds)))
        best = pick_best_epoch(curves[monitor]["mean"][:common], monitor, smoothing)
    return {
        "folds": [{"fold": f.fold + 1, "status": f.status, "train_rows": f.train_rows,
                   "validation_rows": f.validation_rows, "epochs_run": f.epochs_run,
                   "validation": f.validation, "wall_time_s": f.wall_time_s} for f in folds],
        "mean": {name: float(np.mean(v)) for name, v in finals.items()},
        "std": {name: float(np.std(v)) for name, v in finals.items()},
        "best": best,
        "curves": curves,
    }


def history_mean_table(curves: dict[str, dict[str, np.ndarray]]) -> dict[str, list[float]]:
    """history_mean.csv's columns: ``<metric>_mean``, ``<metric>_std`` per metric, then ``folds``."""
    table: dict[str, list[float]] = {}
    for name, stats in curves.items():
        table[f"{name}_mean"] = [float(v) for v in stats["mean"]]
        table[f"{name}_std"] = [float(v) for v in stats["std"]]
    if curves:
        table["folds"] = [int(v) for v in next(iter(curves.values()))["folds"]]
    return table


# -- the driver ------------------------------------------------------------------------------

def run_kfold(config: Config, *, runs_dir: str | Path = "runs", data_dir: str | Path | None = None,
              final: bool = False, jobs: int = 1, executor: Any = None, report: FoldReport | None = None,
              argv: list[str] | None = None, tags: dict[str, Any] | None = None,
              workers: "FoldWorkers | None" = None) -> KFoldResult:
    """Run a k-fold validation of ``config`` and write its run folder.

    Args:
        config: the validated config; ``kfold`` gives k, shuffle, monitor, smoothing.
        runs_dir: the runs root.
        data_dir: a folder of downloaded dataset files.
        final: afterwards train one model on the whole training part for the best
            epoch count and evaluate it on the test set.
        jobs: worker processes for the folds (1: one after another in this process).
        executor: an :class:`nnlab.executors.Executor` to run the folds on instead
            (a sweep's process pool or Ray); it runs :func:`run_fold`.
        report: progress display, or None.
        argv: the command line to record in env.json.
        tags: extra keys for metrics.json (a sweep's id and the trial's parameters).
        workers: fold workers already started by :func:`start_workers` (``nnlab kfold``
            starts them before it reads the config); otherwise ``jobs`` starts them
            here. Stopped when the run ends.

    Returns:
        The folder, metrics.json's content, the k-fold summary, the folds and the exit
        code (0 completed, 1 failed or diverged, 130/143 interrupted).

    Raises:
        NnlabError: for anything refused before the run folder exists.
        RunWriteError: when the run folder cannot be written.
    """
    from nnlab.backend import use_backend
    from nnlab.datasets.loading import load_dataset
    from nnlab.train.feed import pipeline

    use_backend(config.backend, source=config.source)
    pipeline(config, config.backend)  # refuses a pipeline the backend cannot run before anything is written
    settings = config.kfold
    k = settings.k
    try:
        if workers is None and executor is None:
            workers = start_workers(jobs, k)
        elif workers is not None:
            workers.resize(min(jobs, k) - 1)  # started before k was known
        dataset = load_dataset(config, data_dir)
        n = len(dataset.y_train)
        if k > n:
            raise config.error(("kfold", "k"), f"{k} folds need at least {k} training rows; the training part "
                                               f"has {n}")
        splits = fold_indices(n, k, settings.shuffle, config.seed)
        return _run_and_record(config, dataset, splits, data_dir=data_dir, runs_dir=runs_dir, final=final,
                               jobs=jobs, workers=workers, executor=executor, report=report, argv=argv, tags=tags)
    finally:
        if workers is not None:
            workers.stop()


def _run_and_record(config: Config, dataset: Dataset, splits: list, *, data_dir: str | Path | None,
                    runs_dir: str | Path, final: bool, jobs: int, workers: FoldWorkers | None, executor: Any,
                    report: FoldReport | None, argv: list[str] | None, tags: dict[str, Any] | None) -> KFoldResult:
    """The part of :func:`run_kfold` from the model check on: the folder, the folds, the summary."""
    from nnlab.environment import environment
    from nnlab.train.run import _writing

    settings = config.kfold
    k, n = settings.k, len(dataset.y_train)
    params, model_summary = _check_model(config, dataset, splits[0])
    if workers is not None:
        workers.assign(config.to_dict(), k, config.seed, None if data_dir is None else str(data_dir))

    started = utc_now()
    run = RunFolder.create(runs_dir, config.name, "_kfold", started=started)
    metrics: dict[str, Any] = {
        "run_id": run.run_id, "name": config.name, "kind": "kfold", "dataset": dataset.name,
        "task": dataset.task, "status": "running", "message": None,
        "started": started.isoformat(timespec="seconds"), "finished": None, "wall_time_s": None,
        "epochs_planned": config.training.epochs, "epochs_run": 0, "params": params, "k": k,
        "folds_completed": 0, "train_rows": n, "validation_rows": max(len(v) for _, v in splits),
        "test_rows": len(dataset.y_test), "final": final, "jobs": jobs, **(tags or {}),
    }
    clock = time.perf_counter()
    results: list[FoldResult] = []
    summary: dict[str, Any] = {"k": k, "shuffle": settings.shuffle, "seed": config.seed,
                               "epochs": config.training.epochs, "monitor": settings.monitor,
                               "smoothing": settings.smoothing}
    exit_code = 0
    with _writing(run, metrics):
        run.write_yaml("config.yaml", config.to_dict())
        run.write_json("env.json", {**environment(config.seed, argv), "overrides": config.overrides,
                                    "config_source": config.source, "jobs": jobs})
        run.write_text("summary.txt", model_summary + "\n")
        run.write_json("metrics.json", metrics)

        def record(result: FoldResult) -> None:
            results.append(result)
            write_history_csv(run.file(f"folds/fold_{result.fold + 1}/history.csv"), result.history)
            metrics["folds_completed"] = len(results)
            run.write_json("metrics.json", metrics)
            if report is not None:
                report.fold_finished(result)

        try:
            with stop_signals():
                _run_folds(config, dataset, splits, data_dir, workers, executor, report, record)
        except Interrupted as stop:
            metrics.update(status="interrupted", message=f"stopped by {stop} after {len(results)} of {k} folds")
            exit_code = stop.exit_code
        except FoldError as err:
            metrics.update(status="failed", message=err.message)
            run.write_text("error.txt", err.details or err.message)
            exit_code = 1
        results.sort(key=lambda r: r.fold)
        diverged = [r for r in results if r.status == "diverged"]
        if diverged and metrics["status"] == "running":
            metrics.update(status="diverged", message=diverged[0].message)
            exit_code = 1

        if results:
            figures = summarize(results, settings.monitor, settings.smoothing)
            curves = figures.pop("curves")
            summary.update(figures)
            write_history_csv(run.file("history_mean.csv"), history_mean_table(curves))
            metrics.update(validation=summary["mean"], validation_std=summary["std"], best=summary["best"],
                           epochs_run=max(r.epochs_run for r in results))
            if summary["best"] is None and metrics["status"] == "running":
                metrics.update(status="failed", message=f"no fold reported {settings.monitor}; the folds "
                                                        f"reported {', '.join(sorted(curves))}")
                exit_code = 1
            try:
                metrics["plots"] = [str(p.relative_to(run.path)) for p in
                                    _kfold_plots(config, results, curves, summary["best"], run)]
            except Exception as err:  # a plot must never cost the run its results
                metrics["plots_error"] = str(err)
        if metrics["status"] == "running" and len(results) == k:
            metrics["status"] = "completed"
        summary["folds_completed"] = len(results)
        run.write_json("kfold.json", summary)

        if final and metrics["status"] == "completed":
            exit_code = _final_model(config, dataset, summary, run, metrics, report)
            run.write_json("kfold.json", summary)
        metrics["wall_time_s"] = round(time.perf_counter() - clock, 3)
        metrics["finished"] = utc_now().isoformat(timespec="seconds")
        run.write_json("metrics.json", metrics)
    return KFoldResult(run=run, metrics=metrics, summary=summary, folds=results, exit_code=exit_code)


def _check_model(config: Config, dataset: Dataset, split: tuple[np.ndarray, np.ndarray]) -> tuple[int, str]:
    """Build the model on the first fold's data and evaluate a few rows, before any folder exists.

    This refuses a model that does not fit its data, and a monitor the model does
    not report, while nothing is written yet.

    Returns:
        ``(parameter count, model summary text)``.
    """
    from nnlab.backend import seed_everything
    from nnlab.keras_objects import keras_reason
    from nnlab.model import build_model, count_params, summary_text
    from nnlab.suggestions import unknown_name_message
    from nnlab.train.run import prepare

    seed_everything(config.seed, config.training.deterministic)
    data = prepare(config, dataset, *split)
    model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
    try:
        names = model.test_on_batch(data.x_val[:2], data.y_val[:2], return_dict=True)
    except Exception as err:  # the loss or a metric cannot take these labels
        raise NnlabError(f"the model cannot be evaluated on its data: {keras_reason(err)}",
                         source=config.source) from None
    reported = [f"val_{name}" for name in names]
    if config.kfold.monitor not in reported:
        raise config.error(("kfold", "monitor"), unknown_name_message("monitor", config.kfold.monitor, reported))
    return count_params(model), summary_text(model)


def _run_folds(config: Config, dataset: Dataset, splits: list, data_dir: str | Path | None,
               workers: "FoldWorkers | None", executor: Any, report: FoldReport | None, record) -> None:
    """Train every fold, calling ``record`` as each finishes; stop at the first that fails or diverges.

    Folds run here, one after another (taking turns with ``workers`` when there are
    some), or all on ``executor``.

    Raises:
        FoldError: naming the fold that failed.
    """
    k = len(splits)
    epochs = config.training.epochs
    if executor is not None:
        _run_on_executor(config, k, data_dir, executor, report, record)
        return
    local = iter(range(k))
    done = 0

    def handle(kind: str, fold: int, payload: Any) -> bool:
        """A worker's message; True when the run must stop (a fold diverged)."""
        nonlocal done
        if kind == "started":
            if report is not None:
                report.fold_started(fold, k, epochs)
            return False
        if kind == "failed":
            raise FoldError(f"fold {fold + 1}: {payload.message}", payload.details)
        record(payload)
        done += 1
        return payload.status != "completed"

    while done < k:
        if workers is not None and any(handle(*m) for m in workers.receive()):
            return
        fold = workers.claim() if workers is not None else next(local, None)
        if fold is not None:
            if report is not None:
                report.fold_started(fold, k, epochs)
            result = _train_here(config, dataset, fold, k, splits[fold], report)
            if handle("done", fold, result):
                return
        elif workers is not None:
            # Every fold is taken: wait for the workers' results.
            exited = workers.all_exited()  # seen before reading: what an exited worker sent is readable now
            messages = workers.receive(timeout=0.5)
            if any(handle(*m) for m in messages):
                return
            if not messages:
                workers.check_alive(exited)


def _train_here(config: Config, dataset: Dataset, fold: int, k: int, split: tuple[np.ndarray, np.ndarray],
                report: FoldReport | None) -> FoldResult:
    """:func:`train_fold` in this process, its errors as FoldError."""
    try:
        return train_fold(config, dataset, fold, k, *split, config.seed, report)
    except NnlabError as err:
        raise FoldError(f"fold {fold + 1}: {err}", traceback.format_exc()) from None
    except Exception as err:  # whatever Keras or the backend raises
        from nnlab.keras_objects import keras_reason

        raise FoldError(f"fold {fold + 1}: {keras_reason(err)}", traceback.format_exc()) from None


def _run_on_executor(config: Config, k: int, data_dir: str | Path | None, executor: Any,
                     report: FoldReport | None, record) -> None:
    """Every fold as a :func:`run_fold` task on an :class:`nnlab.executors.Executor` (a sweep's pool, Ray)."""
    config_dict = config.to_dict()
    tasks = [(config_dict, fold, k, config.seed, None if data_dir is None else str(data_dir), None)
             for fold in range(k)]
    if report is not None:
        for fold in range(k):
            report.fold_started(fold, k, config.training.epochs)
    for fold, result, error in executor.run(run_fold, tasks):
        if error is not None:
            message = error.message if isinstance(error, FoldError) else str(error)
            raise FoldError(f"fold {fold + 1}: {message}", getattr(error, "details", ""))
        record(result)
        if result.status != "completed":
            return


def start_workers(jobs: int, k: int | None = None) -> "FoldWorkers | None":
    """``--jobs N``: start the N - 1 fold worker processes now, before the folds are known.

    A worker's first seconds go to importing TensorFlow; started before this process
    imports it (reading a config imports Keras), both start-ups run side by side.
    While k is unknown, no more start than there are cores (:meth:`FoldWorkers.resize`
    adds the rest or stops the surplus once k is known). When TensorFlow is not
    imported here yet, this process's math threads are limited to its share of the
    cores too, since it trains folds as well.

    Args:
        jobs: processes training folds, this one included.
        k: the number of folds when known (no more workers than folds).

    Returns:
        The workers, or None when ``jobs`` (or ``k``) is 1.
    """
    import sys

    from nnlab.executors import limit_threads, worker_threads

    processes = min(jobs, k or jobs)
    if processes < 2:
        return None
    threads = worker_threads(processes)
    if "keras" not in sys.modules and "tensorflow" not in sys.modules:
        limit_threads(threads)
    early = processes if k else min(processes, max(2, worker_threads(1)))
    return FoldWorkers(early - 1, threads)


class FoldWorkers:
    """``--jobs N``: N - 1 worker processes that take folds from a shared counter, as the driver does.

    The driver trains folds too, between reading the workers' results: it has
    imported TensorFlow for its checks anyway, so N jobs cost N - 1 more TensorFlow
    start-ups, not N. Each worker is a fresh interpreter (spawn) with its own
    TensorFlow, its math threads a share of the cores. It imports TensorFlow as soon
    as it starts, then waits for the experiment (:meth:`assign`), so it can be
    started before the config is even read; then it runs :func:`run_fold` on the
    folds it claims, and ignores Ctrl-C: the driver records the stop and terminates it.

    Args:
        count: worker processes to start.
        threads: math threads of each worker.
    """

    def __init__(self, count: int, threads: int):
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no TensorFlow state shared
        self.k = 0
        self._next = context.Value("i", 0)
        self._jobs = context.Queue()
        self._results = context.Queue()
        self._holding: dict[int, int] = {}  # worker pid -> the fold it trains
        self._context, self._threads = context, threads
        self._processes: list[Any] = []
        self.resize(count)

    def resize(self, count: int) -> None:
        """Start workers up to ``count``, or stop those above it (before :meth:`assign` only)."""
        while len(self._processes) < count:
            process = self._context.Process(target=_fold_worker, daemon=True,
                                            name=f"nnlab-fold-worker-{len(self._processes) + 1}",
                                            args=(self._threads, self._jobs, self._next, self._results))
            process.start()
            self._processes.append(process)
        for process in self._processes[max(count, 0):]:
            process.terminate()
            process.join(timeout=5)
        del self._processes[max(count, 0):]

    def assign(self, config_dict: dict[str, Any], k: int, seed: int, data_dir: str | None) -> None:
        """Hand every worker the experiment whose folds they claim (as for :func:`run_fold`); once."""
        self.k = k
        for _ in self._processes:
            self._jobs.put((config_dict, k, seed, data_dir))

    def claim(self) -> int | None:
        """The next fold nobody has taken, or None."""
        return _claim(self._next, self.k)

    def receive(self, timeout: float = 0.0) -> list[tuple[str, int, Any]]:
        """The workers' messages so far (waiting up to ``timeout`` s for the first):
        ``("started", fold, None)``, ``("done", fold, FoldResult)``, ``("failed", fold, FoldError)``."""
        import queue

        messages = []
        try:
            messages.append(self._results.get(timeout=timeout) if timeout else self._results.get_nowait())
            while True:
                messages.append(self._results.get_nowait())
        except queue.Empty:
            pass
        out = []
        for kind, fold, pid, payload in messages:
            if kind == "started":
                self._holding[pid] = fold
            else:
                self._holding.pop(pid, None)
            out.append((kind, fold, payload))
        return out

    def all_exited(self) -> bool:
        """Whether every worker process has ended."""
        return all(process.exitcode is not None for process in self._processes)

    def check_alive(self, exited: bool = False) -> None:
        """Raise FoldError when a worker died (killed, out of memory) while it held a fold.

        Args:
            exited: every worker had ended before the last :meth:`receive` found nothing,
                while folds are still missing: one died between claiming a fold and
                saying so.
        """
        for process in self._processes:
            if process.exitcode not in (None, 0) and process.pid in self._holding:
                fold = self._holding.pop(process.pid)
                raise FoldError(f"fold {fold + 1}: its worker process died (exit code {process.exitcode})")
        if exited:
            codes = ", ".join(str(p.exitcode) for p in self._processes)
            raise FoldError(f"a fold worker process died before it reported its fold (exit codes {codes})")

    def stop(self) -> None:
        """Terminate the workers still running (after the last fold, a stop, a failure or a refusal)."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=5)
        self._jobs.close()
        self._results.close()


def _claim(counter: Any, k: int) -> int | None:
    """Take the next fold index from a shared counter (None when all are taken)."""
    with counter.get_lock():
        fold = counter.value
        if fold >= k:
            return None
        counter.value = fold + 1
        return fold


def _fold_worker(threads: int, jobs: Any, counter: Any, results: Any) -> None:
    """A worker process's life: set its threads, import TensorFlow, wait for the experiment, then
    train its folds until none is left."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group; the driver handles it
    from nnlab.executors import limit_threads

    limit_threads(threads)
    from nnlab.backend import keras

    if keras().backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    config_dict, k, seed, data_dir = jobs.get()
    while (fold := _claim(counter, k)) is not None:
        results.put(("started", fold, os.getpid(), None))
        try:
            results.put(("done", fold, os.getpid(), run_fold(config_dict, fold, k, seed, data_dir)))
        except FoldError as err:
            results.put(("failed", fold, os.getpid(), err))


def _kfold_plots(config: Config, folds: list[FoldResult], curves: dict[str, dict[str, np.ndarray]],
                 best: dict[str, Any] | None, run: RunFolder) -> list[Path]:
    """Per validation metric: the averaged curve over the faint folds, whole and without the first epochs."""
    from nnlab import plots

    written = []
    skip = config.kfold.skip_first_epochs
    monitor = config.kfold.monitor
    for name in [n for n in curves if n.startswith("val_")]:
        mean = curves[name]["mean"]
        smoothed = None
        if name == monitor and config.kfold.smoothing:
            smoothed = smooth_curve(mean, config.kfold.smoothing)
        kwargs = {"metric": name, "best_epoch": best["epoch"] if best else None, "best_label": monitor,
                  "smoothed": smoothed, "title": config.name}
        per_fold = [f.history.get(name, []) for f in folds]
        written.append(plots.kfold_curve(mean, per_fold, run.path / "plots" / f"kfold_{name}.png", **kwargs))
        if skip and len(mean) > skip:
            written.append(plots.kfold_curve(mean, per_fold, run.path / "plots" / f"kfold_{name}_after_{skip}.png",
                                             skip_first=skip, **kwargs))
    return written


def _final_model(config: Config, dataset: Dataset, summary: dict[str, Any], run: RunFolder,
                 metrics: dict[str, Any], report: FoldReport | None) -> int:
    """Train on the whole training part for the best epoch count; evaluate once on the test set.

    Records the outcome in ``metrics`` (and ``summary["final"]``).

    Returns:
        The exit code: 0 completed, 1 failed or diverged, 130/143 interrupted.
    """
    from nnlab.backend import seed_everything
    from nnlab.baselines import baseline
    from nnlab.keras_objects import keras_reason
    from nnlab.model import build_model
    from nnlab.train.run import batch_size, draw_plots, evaluate, prepare

    epochs = summary["best"]["epoch"]
    metrics["final_epochs"] = epochs
    if report is not None:
        report.final_started(epochs)
    progress = None if report is None else (lambda e, n, logs, s: report.epoch(-1, e, n, logs))
    try:
        with stop_signals():
            seed_everything(config.seed, config.training.deterministic)
            rows = np.arange(len(dataset.y_train))
            data = prepare(config, dataset, rows, None)
            model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
            log, guard, _ = fit(config, model, data.x_train, data.y_train, epochs=epochs, seed=config.seed,
                                report=progress, history_path=run.file("final_history.csv"),
                                early_stopping=False)
            write_history_csv(run.file("final_history.csv"), log.history)
            if guard.diverged_at is not None:
                metrics.update(status="diverged", message=f"the final model's loss became NaN or infinite in "
                                                          f"epoch {guard.diverged_at}; lower the learning rate")
                return 1
            size = batch_size(config, len(data.x_train))
            metrics["train"] = evaluate(model, data.x_train, data.y_train, size)
            metrics["test"] = evaluate(model, data.x_test, data.y_test, size)
            metrics["baseline"] = baseline(dataset.task, data.x_train, data.y_train, data.x_test, data.y_test,
                                           seed=config.seed)
            summary["final"] = {"epochs": epochs, "train": metrics["train"], "test": metrics["test"],
                                "baseline": metrics["baseline"],
                                "loss": config.loss if isinstance(config.loss, str) else None}
            model.save(run.file("model.keras"))
            try:
                drawn = draw_plots(config, model, data, run, log.history)
                metrics["plots"] = [*metrics.get("plots", []), *(str(p.relative_to(run.path)) for p in drawn)]
            except Exception as err:  # a plot must never cost the run its results
                metrics["plots_error"] = keras_reason(err)
    except Interrupted as stop:
        metrics.update(status="interrupted", message=f"stopped by {stop} while training the final model "
                                                      "(the k-fold results are complete)")
        return stop.exit_code
    except OSError:
        raise  # the run folder cannot be written: handled by the caller
    except Exception as err:
        metrics.update(status="failed", message=f"final model: {keras_reason(err)}")
        run.write_text("error.txt", traceback.format_exc())
        return 1
    return 0


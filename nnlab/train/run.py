"""``nnlab train``: one config in, one run folder out.

The order matters: everything that can be refused (config, data, model against
data) is checked before the run folder exists, so a refused config leaves nothing
behind; from then on the folder's status always tells the truth: running,
completed, failed, interrupted or diverged.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nnlab.backend import keras, seed_everything, use_backend
from nnlab.baselines import baseline
from nnlab.config import Config
from nnlab.datasets.base import Dataset
from nnlab.datasets.loading import load_dataset
from nnlab.environment import environment
from nnlab.errors import NnlabError, RunWriteError
from nnlab.train.feed import Feed, configure_execution, pipeline
from nnlab.interrupts import Interrupted, stop_signals
from nnlab.keras_objects import keras_reason
from nnlab.model import build_model, count_params, summary_text
from nnlab.preprocessing import Preprocessor
from nnlab.runs.folder import RunFolder, utc_now, write_history_csv

#: ``report(epoch, epochs, logs, seconds)``, called after every epoch.
EpochReport = Callable[[int, int, dict[str, float], float], None]


@dataclass
class PreparedData:
    """The arrays a model trains, validates and tests on, after preprocessing."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    preprocessor: Preprocessor
    dataset: Dataset

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one preprocessed example."""
        return tuple(self.x_train.shape[1:])

    @property
    def validation(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(x_val, y_val)`` for model.fit, or None."""
        return None if self.x_val is None else (self.x_val, self.y_val)


@dataclass
class RunResult:
    """What ``train`` returns: the folder, its metrics and the process exit code."""

    run: RunFolder
    metrics: dict[str, Any]
    exit_code: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)


def validation_indices(n: int, config: Config) -> tuple[np.ndarray, np.ndarray | None]:
    """Row indices of the part trained on and of the validation part.

    ``validation_holdout: N`` takes the first N rows (as the lesson listings do);
    ``validation_split: f`` takes the last fraction f (as Keras's validation_split does).

    Returns:
        ``(train_rows, validation_rows or None)``.
    """
    t = config.training
    rows = np.arange(n)
    if t.validation_holdout is not None:
        if t.validation_holdout >= n:
            raise config.error(("training", "validation_holdout"),
                               f"holds out {t.validation_holdout} rows but the training part has only {n}")
        return rows[t.validation_holdout:], rows[: t.validation_holdout]
    if t.validation_split is not None:
        cut = int(n * (1 - t.validation_split))
        if cut < 1 or cut >= n:
            raise config.error(("training", "validation_split"), f"leaves no rows on one side of {n}")
        return rows[:cut], rows[cut:]
    return rows, None


def prepare(config: Config, dataset: Dataset, train_rows: np.ndarray | None = None,
            val_rows: np.ndarray | None = None) -> PreparedData:
    """Split off validation rows, fit preprocessing on the rest, transform every part.

    Args:
        config: the validated config.
        dataset: the loaded dataset.
        train_rows, val_rows: rows of the training part to train and validate on;
            by default those of :func:`validation_indices` (k-fold passes its folds).

    Returns:
        The preprocessed arrays.
    """
    if train_rows is None:
        train_rows, val_rows = validation_indices(len(dataset.x_train), config)
    x_train, y_train = dataset.x_train[train_rows], dataset.y_train[train_rows]
    pre = Preprocessor.for_config(config, dataset).fit(x_train, y_train)
    x_val = y_val = None
    if val_rows is not None:
        x_val = pre.transform_x(dataset.x_train[val_rows])
        y_val = pre.transform_y(dataset.y_train[val_rows])
    return PreparedData(x_train=pre.transform_x(x_train), y_train=pre.transform_y(y_train), x_val=x_val,
                        y_val=y_val, x_test=pre.transform_x(dataset.x_test),
                        y_test=pre.transform_y(dataset.y_test), preprocessor=pre, dataset=dataset)


def release_sequences(dataset: Dataset) -> None:
    """Free a text dataset's word-index lists once they are multi-hot rows.

    They are Python lists of Python ints (about 400 MB for imdb's 50,000 reviews),
    and nothing after preprocessing reads them; they would stay resident for the
    whole run. An object array of the same length keeps the dataset's shapes.
    """
    if dataset.extras.get("sequences"):
        dataset.x_train = np.empty(len(dataset.x_train), dtype=object)
        dataset.x_test = np.empty(len(dataset.x_test), dtype=object)


def batch_size(config: Config, rows: int) -> int:
    """The batch size to fit with (``full`` means every row in one batch)."""
    size = config.training.batch_size
    return rows if size == "full" else min(int(size), max(rows, 1))


def fit_callbacks(config: Config, run: RunFolder | None, report: EpochReport | None,
                  history: dict[str, list[float]] | None = None):
    """The callbacks of a fit: history log, divergence guard, progress, early stopping, TensorBoard,
    and the check for a lost stop signal.

    Args:
        config: the validated config.
        run: the run folder whose history.csv is appended to, or None.
        report: progress callback, or None.
        history: the history so far, when resuming.

    Returns:
        ``(history_log, divergence_guard, all_callbacks)``.
    """
    from nnlab.train.callbacks import DivergenceGuard, EpochReporter, HistoryLog, StopCheck

    k = keras()
    log = HistoryLog(run.file("history.csv") if run else None, history)
    guard = DivergenceGuard()
    callbacks = [log, guard]
    if report is not None:
        callbacks.append(EpochReporter(report, config.training.epochs))
    stop = config.training.early_stopping
    if stop is not None:
        callbacks.append(k.callbacks.EarlyStopping(monitor=stop.monitor, patience=stop.patience,
                                                   min_delta=stop.min_delta,
                                                   restore_best_weights=stop.restore_best_weights))
    if config.training.tensorboard and run is not None:
        callbacks.append(k.callbacks.TensorBoard(log_dir=str(run.path / "tensorboard")))
    callbacks.append(StopCheck())  # last: a stop ends training after the epoch is recorded
    return log, guard, callbacks


def best_epoch(history: dict[str, list[float]], monitor: str = "val_loss") -> dict[str, Any] | None:
    """The epoch where ``monitor`` was best (lowest, or highest for accuracy-like metrics)."""
    values = history.get(monitor)
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    if np.all(np.isnan(arr)):
        return None
    higher = any(word in monitor for word in ("acc", "auc", "precision", "recall"))
    i = int(np.nanargmax(arr) if higher else np.nanargmin(arr))
    return {"monitor": monitor, "epoch": i + 1, "value": float(arr[i])}


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, size: int) -> dict[str, float]:
    """The compiled metrics of ``model`` on ``(x, y)``."""
    result = model.evaluate(x, y, batch_size=max(size, 256), verbose=0, return_dict=True)
    return {k: float(v) for k, v in result.items()}


def train(config: Config, *, runs_dir: str | Path = "runs", data_dir: str | Path | None = None,
          report: EpochReport | None = None, argv: list[str] | None = None,
          tags: dict[str, Any] | None = None) -> RunResult:
    """Train one config and write its run folder.

    Args:
        config: the validated config.
        runs_dir: the runs root.
        data_dir: a folder of downloaded dataset files.
        report: called after every epoch (progress display), or None.
        argv: the command line to record in env.json.
        tags: extra keys for metrics.json (a sweep's id and the trial's parameters).

    Returns:
        The run folder, its metrics and the exit code (0 completed, 1 failed or
        diverged, 130/143 interrupted).

    Raises:
        NnlabError: for anything refused before the run folder exists.
        RunWriteError: when the run folder cannot be written.
    """
    use_backend(config.backend, source=config.source)
    pipeline(config, config.backend)  # refuses tf_data on another backend before anything is written
    seed_everything(config.seed, config.training.deterministic)
    dataset = load_dataset(config, data_dir)
    data = prepare(config, dataset)
    release_sequences(dataset)
    model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
    configure_execution(model, config)

    started = utc_now()
    run = RunFolder.create(runs_dir, config.name, started=started)
    metrics: dict[str, Any] = {
        "run_id": run.run_id, "name": config.name, "kind": "train", "dataset": dataset.name,
        "task": dataset.task, "status": "running", "message": None,
        "started": started.isoformat(timespec="seconds"), "finished": None, "wall_time_s": None,
        "epochs_planned": config.training.epochs, "epochs_run": 0, "params": count_params(model),
        "train_rows": len(data.x_train), "validation_rows": 0 if data.x_val is None else len(data.x_val),
        "test_rows": len(data.x_test), **(tags or {}),
    }
    with _writing(run, metrics):
        run.write_yaml("config.yaml", config.to_dict())
        run.write_json("env.json", {**environment(config.seed, argv), "overrides": config.overrides,
                                    "config_source": config.source})
        run.write_text("summary.txt", summary_text(model) + "\n")
        run.write_json("metrics.json", metrics)
    return _fit_and_record(config, model, data, run, metrics, report)


def resume(run_dir: str | Path, *, data_dir: str | Path | None = None, report: EpochReport | None = None,
           argv: list[str] | None = None) -> RunResult:
    """Continue an interrupted (or failed) run from its checkpoint, in the same folder.

    The run's own config.yaml is used as it is; the history continues where the
    checkpoint stopped.

    Args:
        run_dir: the run folder.
        data_dir: a folder of downloaded dataset files.
        report: progress callback.
        argv: the command line, recorded in env.json's ``resumed`` list.

    Returns:
        As :func:`train`.

    Raises:
        NnlabError: when the folder is not a resumable run.
    """
    from nnlab.config import load_config
    from nnlab.runs.folder import read_history_csv

    run = RunFolder(Path(run_dir))
    try:
        metrics = run.read_json("metrics.json")
    except (OSError, ValueError) as err:
        raise NnlabError(f"not a readable run folder ({err})", source=str(run.path)) from None
    if metrics.get("kind") != "train":
        raise NnlabError(f"only train runs can be resumed (this one is a {metrics.get('kind')} run)",
                         source=str(run.path))
    if metrics.get("status") == "completed":
        raise NnlabError("the run is already completed; nothing to resume", source=str(run.path))
    checkpoint = run.path / "checkpoint.keras"
    if not checkpoint.is_file():
        raise NnlabError("has no checkpoint.keras to resume from (it stopped before its first epoch "
                         "finished); start it again with nnlab train", source=str(run.path))
    config = load_config(run.path / "config.yaml")
    done = int(metrics.get("checkpoint_epoch") or 0)
    if done >= config.training.epochs:
        raise NnlabError(f"the checkpoint is of the last epoch ({done}); nothing to resume", source=str(run.path))
    use_backend(config.backend, source=str(run.path / "config.yaml"))
    pipeline(config, config.backend)
    seed_everything(config.seed + done, config.training.deterministic)
    dataset = load_dataset(config, data_dir)
    data = prepare(config, dataset)
    release_sequences(dataset)
    k = keras()
    try:
        model = k.models.load_model(checkpoint)
    except Exception as err:
        raise NnlabError(f"cannot load checkpoint.keras: {keras_reason(err)}", source=str(run.path)) from None
    configure_execution(model, config)
    history = {}
    if (run.path / "history.csv").is_file():
        history = {name: values[:done] for name, values in read_history_csv(run.path / "history.csv").items()
                   if name != "epoch"}
    env = run.read_json("env.json") if (run.path / "env.json").is_file() else {}
    env.setdefault("resumed", []).append({"at_epoch": done, "time": utc_now().isoformat(timespec="seconds"),
                                          "command": environment(config.seed, argv)["command"]})
    metrics.update(status="running", message=None, finished=None)
    with _writing(run, metrics):
        run.write_json("env.json", env)
        if history:
            write_history_csv(run.file("history.csv"), history)
        run.write_json("metrics.json", metrics)
    return _fit_and_record(config, model, data, run, metrics, report, initial_epoch=done, history=history,
                           previous_seconds=float(metrics.get("wall_time_s") or 0))


def _fit_and_record(config: Config, model: Any, data: PreparedData, run: RunFolder, metrics: dict[str, Any],
                    report: EpochReport | None, *, initial_epoch: int = 0,
                    history: dict[str, list[float]] | None = None, previous_seconds: float = 0.0) -> RunResult:
    """model.fit with every outcome recorded honestly in the run folder."""
    from nnlab.train.callbacks import LastEpochWeights

    size = batch_size(config, len(data.x_train))
    log, guard, callbacks = fit_callbacks(config, run, report, history)
    last_epoch = LastEpochWeights()
    callbacks.insert(1, last_epoch)  # right after the history log: both see the same finished epochs
    clock = time.perf_counter()
    exit_code = 0
    with _writing(run, metrics):
        try:
            with stop_signals():
                # The arrays as the chosen input pipeline feeds them (for tf_data, tensors made once here).
                feed = Feed.of(pipeline(config, keras().backend.backend()), size, (data.x_train, data.y_train),
                               data.validation)
                metrics["input_pipeline"] = feed.kind
                # A resumed run's shuffle continues from another seed, as its global seed does.
                feed.fit(model, epochs=config.training.epochs, callbacks=callbacks,
                         shuffle=config.training.shuffle, seed=config.seed + initial_epoch,
                         initial_epoch=initial_epoch)
            if guard.diverged_at is not None:
                metrics.update(status="diverged", message=f"the loss became NaN or infinite in epoch "
                                                          f"{guard.diverged_at}; lower the learning rate")
                exit_code = 1
            else:
                metrics["status"] = "completed"
        except Interrupted as stop:
            metrics.update(status="interrupted", message=f"stopped by {stop} after {log.epochs_done} epochs")
            exit_code = stop.exit_code
        except OSError:
            raise  # the run folder cannot be written: handled by _writing
        except Exception as err:  # anything Keras or the backend raises during fit
            metrics.update(status="failed", message=keras_reason(err))
            run.write_text("error.txt", traceback.format_exc())
            exit_code = 1

        metrics["epochs_run"] = log.epochs_done
        metrics["wall_time_s"] = round(previous_seconds + time.perf_counter() - clock, 3)
        if log.history:
            write_history_csv(run.file("history.csv"), log.history)
        if metrics["status"] != "completed" and last_epoch.restore(model):
            # The last whole epoch, with its optimizer state: what `nnlab train --resume` starts from.
            model.save(run.file("checkpoint.keras"))
            metrics["checkpoint_epoch"] = last_epoch.epoch
        if metrics["status"] == "completed":
            try:
                with stop_signals():
                    _finish(config, model, data, feed, run, metrics, log.history)
                (run.path / "checkpoint.keras").unlink(missing_ok=True)
                metrics.pop("checkpoint_epoch", None)
            except Interrupted as stop:
                metrics.update(status="interrupted", message=f"stopped by {stop} while saving results")
                exit_code = stop.exit_code
        metrics["finished"] = utc_now().isoformat(timespec="seconds")
        run.write_json("metrics.json", metrics)
    return RunResult(run=run, metrics=metrics, exit_code=exit_code, history=log.history)


@contextlib.contextmanager
def _writing(run: RunFolder, metrics: dict[str, Any]):
    """Turn a failed write (read-only or full disk) into RunWriteError, marking the run failed if possible."""
    try:
        yield
    except OSError as err:
        reason = f"cannot write the run folder: {err.strerror or err}"
        metrics.update(status="failed", message=reason, finished=utc_now().isoformat(timespec="seconds"))
        try:
            run.write_json("metrics.json", metrics)
        except OSError:
            pass  # the disk refuses even this; the message below still reaches the user
        raise RunWriteError(reason, source=str(run.path)) from None


def _finish(config: Config, model: Any, data: PreparedData, feed: Feed, run: RunFolder,
            metrics: dict[str, Any], history: dict[str, list[float]]) -> None:
    """After a completed fit: final metrics, baseline, model file, plots."""
    metrics["train"] = feed.evaluate(model, *feed.parts["train"])
    if "validation" in feed.parts:
        metrics["validation"] = feed.evaluate(model, *feed.parts["validation"])
    feed.release()  # the training tensors go before the test rows are fed
    metrics["test"] = feed.evaluate(model, data.x_test, data.y_test)
    metrics["best"] = best_epoch(history, "val_loss" if data.x_val is not None else "loss")
    metrics["baseline"] = baseline(data.dataset.task, data.x_train, data.y_train, data.x_test, data.y_test,
                                   seed=config.seed)
    model.save(run.file("model.keras"))
    try:
        metrics["plots"] = [str(p.relative_to(run.path)) for p in draw_plots(config, model, data, run, history)]
    except Exception as err:  # a plot must never cost the run its results
        metrics["plots_error"] = keras_reason(err)


def draw_plots(config: Config, model: Any, data: PreparedData, run: RunFolder,
               history: dict[str, list[float]]) -> list[Path]:
    """Learning curves, and the picture that fits the task: image predictions,
    decision boundary (2-D inputs) or predicted against true (regression).

    Returns:
        The PNG files written.
    """
    from nnlab import plots

    out = run.path / "plots"
    written = plots.learning_curves(history, out, title=config.name)
    dataset = data.dataset
    if dataset.task == "regression":
        predicted = model.predict(data.x_test, batch_size=1024, verbose=0)
        written.append(plots.predicted_vs_true(data.y_test, predicted, out / "predicted_vs_true.png",
                                               title=config.name))
        return written
    labels = np.asarray(dataset.y_test).reshape(len(dataset.y_test), -1)
    labels = labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0]
    names = dataset.class_names or [str(i) for i in range(dataset.num_classes or 2)]
    if dataset.image_shape is not None or len(dataset.input_shape) >= 2:
        count = min(15, len(data.x_test))
        probabilities = model.predict(data.x_test[:count], verbose=0)
        shape = dataset.image_shape or dataset.input_shape
        images = np.asarray(dataset.x_test[:count]).reshape((count, *shape))
        written.append(plots.image_predictions(images, probabilities, labels[:count], names,
                                               out / "test_predictions.png"))
    elif data.x_train.shape[1:] == (2,):
        def predict(points):
            return model.predict(data.preprocessor.transform_x(points), batch_size=4096, verbose=0)

        raw_train = dataset.x_train
        raw_labels = np.asarray(dataset.y_train).reshape(len(raw_train), -1)
        raw_labels = raw_labels.argmax(axis=1) if raw_labels.shape[1] > 1 else raw_labels[:, 0]
        written.append(plots.decision_boundary(predict, np.asarray(raw_train, dtype="float32"), raw_labels,
                                               out / "decision_boundary.png", title=config.name))
    return written

"""What a run records after it trains, and how each stage's outcome becomes an honest status.

Shared by ``nnlab train`` (and ``--resume``) and k-fold's final model: the final
metrics of every part, the best epoch, the baseline, the model file and the plots;
and :func:`run_stage`, which turns a stop, a crash or a full disk during any stage
into the run folder's status instead of a traceback.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nnlab.baselines import baseline
from nnlab.config import Config
from nnlab.errors import RunWriteError
from nnlab.interrupts import Interrupted, stop_signals
from nnlab.keras_objects import keras_reason
from nnlab.metric_names import direction
from nnlab.runs import format as runfile
from nnlab.runs.folder import RunFolder, utc_now
from nnlab.runs.format import RunMetrics, Status
from nnlab.train.data import PreparedData
from nnlab.train.feed import Feed


def run_stage(run: RunFolder, metrics: RunMetrics, stage: Callable[[], Any], *, stopped: Callable[[], str],
              failed: str = "") -> int:
    """Run one stage of a run (fit, results, the final model) and record how it ended.

    Args:
        run: the run folder (``error.txt`` gets the traceback of a crash).
        metrics: the run's metrics; its status is set when the stage does not complete.
        stage: the work; it runs with Ctrl-C and SIGTERM turned into a clean stop.
        stopped: the end of the message of a stopped run, e.g. ``after 12 epochs``.
        failed: what to put before the reason of a crash, e.g. ``final model: ``.

    Returns:
        The exit code: 0 when the stage completed, 1 when it crashed, 130/143 when stopped.

    Raises:
        OSError: the run folder cannot be written (see :func:`writing`).
    """
    try:
        with stop_signals():
            stage()
        return 0
    except Interrupted as stop:
        metrics.end(Status.INTERRUPTED, f"stopped by {stop} {stopped()}")
        return stop.exit_code
    except OSError:
        raise  # the run folder cannot be written: handled by writing()
    except Exception as err:  # anything Keras, the backend or a plot raises
        metrics.end(Status.FAILED, failed + keras_reason(err))
        run.write_text(runfile.ERROR, traceback.format_exc())
        return 1


@contextlib.contextmanager
def writing(run: RunFolder, metrics: RunMetrics):
    """Turn a failed write (read-only or full disk) into RunWriteError, marking the run failed if possible."""
    try:
        yield
    except OSError as err:
        reason = f"cannot write the run folder: {err.strerror or err}"
        metrics.end(Status.FAILED, reason)
        metrics.finished = utc_now().isoformat(timespec="seconds")
        try:
            run.write_json(runfile.METRICS, metrics.to_dict())
        except OSError:
            pass  # the disk refuses even this; the message below still reaches the user
        raise RunWriteError(reason, source=str(run.path)) from None


def best_epoch(history: dict[str, list[float]], monitor: str, directions: dict[str, str] | None = None,
               mode: str = "auto") -> dict[str, Any] | None:
    """The epoch where ``monitor`` was best, in its direction (:mod:`nnlab.metric_names`).

    Returns:
        ``{"monitor", "epoch" (1-based), "value", "direction"}``, or None when the
        history has no finite value of it, or its direction cannot be known.
    """
    values = history.get(monitor)
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    way = direction(monitor, directions, mode)
    if np.all(np.isnan(arr)) or way is None:
        return None
    i = int(np.nanargmax(arr) if way == "max" else np.nanargmin(arr))
    return {"monitor": monitor, "epoch": i + 1, "value": float(arr[i]), "direction": way}


def record_results(config: Config, model: Any, data: PreparedData, feed: Feed, run: RunFolder,
                   metrics: RunMetrics, history: dict[str, list[float]], *, best_monitor: str | None) -> None:
    """After a completed fit: final metrics of every part, the best epoch, the baseline, the model, plots.

    Args:
        config: the validated config.
        model: the trained model.
        data: what it trained on; the test rows are evaluated once.
        feed: the fit's feed (its tensors are released before the test rows are fed).
        run: the run folder (model.keras and plots/ go there).
        metrics: filled in: train, validation, test, best, baseline, plots.
        history: the fit's history (the learning curves).
        best_monitor: the history column whose best epoch is recorded, or None to leave ``best`` as it is.
    """
    metrics.train = feed.evaluate(model, *feed.parts["train"])
    if "validation" in feed.parts:
        metrics.validation = feed.evaluate(model, *feed.parts["validation"])
    feed.release()  # the training tensors go before the test rows are fed
    metrics.test = feed.evaluate(model, data.x_test, data.y_test)
    if best_monitor is not None:
        metrics.best = best_epoch(history, best_monitor, metrics.directions)
    metrics.baseline = baseline(data.dataset.task, data.x_train, data.y_train, data.x_test, data.y_test,
                                seed=config.seed)
    model.save(run.file(runfile.MODEL))
    try:
        drawn = draw_plots(config, model, data, run, history)
        metrics.plots = [*(metrics.plots or []), *(str(p.relative_to(run.path)) for p in drawn)]
    except Exception as err:  # a plot must never cost the run its results
        metrics.plots_error = keras_reason(err)


def draw_plots(config: Config, model: Any, data: PreparedData, run: RunFolder,
               history: dict[str, list[float]]) -> list[Path]:
    """Learning curves, and the picture that fits the task: image predictions,
    decision boundary (2-D inputs) or predicted against true (regression).

    Returns:
        The PNG files written.
    """
    from nnlab import plots

    out = run.path / runfile.PLOTS
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


def divergence_message(epoch: int, what: str = "the loss") -> str:
    """The message of a diverged run."""
    return f"{what} became NaN or infinite in epoch {epoch}; lower the learning rate"

"""What a run records after it trains, and how each stage's outcome becomes an honest status.

Shared by ``nnlab train`` (and ``--resume``, and a sweep's trials) and k-fold's final model: the final
metrics of every part, the best epoch, the baseline, the model file, the diagnostics of the test
set's predictions (per-class figures, confusion counts, ROC curve, residuals) and the plots;
and :func:`run_stage`, which turns a stop, a crash or a full disk during any stage
into the run folder's status instead of a traceback.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nnlab.backend import save_model
from nnlab.baselines import baseline
from nnlab.config import Config
from nnlab.errors import NnlabError, RunEnded, RunWriteError
from nnlab.interrupts import Interrupted, stop_signals
from nnlab.keras_objects import keras_reason
from nnlab.metric_names import direction
from nnlab.store import format as runfile
from nnlab.store.folder import RunFolder, utc_now
from nnlab.store.format import RunMetrics, Status
from nnlab.training.data import PreparedData
from nnlab.training.feed import Feed

#: The most frequent mistakes metrics.json names (``confused_pairs``).
CONFUSED_PAIRS = 5
#: At most this many points of the ROC curve, and of the residuals, go into diagnostics.json.
ROC_POINTS, RESIDUAL_POINTS = 200, 2000
#: The wrong test images drawn in misclassified.png.
MISCLASSIFIED_IMAGES = 15


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
    """Whatever ends the block early leaves the run folder an honest status.

    A failed write (read-only or full disk) becomes RunWriteError; a crash between the stages that
    :func:`run_stage` guards (a Keras error, a bug) marks the run failed, keeps its traceback in
    error.txt and becomes RunEnded; a stop there marks it interrupted; a refusal (NnlabError)
    marks it failed with the refusal's message and is raised as it is.
    """
    try:
        yield
    except RunEnded:
        raise  # an inner block recorded it already
    except OSError as err:
        reason = f"cannot write the run folder: {err.strerror or err}"
        _record_end(run, metrics, Status.FAILED, reason)
        raise RunWriteError(reason, source=str(run.path)) from None
    except NnlabError as err:
        _record_end(run, metrics, Status.FAILED, str(err))
        raise
    except (Interrupted, KeyboardInterrupt) as stop:
        code = getattr(stop, "exit_code", 130)
        reason = f"stopped by {stop if isinstance(stop, Interrupted) else 'SIGINT'} while recording the run"
        _record_end(run, metrics, Status.INTERRUPTED, reason)
        raise RunEnded(reason, exit_code=code, source=str(run.path)) from None
    except Exception as err:  # anything else between the stages: recorded, never a traceback
        reason = keras_reason(err)
        with contextlib.suppress(OSError):
            run.write_text(runfile.ERROR, traceback.format_exc())
        _record_end(run, metrics, Status.FAILED, reason)
        raise RunEnded(f"failed: {reason} (the traceback is in {runfile.ERROR})", source=str(run.path)) from None


def _record_end(run: RunFolder, metrics: RunMetrics, status: Status, reason: str) -> None:
    """Set a still running run's final status and write metrics.json if the disk lets us."""
    if metrics.status is Status.RUNNING:
        metrics.end(status, reason)
    metrics.finished = metrics.finished or utc_now().isoformat(timespec="seconds")
    try:
        run.write_json(runfile.METRICS, metrics.to_dict())
    except OSError:
        pass  # the disk refuses even this; the message still reaches the user


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
    """After a completed fit: final metrics of every part, the best epoch, the baseline, the model,
    the diagnostics of the test set's predictions (diagnostics.json), plots.

    The test rows are predicted once (:func:`prediction_diagnostics` and every figure use those
    predictions); a failure in the diagnostics or a figure is recorded (``diagnostics_error``,
    ``plots_error``), never raised.

    Args:
        config: the validated config.
        model: the trained model.
        data: what it trained on; the test rows are evaluated once.
        feed: the fit's feed (its tensors are released before the test rows are fed).
        run: the run folder (model.keras and plots/ go there).
        metrics: filled in: train, validation, test, best, baseline, per_class, confused_pairs, roc_auc,
            plots.
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
    save_model(model, run.file(runfile.MODEL))
    predicted, diagnostics = None, {}
    metrics.per_class = metrics.confused_pairs = metrics.roc_auc = metrics.diagnostics_error = None
    try:
        predicted = feed.predict(model, data.x_test)
        fields, diagnostics = prediction_diagnostics(data, predicted)
        for key, value in fields.items():
            setattr(metrics, key, value)
        run.write_json(runfile.DIAGNOSTICS, diagnostics)
    except Exception as err:  # the diagnostics must never cost the run its results
        metrics.diagnostics_error = keras_reason(err)
    drawn: list[Path] = []
    try:
        drawn += draw_plots(config, model, data, run, history, predicted=predicted)
    except Exception as err:  # a plot must never cost the run its results
        metrics.plots_error = keras_reason(err)
    if diagnostics:
        try:
            drawn += draw_diagnostics(config, data, predicted, diagnostics, run)
        except Exception as err:  # nor must a diagnostics figure cost it the others
            metrics.plots_error = metrics.plots_error or keras_reason(err)
    metrics.plots = list(dict.fromkeys([*(metrics.plots or []), *(str(p.relative_to(run.path)) for p in drawn)]))


def class_indices(y: np.ndarray) -> np.ndarray:
    """Labels as class indices: one-hot rows (or (n, 1) columns) back to one index per example."""
    y = np.asarray(y).reshape(len(y), -1)
    return (y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0]).astype(int)


def class_probabilities(predicted: np.ndarray) -> np.ndarray:
    """A classifier's outputs as (n, classes) probabilities: a sigmoid unit becomes ``[1 - p, p]``;
    outputs that are no probabilities (logits, a loss with ``from_logits``) get a sigmoid or softmax."""
    out = np.asarray(predicted, dtype="float64").reshape(len(predicted), -1)
    if out.shape[1] == 1:
        p = out[:, 0]
        if p.size and (p.min() < 0 or p.max() > 1):
            p = 1 / (1 + np.exp(-p))
        return np.stack([1 - p, p], axis=1)
    if out.size and (out.min() < 0 or out.max() > 1 or np.abs(out.sum(axis=1) - 1).max() > 1e-3):
        e = np.exp(out - out.max(axis=1, keepdims=True))
        out = e / e.sum(axis=1, keepdims=True)
    return out


def class_names(data: PreparedData, width: int = 0) -> list[str]:
    """A name per class (the dataset's, else the indices), at least ``width`` of them."""
    dataset = data.dataset
    names = [str(n) for n in dataset.class_names or [str(i) for i in range(dataset.num_classes or 2)]]
    return names + [str(i) for i in range(len(names), width)]


def spread(count: int, most: int) -> np.ndarray:
    """At most ``most`` positions of ``count``, evenly spaced, the first and the last kept."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, most)).astype(int))


def confused_pairs(counts: np.ndarray, names: list[str], most: int = CONFUSED_PAIRS) -> list[dict[str, Any]]:
    """The most frequent mistakes of a confusion matrix (rows true, columns predicted), most first.

    Returns:
        Up to ``most`` of ``{"true", "predicted", "count", "share"}`` (``share``: of the true
        class's examples); ties in row order. Empty when nothing was mistaken.
    """
    counts = np.asarray(counts)
    mistakes = counts.copy()
    np.fill_diagonal(mistakes, 0)
    order = np.argsort(-mistakes, axis=None, kind="stable")[:most]
    return [{"true": names[i], "predicted": names[j], "count": int(mistakes[i, j]),
             "share": float(mistakes[i, j] / counts[i].sum())}
            for i, j in (np.unravel_index(o, mistakes.shape) for o in order) if mistakes[i, j] > 0]


def prediction_diagnostics(data: PreparedData, predicted: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the test set's predictions say beyond the averages, for metrics.json and diagnostics.json.

    Classifiers: precision, recall, F1 and support per class and the confusion counts
    (scikit-learn's), the most frequent mistakes; binary ones also the ROC curve and its AUC.
    Regression: the residuals (true − predicted) against the predictions.

    Args:
        data: the prepared data; its test rows are the ones predicted.
        predicted: ``model.predict(data.x_test)``.

    Returns:
        ``(fields, file)``: the :class:`~nnlab.store.format.RunMetrics` fields (``per_class``,
        ``confused_pairs``, ``roc_auc``) and the content of diagnostics.json
        (:data:`nnlab.store.format.DIAGNOSTICS`).
    """
    if data.dataset.task == "regression":
        true = np.asarray(data.y_test, dtype="float64").reshape(-1)
        guess = np.asarray(predicted, dtype="float64").reshape(-1)
        if len(true) != len(guess):  # outputs that are not one value per target: nothing to pair up
            return {}, {}
        keep = spread(len(guess), RESIDUAL_POINTS)
        return {}, {"residuals": {"predicted": guess[keep].tolist(), "residual": (true - guess)[keep].tolist()}}
    from sklearn import metrics as sk

    probabilities = class_probabilities(predicted)
    labels = class_indices(data.y_test)
    names = class_names(data, probabilities.shape[1])
    classes = list(range(len(names)))
    guess = probabilities.argmax(axis=1)
    counts = sk.confusion_matrix(labels, guess, labels=classes)
    precision, recall, f1, support = sk.precision_recall_fscore_support(labels, guess, labels=classes,
                                                                        zero_division=0)
    fields: dict[str, Any] = {
        "per_class": [{"class": names[i], "precision": float(precision[i]), "recall": float(recall[i]),
                       "f1": float(f1[i]), "support": int(support[i])} for i in classes]}
    fields["confused_pairs"] = confused_pairs(counts, names)
    file: dict[str, Any] = {"confusion_matrix": {"labels": names, "counts": counts.tolist()}}
    if len(names) == 2 and len(np.unique(labels)) == 2:  # a ROC curve needs both classes in the test set
        scores = probabilities[:, 1]
        fields["roc_auc"] = float(sk.roc_auc_score(labels, scores))
        fpr, tpr, _ = sk.roc_curve(labels, scores)
        keep = spread(len(fpr), ROC_POINTS)
        file["roc"] = {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "auc": fields["roc_auc"]}
    return fields, file


def draw_diagnostics(config: Config, data: PreparedData, predicted: np.ndarray, diagnostics: dict[str, Any],
                     run: RunFolder) -> list[Path]:
    """The figures of :func:`prediction_diagnostics`: the confusion matrix, the most confident mistakes
    (image datasets), the ROC curve (binary, every point of it), the residuals (regression).

    Args:
        config: the validated config (its name titles the figures).
        data: the prepared data whose test rows were predicted.
        predicted: ``model.predict(data.x_test)``.
        diagnostics: what :func:`prediction_diagnostics` made of them (diagnostics.json).
        run: the run folder (the figures go into plots/).

    Returns:
        The PNG files written.
    """
    from sklearn.metrics import confusion_matrix, roc_curve

    from nnlab import plots

    out = run.path / runfile.PLOTS
    written = []
    if "residuals" in diagnostics:
        written.append(plots.residuals(data.y_test, predicted, out / runfile.RESIDUALS_PLOT, title=config.name))
    if "confusion_matrix" in diagnostics:
        probabilities = class_probabilities(predicted)
        labels, guess = class_indices(data.y_test), probabilities.argmax(axis=1)
        names = diagnostics["confusion_matrix"]["labels"]
        normalized = confusion_matrix(labels, guess, labels=list(range(len(names))), normalize="true")
        pairs = [(p["true"], p["predicted"], p["share"])
                 for p in confused_pairs(diagnostics["confusion_matrix"]["counts"], names)]
        written.append(plots.confusion_matrix(normalized, names, out / runfile.CONFUSION_MATRIX_PLOT,
                                              most_confused=pairs, title=config.name))
        dataset = data.dataset
        wrong = np.flatnonzero(guess != labels)
        if len(wrong) and (dataset.image_shape is not None or len(dataset.input_shape) >= 2):
            confidence = probabilities[wrong, guess[wrong]]
            chosen = wrong[np.argsort(-confidence, kind="stable")[:MISCLASSIFIED_IMAGES]]
            shape = dataset.image_shape or dataset.input_shape
            images = np.asarray(dataset.x_test)[chosen].reshape((len(chosen), *shape))
            written.append(plots.misclassified(images, probabilities[chosen], labels[chosen], names,
                                               out / runfile.MISCLASSIFIED_PLOT,
                                               title=f"{config.name}: the {len(chosen)} wrong test predictions "
                                                     "made with the highest confidence"))
    if "roc" in diagnostics:
        fpr, tpr, _ = roc_curve(class_indices(data.y_test), class_probabilities(predicted)[:, 1])
        written.append(plots.roc_curve(fpr, tpr, diagnostics["roc"]["auc"], out / runfile.ROC_CURVE_PLOT,
                                       title=config.name))
    return written


def draw_plots(config: Config, model: Any, data: PreparedData, run: RunFolder,
               history: dict[str, list[float]], *, predicted: np.ndarray | None = None) -> list[Path]:
    """Learning curves, and the picture that fits the task: image predictions,
    decision boundary (2-D inputs) or predicted against true (regression).

    Args:
        predicted: the model's predictions of the test rows, when made already (else they are made here).

    Returns:
        The PNG files written.
    """
    from nnlab import plots

    out = run.path / runfile.PLOTS
    written = plots.learning_curves(history, out, title=config.name)
    dataset = data.dataset
    if dataset.task == "regression":
        if predicted is None:
            predicted = model.predict(data.x_test, batch_size=4096, verbose=0)
        written.append(plots.predicted_vs_true(data.y_test, predicted, out / "predicted_vs_true.png",
                                               title=config.name))
        return written
    labels = class_indices(dataset.y_test)
    names = dataset.class_names or [str(i) for i in range(dataset.num_classes or 2)]
    if dataset.image_shape is not None or len(dataset.input_shape) >= 2:
        count = min(15, len(data.x_test))
        probabilities = (predicted[:count] if predicted is not None
                         else model.predict(data.x_test[:count], verbose=0))
        shape = dataset.image_shape or dataset.input_shape
        images = np.asarray(dataset.x_test[:count]).reshape((count, *shape))
        written.append(plots.image_predictions(images, probabilities, labels[:count], names,
                                               out / "test_predictions.png"))
    elif data.x_train.shape[1:] == (2,):
        def predict(points):
            return model.predict(data.preprocessor.transform_x(points), batch_size=4096, verbose=0)

        raw_train = dataset.x_train
        raw_labels = class_indices(dataset.y_train)
        written.append(plots.decision_boundary(predict, np.asarray(raw_train, dtype="float32"), raw_labels,
                                               out / "decision_boundary.png", title=config.name))
    return written


def divergence_message(epoch: int, what: str = "the loss") -> str:
    """The message of a diverged run."""
    return f"{what} became NaN or infinite in epoch {epoch}; lower the learning rate"


def pruned_message(epoch: int, epochs: int, what: str = "") -> str:
    """The message of a run (or, with ``what``, a fold) a search's pruner stopped after ``epoch``."""
    return f"{what}pruned by the search's pruner after epoch {epoch} of {epochs}"

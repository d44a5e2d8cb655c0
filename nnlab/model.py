"""Building and compiling the Keras model of a config, and checking it fits its data."""

from __future__ import annotations

import logging
from typing import Any

from nnlab.backend import keras
from nnlab.config import Config
from nnlab.keras_objects import build_objects, keras_reason
from nnlab.preprocessing import ONEHOT_LOSSES, wants_onehot

log = logging.getLogger(__name__)
_WARNED: set[str] = set()

_SPARSE_LOSSES = {"sparse_categorical_crossentropy", "sparsecategoricalcrossentropy",
                  "sparse_categorical_focal_crossentropy"}
_BINARY_LOSSES = {"binary_crossentropy", "binarycrossentropy", "binary_focal_crossentropy",
                  "binaryfocalcrossentropy", "hinge", "squared_hinge", "squaredhinge"}


def build_model(config: Config, input_shape: tuple[int, ...], *, task: str | None = None,
                num_classes: int | None = None, compile: bool = True) -> Any:
    """A Sequential model of the config's layers on ``input_shape``, compiled.

    Each layer is connected in turn, so a layer that does not fit what comes before
    it (Conv2D on flat input) is reported at its own key. With ``task`` given, the
    output layer and the loss are checked against the data.

    Args:
        config: the validated config.
        input_shape: shape of one example after preprocessing.
        task: binary, multiclass or regression.
        num_classes: number of classes for classification.
        compile: compile with the config's optimizer, loss and metrics.

    Returns:
        The Keras model.

    Raises:
        ConfigError: pointing at the layer, loss or metric that does not fit.
    """
    k = keras()
    objects = build_objects(config)
    model = k.Sequential(name=config.name.replace(".", "_"))
    model.add(k.Input(shape=tuple(input_shape)))
    shape = (None, *input_shape)
    for i, layer in enumerate(objects.layers):
        try:
            model.add(layer)
            shape = model.output_shape
        except Exception as err:
            name = next(iter(config.model.layers[i]))
            reason = keras_reason(err)
            if isinstance(err, MemoryError) or "OOM" in reason or "ResourceExhausted" in reason:
                raise config.error(("model", "layers", i), f"layer {i} ({name}) is too large to allocate in "
                                                           "memory; use fewer units or filters") from None
            raise config.error(("model", "layers", i),
                               f"layer {i} ({name}) does not fit its input of shape {_shape(shape)}: "
                               f"{reason}") from None
    if task is not None:
        check_output(config, model.output_shape, task, num_classes)
        for warning in output_warnings(config, objects):
            if warning not in _WARNED:  # k-fold builds a model per fold: say it once
                _WARNED.add(warning)
                log.warning("warning: %s", warning)
    if compile:
        model.compile(optimizer=objects.optimizer, loss=objects.loss, metrics=objects.metrics)
    return model


def check_output(config: Config, output_shape: tuple, task: str, num_classes: int | None) -> None:
    """Refuse an output layer or loss that cannot work for the task.

    Raises:
        ConfigError: at the last layer or at the loss, saying what would fit.
    """
    last = ("model", "layers", len(config.model.layers) - 1)
    units = output_shape[-1]
    loss = (config.loss if isinstance(config.loss, str) else next(iter(config.loss))).lower()
    if len(output_shape) != 2:
        raise config.error(last, f"the model's output has shape {_shape(output_shape)}; it must be one "
                                 "vector per example (add Flatten before the last Dense)")
    classification = _SPARSE_LOSSES | ONEHOT_LOSSES | _BINARY_LOSSES
    labels = ("dataset", "preprocessing", "labels")
    if task == "multiclass":
        onehot = wants_onehot(config)
        if loss in _SPARSE_LOSSES | ONEHOT_LOSSES and units != num_classes:
            raise config.error(last, f"the last layer gives {units} outputs, but the data has {num_classes} "
                                     f"classes: use {num_classes} units with softmax for {loss}")
        if loss in _BINARY_LOSSES:
            raise config.error(("loss",), f"{loss} is for two classes, but the data has {num_classes}: use "
                                          "sparse_categorical_crossentropy (integer labels) or "
                                          "categorical_crossentropy (one-hot labels)")
        if loss in ONEHOT_LOSSES and not onehot:
            raise config.error(labels, f"{loss} compares the outputs with one-hot labels, but labels: integer "
                                       "gives one class index per example: use labels: onehot (or auto), or "
                                       "sparse_categorical_crossentropy for class indices")
        if loss in _SPARSE_LOSSES and onehot:
            raise config.error(labels, f"{loss} takes one class index per example, but labels: onehot gives "
                                       "one-hot vectors: use labels: integer (or auto), or "
                                       "categorical_crossentropy for one-hot labels")
        if loss not in classification and not onehot:
            raise config.error(("loss",), f"{loss} compares each of the model's {units} outputs with the label, "
                                          f"but the labels are class indices (one number per example, 0 to "
                                          f"{num_classes - 1}): use sparse_categorical_crossentropy, or set "
                                          f"dataset.preprocessing.labels: onehot so that {loss} compares the "
                                          "outputs with one-hot vectors")
        if loss not in classification and units != num_classes:
            raise config.error(last, f"the last layer gives {units} outputs, but the one-hot labels have "
                                     f"{num_classes}: use {num_classes} units")
    elif task == "binary":
        if loss not in classification and units != 1 and not wants_onehot(config):
            raise config.error(last, f"the last layer gives {units} outputs; {loss} compares them with one 0/1 "
                                     "label per example: use 1 unit (sigmoid)")
        if loss in _BINARY_LOSSES and units != 1:
            raise config.error(last, f"the last layer gives {units} outputs; {loss} needs 1 (sigmoid)")
        if loss in _SPARSE_LOSSES | ONEHOT_LOSSES and units != 2:
            raise config.error(last, f"the last layer gives {units} outputs; {loss} over 2 classes needs 2 "
                                     "(softmax), or use 1 unit with binary_crossentropy")
    elif task == "regression":
        if loss in _SPARSE_LOSSES | ONEHOT_LOSSES | _BINARY_LOSSES:
            raise config.error(("loss",), f"{loss} is a classification loss, but the data is a regression "
                                          "target: use mse, mae or huber")


def check_on_rows(config: Config, model: Any, x: Any, y: Any) -> dict[str, float]:
    """Compute the compiled loss and metrics on two real rows: what the rules of :func:`check_output`
    cannot foresee (a metric that needs other label shapes, a loss's own checks), Keras tells.

    Nothing is trained: the weights, the optimizer and the random state stay as they are.

    Returns:
        The figures by name (``loss``, each metric), as Keras logs them.

    Raises:
        ConfigError: at the metric (or else the loss) that cannot be computed, with Keras's reason.
    """
    try:
        return {name: float(v) for name, v in model.test_on_batch(x[:2], y[:2], return_dict=True).items()}
    except Exception as err:
        key = _culprit(config, model, x[:2], y[:2], err)
        what = "the loss" if key == ("loss",) else _metric_name(config.metrics[key[1]])
        raise config.error(key, f"{what} cannot be computed on the data's labels: {keras_reason(err)}") from None


def _metric_name(metric: Any) -> str:
    return metric if isinstance(metric, str) else next(iter(metric))


def _culprit(config: Config, model: Any, x: Any, y: Any, err: Exception) -> tuple:
    """The config key of what failed in :func:`check_on_rows`: a metric, else the loss.

    Keras's message names the class that raised when it can (a parent class, at times:
    F1Score is an FBetaScore); otherwise each metric given as an object is computed
    alone on the model's output.
    """
    reason = keras_reason(err).lower()
    built = build_objects(config).metrics  # one per config entry, in order
    for i, (metric, obj) in enumerate(zip(config.metrics, built)):
        name = _metric_name(metric)
        names = {name.lower(), *(c.__name__.lower() for c in type(obj).__mro__[:-1])}
        if any(n in reason for n in names if n not in ("metric", "function", "object")):
            return ("metrics", i)
    try:
        predicted = model(x, training=False)
    except Exception:
        return ("loss",)
    for i, obj in enumerate(built):
        if hasattr(obj, "update_state"):
            try:
                obj.update_state(y, predicted)
            except Exception:
                return ("metrics", i)
    return ("loss",)


def output_warnings(config: Config, objects: Any) -> list[str]:
    """Configs that train but not as meant: a cross-entropy loss after a last layer that gives no
    probabilities (relu or linear instead of softmax or sigmoid), unless the loss takes logits.

    Returns:
        One sentence per problem (empty when there is none).
    """
    loss = (config.loss if isinstance(config.loss, str) else next(iter(config.loss))).lower()
    if "crossentropy" not in loss or getattr(objects.loss, "from_logits", False):
        return []
    last = objects.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    if activation is None or activation in ("softmax", "sigmoid"):
        return []
    wanted = "sigmoid" if "binary" in loss else "softmax"
    shown = "linear (no activation)" if activation == "linear" else activation
    return [f"{config.source}: the last layer's activation is {shown}, but {loss} expects probabilities: use "
            f"activation: {wanted}, or give the loss from_logits: true"]


def count_params(model: Any) -> int:
    """Number of parameters of the model (trainable and not)."""
    return int(model.count_params())


def summary_text(model: Any) -> str:
    """The model summary as plain text, every column whole ("Param #" included).

    Keras prints it through a rich console as wide as the terminal (80 columns when
    there is none), which cut its table's last column; the console is given room here,
    and the table is laid out 78 wide, so it also fits an 80-column terminal.
    """
    import os
    import re

    lines: list[str] = []
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "400"  # read by rich and shutil when the console is made
    try:
        # 78 wide: an 80-column terminal shows it whole; Keras keeps "Param #" in its last 12 columns.
        model.summary(print_fn=lambda line, **_: lines.append(line), line_length=78)
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    text = "\n".join(lines)
    return "\n".join(line.rstrip() for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines())


def _shape(shape: Any) -> str:
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"

"""Metric names and their direction: the one place that says whether higher is better.

A metric is named as Keras logs it (``loss``, ``accuracy``, ``r2_score``), with a
prefix for where it was measured: ``val_`` (validation), ``test_``, ``train_``, and
``best_`` for the value at a run's best epoch (``best_val_loss``).

Its direction comes, in this order, from:

1. the user: ``mode: max`` or ``mode: min`` (``kfold.mode``, ``sweep.mode``);
2. the loss: always lower is better;
3. Keras's metric object, which knows it (``Metric._direction``, the attribute Keras's
   own ``MonitorCallback`` reads): ``R2Score`` is "up", ``MeanAbsoluteError`` "down";
4. for a name with no metric object at hand (an old run folder, ``nnlab compare``
   without Keras), the rule of :data:`LOWER_IS_BETTER` and :data:`HIGHER_IS_BETTER`:
   a name containing one of those words (as a whole ``_``-separated word, or as
   the end of the name) has that direction, lower winning when both appear.

A name none of these can place has no direction, and is refused where one is
needed, with a message naming ``mode``, rather than guessed.

Nothing here imports Keras or NumPy at module level.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Literal, Mapping

Direction = Literal["max", "min"]
PREFIXES = ("best_", "val_", "test_", "train_")
#: metrics.json's part holding the metrics of each prefix.
PARTS = {"val_": "validation", "test_": "test", "train_": "train"}

#: Words of metric names whose lower values are better.
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "mape", "msle", "hinge", "crossentropy",
                   "divergence", "poisson", "cosh", "duration", "time")
#: Words of metric names whose higher values are better.
HIGHER_IS_BETTER = ("accuracy", "acc", "auc", "precision", "recall", "f1", "fbeta", "score", "r2", "iou",
                    "similarity", "correlation")


def base_name(name: str) -> str:
    """``best_val_r2_score`` -> ``r2_score``: the metric without where it was measured."""
    name = name.strip()
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                name, changed = name[len(prefix):], True
    return name


def direction_by_name(name: str) -> Direction | None:
    """The documented rule for a name alone (see the module's docstring), or None when it cannot tell."""
    base = base_name(name).lower().rsplit(".", 1)[-1]
    if base == "loss":
        return "min"
    words = set(re.split(r"[_\W]+", base))

    def has(vocabulary: Iterable[str]) -> bool:
        return any(word in words or base.endswith(word) for word in vocabulary)

    if has(LOWER_IS_BETTER):
        return "min"
    if has(HIGHER_IS_BETTER):
        return "max"
    return None


def directions_of(model: Any) -> dict[str, Direction]:
    """The direction of every metric a compiled Keras model reports, from Keras's metric objects.

    Args:
        model: a compiled Keras model (after one evaluate or fit step its compiled
            metrics exist; before, only the loss is known).

    Returns:
        ``{metric name as logged: "max" | "min"}``; ``loss`` is always there, a metric
        whose object does not say is placed by :func:`direction_by_name` or left out.
    """
    found: dict[str, Direction] = {"loss": "min"}
    for metric in _metric_objects(model):
        name = getattr(metric, "name", None)
        if not isinstance(name, str) or name in found:
            continue
        said = getattr(metric, "_direction", None)
        chosen = {"up": "max", "down": "min"}.get(said) or direction_by_name(name)
        if chosen is not None:
            found[name] = chosen
    return found


def direction_of_objects(metrics: Iterable[Any]) -> dict[str, Direction]:
    """Directions of metric objects built from a config (before any model), keyed by their name."""
    found: dict[str, Direction] = {}
    for metric in metrics:
        name, said = getattr(metric, "name", None), getattr(metric, "_direction", None)
        if isinstance(name, str) and said in ("up", "down"):
            found[name] = "max" if said == "up" else "min"
    return found


def direction(name: str, known: Mapping[str, str] | None = None, mode: str = "auto") -> Direction | None:
    """Whether ``name`` is better high (``max``) or low (``min``).

    Args:
        name: a metric name, prefixed or not (``val_r2_score``, ``best_val_loss``).
        known: directions by base name, from :func:`directions_of` or a run's metrics.json.
        mode: ``max``, ``min`` (the user's word, which wins) or ``auto``.

    Returns:
        ``max``, ``min``, or None when nothing can tell.
    """
    if mode in ("max", "min"):
        return mode  # type: ignore[return-value]
    base = base_name(name)
    if base == "loss":
        return "min"
    if known and known.get(base) in ("max", "min"):
        return known[base]  # type: ignore[return-value]
    return direction_by_name(name)


def unknown_direction_message(name: str, mode_key: str) -> str:
    """The refusal for a monitor whose direction cannot be known."""
    return (f"cannot tell whether a higher or a lower {name} is better (Keras's metric does not say, and "
            f"its name is not one nnlab knows); set {mode_key}: max or {mode_key}: min")


def higher_is_better(name: str, known: Mapping[str, str] | None = None, mode: str = "auto") -> bool:
    """:func:`direction` as a boolean; a name nothing can place counts as lower-is-better (sorting only)."""
    return direction(name, known, mode) == "max"


def value_of(metrics: Mapping[str, Any], name: str) -> float | None:
    """A metric of a metrics.json by its prefixed name.

    ``val_accuracy`` is ``metrics["validation"]["accuracy"]``, ``test_loss`` and
    ``train_mae`` alike; ``best_val_loss`` is ``metrics["best"]["value"]`` when the best
    epoch was read from ``val_loss``; an unprefixed name is a top-level number.

    Returns:
        The value, or None when the run does not have it.
    """
    if name.startswith("best_"):
        best = metrics.get("best") or {}
        value = best.get("value") if isinstance(best, Mapping) and best.get("monitor") == name[5:] else None
        return _number(value)
    for prefix, part in PARTS.items():
        if name.startswith(prefix):
            values = metrics.get(part)
            return _number(values.get(name[len(prefix):])) if isinstance(values, Mapping) else None
    return _number(metrics.get(name))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _metric_objects(model: Any) -> list[Any]:
    """The metric objects under a model's compiled metrics (Keras nests them in CompileMetrics)."""
    found = []
    for metric in getattr(model, "metrics", []) or []:
        inner = getattr(metric, "metrics", None)
        if isinstance(inner, (list, tuple)) and inner:
            found.extend(inner)
        else:
            found.append(metric)
    return found

"""The figures across folds: averaged curves with their spread, smoothing, the best epoch."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from nnlab.crossval.folds import FoldResult


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


def pick_best_epoch(curve: list[float] | np.ndarray, monitor: str, smoothing: float = 0.0,
                    directions: dict[str, str] | None = None, mode: str = "auto") -> dict[str, Any] | None:
    """The best epoch of an averaged validation curve.

    The lowest value, or the highest for a monitor whose higher values are better
    (:mod:`nnlab.metric_names`), after an optional exponential moving average with
    factor ``smoothing``.

    Args:
        curve: the mean validation curve.
        monitor: its name (``val_loss``, ``val_r2_score``).
        smoothing: exponential moving average factor (0: the raw curve).
        directions: the metrics' directions from Keras's metric objects.
        mode: ``max``, ``min`` or ``auto`` (``kfold.mode``).

    Returns:
        ``{"monitor", "epoch" (1-based), "value" (the mean at that epoch), "direction", "smoothing",
        "smoothed_value"}``, or None when the curve is empty or all NaN, or the direction unknown.
    """
    from nnlab.training.results import best_epoch

    curve = np.asarray(curve, dtype=float)
    if not len(curve) or np.all(np.isnan(curve)):
        return None
    scored = smooth_curve(curve, smoothing) if smoothing else curve
    best = best_epoch({monitor: list(scored)}, monitor, directions, mode)
    if best is None:
        return None
    epoch = best["epoch"]
    return {"monitor": monitor, "epoch": epoch, "value": float(curve[epoch - 1]), "direction": best["direction"],
            "smoothing": smoothing, "smoothed_value": float(scored[epoch - 1])}


def summarize(folds: list[FoldResult], monitor: str, smoothing: float = 0.0, mode: str = "auto") -> dict[str, Any]:
    """The k-fold figures: per fold, mean and std of the final validation metrics, the best epoch.

    Args:
        folds: the finished folds.
        monitor: the validation metric the best epoch is read from.
        smoothing: exponential moving average factor for the best-epoch pick.
        mode: the monitor's direction, ``max``, ``min`` or ``auto`` (Keras's metric objects say).

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
        directions = {name: way for f in folds for name, way in f.directions.items()}
        best = pick_best_epoch(curves[monitor]["mean"][:common], monitor, smoothing, directions, mode)
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

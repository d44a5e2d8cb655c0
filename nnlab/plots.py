"""The pictures of a run, as PNG files (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

RIGHT, WRONG, NEUTRAL = "tab:blue", "tab:red", "tab:gray"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from nnlab.runfolder import atomic_write
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buffer.getvalue())
    return path


def learning_curves(history: dict[str, Sequence[float]], out_dir: Path, *, first_epoch: int = 1,
                    skip_first: int = 0, title: str = "") -> list[Path]:
    """One figure per metric: training against validation, per epoch.

    Args:
        history: Keras's ``History.history`` (``loss``, ``val_loss``, ``accuracy``, ...).
        out_dir: folder for the PNG files (``loss.png``, ``accuracy.png``, ...).
        first_epoch: number of the first epoch in ``history``.
        skip_first: leave out this many first epochs (their scale can hide the rest).
        title: prefix of every figure's title.

    Returns:
        The paths written.
    """
    plt = _pyplot()
    written = []
    for metric in [m for m in history if not m.startswith("val_")]:
        train = np.asarray(history[metric], dtype=float)
        val = np.asarray(history.get(f"val_{metric}", []), dtype=float)
        epochs = np.arange(first_epoch, first_epoch + len(train))
        keep = slice(skip_first, None)
        fig, ax = plt.subplots(figsize=(6.4, 4))
        marker = "o" if len(train) <= 30 else None
        ax.plot(epochs[keep], train[keep], marker=marker, markersize=3, label=f"training {metric}")
        if len(val):
            ax.plot(epochs[: len(val)][keep], val[keep], marker=marker, markersize=3,
                    label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{title}: {metric}" if title else metric)
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(_save(fig, out_dir / f"{metric}.png"))
    return written


def image_predictions(images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray,
                      class_names: Sequence[str], path: Path, *, count: int = 15) -> Path:
    """A grid of test images, each beside the bars of its predicted class probabilities.

    The caption gives the predicted class, its confidence and the true class: blue
    when the prediction is right, red when it is wrong (as in the lessons).

    Args:
        images: test images, shape (n, h, w) or (n, h, w, c).
        probabilities: predicted probabilities, shape (n, classes) (or (n, 1) for binary).
        labels: true class indices.
        class_names: a name per class.
        path: the PNG file.
        count: how many examples to draw.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    probabilities = _class_probabilities(probabilities)
    count = min(count, len(images))
    cols = 3
    rows = math.ceil(count / cols)
    fig = plt.figure(figsize=(2 * 2 * cols, 2.1 * rows))
    for i in range(count):
        predicted = int(np.argmax(probabilities[i]))
        true = int(labels[i])
        color = RIGHT if predicted == true else WRONG
        ax = fig.add_subplot(rows, 2 * cols, 2 * i + 1)
        image = images[i]
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap=plt.cm.binary if image.ndim == 2 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{class_names[predicted]} {100 * probabilities[i, predicted]:.0f}%\n"
                      f"({class_names[true]})", color=color, fontsize=8)
        ax = fig.add_subplot(rows, 2 * cols, 2 * i + 2)
        bars = ax.bar(range(probabilities.shape[1]), probabilities[i], color=NEUTRAL)
        bars[predicted].set_color(WRONG)
        bars[true].set_color(RIGHT)
        ax.set_ylim(0, 1)
        ax.set_xticks(range(probabilities.shape[1]))
        ax.tick_params(labelsize=5)
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)


def decision_boundary(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                      path: Path, *, title: str = "", resolution: int = 200) -> Path:
    """The classes the model predicts over the plane, with the data drawn on top.

    Args:
        predict: maps an (n, 2) array to class probabilities.
        x: points, shape (n, 2).
        y: their class indices.
        path: the PNG file.
        title: the figure's title.
        resolution: grid points per axis.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    pad = 0.1 * (x.max(axis=0) - x.min(axis=0)) + 1e-6
    lo, hi = x.min(axis=0) - pad, x.max(axis=0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.c_[xx.ravel(), yy.ravel()].astype("float32")
    classes = _class_probabilities(predict(grid)).argmax(axis=1).reshape(xx.shape)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.contourf(xx, yy, classes, alpha=0.3, cmap=plt.cm.Spectral, levels=np.arange(classes.max() + 2) - 0.5)
    ax.scatter(x[:, 0], x[:, 1], c=y, s=14, cmap=plt.cm.Spectral, edgecolors="k", linewidths=0.4)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title or "decision boundary")
    return _save(fig, path)


def predicted_vs_true(y_true: np.ndarray, y_pred: np.ndarray, path: Path, *, title: str = "") -> Path:
    """Regression: predicted against true values, with the diagonal of perfect predictions.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    y_true, y_pred = np.ravel(y_true), np.ravel(y_pred)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, s=12, alpha=0.7)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], color=WRONG, linewidth=1, label="perfect prediction")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    mae = float(np.mean(np.abs(y_true - y_pred)))
    ax.set_title(f"{title + ': ' if title else ''}test MAE {mae:.3g}")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _class_probabilities(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.ndim == 1 or p.shape[1] == 1:  # a sigmoid output: P(class 1)
        p1 = p.reshape(-1)
        return np.stack([1 - p1, p1], axis=1)
    return p

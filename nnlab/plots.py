"""The pictures of a run, as PNG files (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nnlab.views.style import number

RIGHT, WRONG, NEUTRAL = "tab:blue", "tab:red", "tab:gray"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from nnlab.store.folder import atomic_write
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


def _image_with_bars(fig, cell: tuple[int, int, int], image: np.ndarray, probabilities: np.ndarray,
                     predicted: int, true: int, caption: str, colour: str) -> None:
    """One example of a prediction grid, as the lessons draw it: the image with its caption in
    ``colour``, then the bars of its class probabilities (the predicted class red, the true blue).

    Args:
        fig: the figure; cell: ``(rows, cols, i)``, the grid's size and the example's place in it.
    """
    plt = _pyplot()
    rows, cols, i = cell
    ax = fig.add_subplot(rows, 2 * cols, 2 * i + 1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap=plt.cm.binary if image.ndim == 2 else None)
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(caption, color=colour, fontsize=8)
    ax = fig.add_subplot(rows, 2 * cols, 2 * i + 2)
    bars = ax.bar(range(len(probabilities)), probabilities, color=NEUTRAL)
    bars[predicted].set_color(WRONG)
    bars[true].set_color(RIGHT)
    ax.set_ylim(0, 1)
    ax.set_xticks(range(len(probabilities)))
    ax.tick_params(labelsize=5)
    ax.set_yticks([])


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
        caption = f"{class_names[predicted]} {100 * probabilities[i, predicted]:.0f}%\n({class_names[true]})"
        _image_with_bars(fig, (rows, cols, i), images[i], probabilities[i], predicted, true, caption,
                         RIGHT if predicted == true else WRONG)
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
    ax.set_title(f"{title + ': ' if title else ''}test MAE {number(mae)}")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def residuals(y_true: np.ndarray, y_pred: np.ndarray, path: Path, *, title: str = "") -> Path:
    """Regression: the residual (true − predicted) against the predicted value, with the zero line.

    A good fit scatters evenly about zero at every predicted value; a slope or a funnel
    shows what the model misses.

    Args:
        y_true: the true values.
        y_pred: the predicted values (the same count).
        path: the PNG file.
        title: prefix of the figure's title.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    y_true, y_pred = np.ravel(y_true).astype(float), np.ravel(y_pred).astype(float)
    residual = y_true - y_pred
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(y_pred, residual, s=12, alpha=0.7)
    ax.axhline(0.0, color=WRONG, linewidth=1, label="zero residual")
    ax.set_xlabel("predicted value")
    ax.set_ylabel("residual (true − predicted)")
    ax.set_title(f"{title + ': ' if title else ''}residuals, mean {number(float(np.mean(residual)))}")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix(normalized: np.ndarray, class_names: Sequence[str], path: Path, *,
                     most_confused: Sequence[tuple[str, str, float]] = (), title: str = "",
                     annotate_up_to: int = 12) -> Path:
    """The confusion matrix normalised per true class: row i is how the examples of class i were predicted.

    Readable for many classes (Reuters' 46): the figure grows with the classes, tick
    labels shrink, and cells are annotated only up to ``annotate_up_to`` classes.

    Args:
        normalized: (classes, classes), each row summing to 1 (0 for a class with no examples).
        class_names: a name per class.
        path: the PNG file.
        most_confused: ``(true, predicted, share)`` of the most frequent mistakes, most first: the
            title names the first; without annotated cells, all of them are listed under the matrix.
        title: prefix of the figure's title.
        annotate_up_to: write the share in each cell when there are at most this many classes.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    matrix = np.asarray(normalized, dtype=float)
    k = len(class_names)
    few = k <= annotate_up_to
    side = 5.5 if few else min(18.0, 2.5 + 0.3 * k)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(matrix, cmap=plt.cm.Blues, vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    names = [str(n) for n in class_names]
    size = 8 if few else (7 if k <= 30 else 6)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    long_names = max((len(n) for n in names), default=0) > 3
    ax.set_xticklabels(names, fontsize=size, rotation=90 if (not few or long_names) else 0)
    ax.set_yticklabels(names, fontsize=size)
    if few:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    heading = f"{title + ': ' if title else ''}confusion matrix (normalised per true class)"
    if most_confused:
        true, predicted, share = most_confused[0]
        heading += f"\nmost confused: {true} predicted as {predicted} ({100 * share:.0f}% of {true})"
        if not few:
            listed = "; ".join(f"{t} as {p} ({100 * s:.0f}%)" for t, p, s in most_confused)
            fig.text(0.5, 0.0, f"most confused (true as predicted, share of the true class): {listed}",
                     ha="center", va="top", fontsize=9, wrap=True)
    ax.set_title(heading, fontsize=9 if few else 11)
    return _save(fig, path)


def misclassified(images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray,
                  class_names: Sequence[str], path: Path, *, title: str = "") -> Path:
    """Wrong test predictions, each image beside the bars of its class probabilities, as the lessons
    draw a wrong prediction: the caption in red (``true: X`` / ``predicted: Y (97%)``), the predicted
    class's bar red and the true class's blue.

    Args:
        images: the wrongly predicted images, shape (n, h, w) or (n, h, w, c), most confident first.
        probabilities: their predicted probabilities, shape (n, classes) (or (n, 1) for binary).
        labels: their true class indices.
        class_names: a name per class.
        path: the PNG file.
        title: the figure's title.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    probabilities = _class_probabilities(probabilities)
    count = len(images)
    cols = 3
    rows = max(1, math.ceil(count / cols))
    fig = plt.figure(figsize=(2 * 2 * cols, 2.3 * rows + 0.4))
    for i in range(count):
        predicted = int(np.argmax(probabilities[i]))
        true = int(labels[i])
        caption = (f"true: {class_names[true]}\npredicted: {class_names[predicted]} "
                   f"({100 * probabilities[i, predicted]:.0f}%)")
        _image_with_bars(fig, (rows, cols, i), images[i], probabilities[i], predicted, true, caption, WRONG)
    fig.suptitle(title or f"the {count} wrong test predictions made with the highest confidence", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def roc_curve(fpr: Sequence[float], tpr: Sequence[float], auc: float, path: Path, *, title: str = "") -> Path:
    """Binary classification: the ROC curve (true against false positive rate over every
    threshold), its AUC in the legend, and the diagonal of chance.

    Args:
        fpr, tpr: the curve's points (scikit-learn's ``roc_curve``).
        auc: the area under it.
        path: the PNG file.
        title: prefix of the figure's title.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, color=RIGHT, linewidth=1.8, label=f"ROC curve (AUC {number(auc)})")
    ax.plot([0, 1], [0, 1], color=NEUTRAL, linewidth=1, linestyle="--", label="chance (AUC 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"{title + ': ' if title else ''}ROC curve on the test set")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _class_probabilities(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.ndim == 1 or p.shape[1] == 1:  # a sigmoid output: P(class 1)
        p1 = p.reshape(-1)
        return np.stack([1 - p1, p1], axis=1)
    return p


def overlaid_curves(curves: Sequence[tuple[str, Sequence[float], Sequence[float]]], metric: str, path: Path,
                    *, title: str = "") -> Path:
    """The same metric of several runs in one figure, one labelled line per run (``nnlab compare --plot``).

    Args:
        curves: ``(label, epochs, values)`` per run.
        metric: the history column drawn (the y axis).
        path: the PNG file.
        title: the figure's title (default: the metric).

    Returns:
        ``path``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    longest = max((len(values) for _, _, values in curves), default=0)
    marker = "o" if longest <= 30 else None
    for label, epochs, values in curves:
        ax.plot(list(epochs)[: len(values)], values, marker=marker, markersize=3, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} by epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if len(curves) > 6 else 9, loc="best")
    return _save(fig, path)


def group_curves(bands: Sequence[tuple[str, Sequence[int], Sequence[float], Sequence[float | None]]], metric: str,
                 path: Path, *, title: str = "") -> Path:
    """Each group's mean curve with a shaded band of ±1 standard deviation, one colour per group
    (``nnlab compare --group-by ... --plot``).

    Args:
        bands: ``(label, epochs, mean, std)`` per group; std None where fewer than 2 runs (no band there).
        metric: the history column drawn (the y axis).
        path: the PNG file.
        title: the figure's title (default: the metric).

    Returns:
        ``path``.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, epochs, mean, std) in enumerate(bands):
        colour = colours[i % len(colours)]
        x, m = np.asarray(epochs, dtype=float), np.asarray(mean, dtype=float)
        s = np.asarray([np.nan if v is None else v for v in std], dtype=float)
        ax.plot(x, m, color=colour, linewidth=1.6, label=label,
                linestyle="-" if i < len(colours) else "--")
        ax.fill_between(x, m - s, m + s, color=colour, alpha=0.18, linewidth=0, where=~np.isnan(s))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} by epoch: mean of each group, band ±1 std")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if len(bands) > 6 else 9, loc="best")
    return _save(fig, path)


def single_prediction(probabilities: np.ndarray, class_names: Sequence[str], path: Path, *,
                      image: np.ndarray | None = None, true: int | None = None, title: str = "") -> Path:
    """One example as the lessons draw it: the image with its predicted and true label
    (blue when right, red when wrong) beside the bars of the class probabilities.

    Args:
        probabilities: the model's class probabilities for this example, shape (classes,).
        class_names: a name per class.
        path: the PNG file.
        image: the example as an image (h, w) or (h, w, c), or None for non-image inputs.
        true: the true class index, when known (a test example).
        title: the figure's title.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    p = _class_probabilities(np.asarray(probabilities).reshape(1, -1))[0]
    predicted = int(np.argmax(p))
    color = NEUTRAL if true is None else (RIGHT if predicted == true else WRONG)
    caption = f"{class_names[predicted]} {100 * p[predicted]:.0f}%"
    if true is not None:
        caption += f" ({class_names[true]})"
    columns = 2 if image is not None else 1
    fig = plt.figure(figsize=(3.2 * columns + max(0, len(p) - 10) * 0.15, 3.2))
    if image is not None:
        ax = fig.add_subplot(1, columns, 1)
        picture = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
        ax.imshow(picture, cmap=plt.cm.binary if picture.ndim == 2 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(caption, color=color)
    ax = fig.add_subplot(1, columns, columns)
    bars = ax.bar(range(len(p)), p, color=NEUTRAL)
    bars[predicted].set_color(WRONG if true is not None else RIGHT)
    if true is not None:
        bars[true].set_color(RIGHT)
    ax.set_ylim(0, 1)
    ax.set_xticks(range(len(p)))
    ax.set_xticklabels([str(n) for n in class_names], rotation=90 if len(p) > 10 else 0, fontsize=7)
    if image is None:
        ax.set_xlabel(caption, color=color)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def regression_prediction(predicted: float, path: Path, *, true: float | None = None, title: str = "") -> Path:
    """A regression prediction beside the true value, when known.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    labels, heights, colors = ["predicted"], [predicted], [RIGHT]
    if true is not None:
        labels.append("true")
        heights.append(true)
        colors.append(NEUTRAL)
    fig, ax = plt.subplots(figsize=(3.5, 3.2))
    ax.bar(labels, heights, color=colors)
    for i, h in enumerate(heights):
        ax.annotate(number(h), (i, h), ha="center", va="bottom", fontsize=8)
    ax.set_title(title or "prediction")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def kfold_curve(mean: Sequence[float], folds: Sequence[Sequence[float]], path: Path, *, metric: str,
                best_epoch: int | None = None, best_label: str = "", smoothed: Sequence[float] | None = None,
                skip_first: int = 0, title: str = "") -> Path:
    """k-fold validation: the per-epoch mean over the folds, the folds faint behind it.

    Args:
        mean: the averaged curve, one value per epoch (epoch 1 first).
        folds: each fold's own curve (they may be shorter, e.g. after early stopping).
        path: the PNG file.
        metric: what the curve measures (``val_mae``), for the labels.
        best_epoch: the epoch to mark with a vertical line, or None.
        best_label: what the best epoch was read from (``val_loss``), for its label.
        smoothed: the curve the best epoch was read from, when it was smoothed.
        skip_first: leave out this many first epochs (their scale can hide the rest).
        title: prefix of the figure's title.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    start = skip_first + 1
    for i, curve in enumerate(folds):
        curve = np.asarray(curve, dtype=float)[skip_first:]
        ax.plot(np.arange(start, start + len(curve)), curve, color=NEUTRAL, alpha=0.35, linewidth=0.8,
                label="each fold" if i == 0 else None)
    values = np.asarray(mean, dtype=float)[skip_first:]
    ax.plot(np.arange(start, start + len(values)), values, color=RIGHT, linewidth=1.8,
            label=f"mean of {len(folds)} folds")
    if smoothed is not None:
        curve = np.asarray(smoothed, dtype=float)[skip_first:]
        ax.plot(np.arange(start, start + len(curve)), curve, color="tab:orange", linewidth=1.2,
                linestyle="--", label="smoothed mean")
    if best_epoch is not None and best_epoch >= start:
        label = f"best epoch {best_epoch}" + (f" ({best_label})" if best_label else "")
        ax.axvline(best_epoch, color=WRONG, linewidth=1, linestyle=":", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    shown = f"{metric}, epochs {start}+" if skip_first else metric
    ax.set_title(f"{title}: k-fold {shown}" if title else f"k-fold {shown}")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)

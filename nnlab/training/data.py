"""The arrays a model trains, validates and tests on: the validation rows split off, preprocessing fitted
on the rows trained on only, every part transformed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlab.config import Config
from nnlab.datasets.base import Dataset
from nnlab.preprocessing import Preprocessor


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

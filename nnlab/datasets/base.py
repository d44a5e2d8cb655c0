"""The Dataset container every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Task = Literal["binary", "multiclass", "regression"]


@dataclass
class Dataset:
    """Train and test arrays of one dataset plus what nnlab needs to know about them.

    Args:
        name: registry name.
        task: ``binary``, ``multiclass`` or ``regression``.
        x_train, y_train, x_test, y_test: the arrays, as the source provides them.
        class_names: one name per class (classification only).
        image_shape: (height, width[, channels]) when the inputs are images,
            even if stored flat (scikit-learn's digits are 8x8 images stored as 64 values).
        feature_names: column names of tabular inputs.
        source: where the data came from (a path, "generated", "scikit-learn").
        extras: loader-specific facts (for example the word index file of a text dataset).
    """

    name: str
    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    feature_names: list[str] | None = None
    source: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int | None:
        """Number of classes (2 for binary), or None for regression."""
        if self.task == "regression":
            return None
        if self.class_names:
            return len(self.class_names)
        labels = np.concatenate([np.ravel(self.y_train), np.ravel(self.y_test)])
        return int(labels.max()) + 1 if labels.size else 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input example, as stored (before preprocessing)."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary: task, shapes, classes, source."""
        return {
            "name": self.name,
            "task": self.task,
            "train_shape": list(self.x_train.shape),
            "test_shape": list(self.x_test.shape),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "source": self.source,
        }

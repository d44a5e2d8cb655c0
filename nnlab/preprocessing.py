"""Preprocessing between loading and training: scale, flatten, standardize, labels.

Whatever is learned from data (the standardization statistics) is fitted on the
rows the model trains on and only applied to validation and test rows, so no
information leaks from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnlab.config import Config, Preprocessing
from nnlab.datasets.base import Dataset

#: Losses that expect one-hot labels rather than class indices.
ONEHOT_LOSSES = {"categorical_crossentropy", "categoricalcrossentropy", "categorical_focal_crossentropy",
                 "categoricalfocalcrossentropy", "categorical_hinge", "categoricalhinge", "kl_divergence",
                 "kldivergence", "kld", "kullback_leibler_divergence"}


def wants_onehot(config: Config) -> bool:
    """Whether labels are one-hot encoded for this config (``labels: auto`` follows the loss)."""
    labels = config.dataset.preprocessing.labels
    if labels != "auto":
        return labels == "onehot"
    name = config.loss if isinstance(config.loss, str) else next(iter(config.loss))
    return name.lower() in ONEHOT_LOSSES


@dataclass
class Preprocessor:
    """Fit on training rows, then transform any rows the same way.

    Args:
        options: the config's ``dataset.preprocessing``.
        task: the dataset's task.
        num_classes: number of classes (for one-hot labels).
        onehot: encode labels one-hot instead of as integers.
    """

    options: Preprocessing
    task: str
    num_classes: int | None = None
    onehot: bool = False
    mean_: np.ndarray | None = field(default=None, repr=False)
    scale_: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def for_config(cls, config: Config, dataset: Dataset) -> "Preprocessor":
        """The preprocessor a config asks for, for this dataset."""
        return cls(config.dataset.preprocessing, dataset.task, dataset.num_classes,
                   onehot=wants_onehot(config) and dataset.task != "regression")

    def fit(self, x: np.ndarray, y: Any = None) -> "Preprocessor":
        """Learn the standardization statistics from training rows ``x``.

        Returns:
            self
        """
        if self.options.standardize:
            from sklearn.preprocessing import StandardScaler

            flat = self._shaped(x).reshape(len(x), -1)
            scaler = StandardScaler().fit(flat)
            self.mean_ = scaler.mean_.astype("float32")
            self.scale_ = scaler.scale_.astype("float32")
        return self

    def transform_x(self, x: np.ndarray) -> np.ndarray:
        """Inputs ready for the model, as float32."""
        x = self._shaped(x)
        if self.options.standardize:
            if self.mean_ is None:
                raise RuntimeError("Preprocessor.fit must be called before transform_x")
            shape = x.shape
            x = ((x.reshape(len(x), -1) - self.mean_) / self.scale_).reshape(shape)
        if self.options.channel_axis:
            x = x[..., np.newaxis]
        return np.ascontiguousarray(x, dtype="float32")

    def transform_y(self, y: np.ndarray) -> np.ndarray:
        """Labels in the form the loss expects: float32 for binary and regression,
        integers or one-hot for multiclass."""
        y = np.asarray(y)
        if self.task in ("binary", "regression"):
            y = y.astype("float32")
            return y.reshape(len(y), -1) if y.ndim > 1 else y
        if self.onehot:
            if y.ndim == 2:  # already one-hot
                return y.astype("float32")
            return np.eye(self.num_classes, dtype="float32")[y.astype("int64")]
        return y.astype("int64")

    def _shaped(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype="float32")
        if self.options.flatten:
            x = x.reshape(len(x), -1)
        if self.options.scale:
            x = x / np.float32(self.options.scale)
        return x

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The model's input shape after preprocessing one example of ``input_shape``."""
        shape = (int(np.prod(input_shape)),) if self.options.flatten else tuple(input_shape)
        return shape + (1,) if self.options.channel_axis else shape

"""Preprocessing between loading and training: multi-hot, scale, flatten, standardize, labels.

Whatever is learned from data (the standardization statistics) is fitted on the
rows the model trains on and only applied to validation and test rows, so no
information leaks from them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from nnlab.config import Config, Preprocessing
from nnlab.datasets.base import Dataset
from nnlab.errors import DataError

#: Storage of multi-hot inputs: 0 and 1 are exact in uint8, a quarter of float32's memory (an eighth of
#: the lesson's float64), and Keras casts each batch to the model's float32 input as it feeds it.
MULTI_HOT_DTYPE = "uint8"

#: Losses that expect one-hot labels rather than class indices.
ONEHOT_LOSSES = {"categorical_crossentropy", "categoricalcrossentropy", "categorical_focal_crossentropy",
                 "categoricalfocalcrossentropy", "categorical_hinge", "categoricalhinge", "kl_divergence",
                 "kldivergence", "kld", "kullback_leibler_divergence"}


def multi_hot(sequences: Sequence[Sequence[int]] | np.ndarray, dimension: int, dtype: Any = "float32",
              *, chunk_rows: int = 4096) -> np.ndarray:
    """Word-index sequences to 0/1 rows: ``out[i, j] = 1`` for every index j in sequence i.

    The same result as the lessons' loop (``for j in sequence: results[i, j] = 1.``)
    without a Python step per word: each chunk of rows is flattened into one index
    array and set in one numpy assignment.

    Args:
        sequences: lists (or arrays) of word indices, e.g. ``keras.datasets.imdb.load_data``'s
            object arrays; or a 2-D integer array (padded sequences).
        dimension: width of each row (the vocabulary size, num_words).
        dtype: dtype of the result (float32, or narrower: float16, uint8, bool).
        chunk_rows: rows flattened at a time (bounds the temporary index arrays).

    Returns:
        Array of shape ``(len(sequences), dimension)``.

    Raises:
        DataError: an index is negative or not below ``dimension``.
    """
    n = len(sequences)
    out = np.zeros((n, dimension), dtype=dtype)
    flat_out = out.reshape(-1)
    padded = isinstance(sequences, np.ndarray) and sequences.dtype != object
    lengths = (np.full(n, int(np.prod(sequences.shape[1:])), dtype=np.int64) if padded
               else np.fromiter(map(len, sequences), dtype=np.int64, count=n))
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        part = sequences[start:stop]
        if padded:
            indices = part.reshape(-1).astype(np.int64)
        else:  # numpy reads the Python ints straight from the chained lists, no Python step per word
            indices = np.fromiter(itertools.chain.from_iterable(part), dtype=np.int64,
                                  count=int(lengths[start:stop].sum()))
        # one pass checks both ends: seen as unsigned, a negative index is larger than any width
        if indices.size and int(indices.view(np.uint64).max()) >= dimension:
            low, high = int(indices.min()), int(indices.max())
            bad = low if low < 0 else high
            raise DataError(f"word index {bad} does not fit a multi-hot vector of width {dimension} "
                            "(indices run from 0 to the vocabulary size - 1; check num_words)")
        positions = np.repeat(np.arange(start, stop, dtype=np.int64) * dimension, lengths[start:stop])
        positions += indices
        flat_out[positions] = 1
    return out


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
    vocabulary_size: int | None = None
    mean_: np.ndarray | None = field(default=None, repr=False)
    scale_: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def for_config(cls, config: Config, dataset: Dataset) -> "Preprocessor":
        """The preprocessor a config asks for, for this dataset.

        Raises:
            ConfigError: multi_hot asked of a dataset without word-index sequences, or
                sequences left without multi_hot.
        """
        options = config.dataset.preprocessing
        sequences = bool(dataset.extras.get("sequences"))
        if options.multi_hot and not sequences:
            raise config.error(("dataset", "preprocessing", "multi_hot"),
                               f"dataset '{dataset.name}' has no word-index sequences to multi-hot "
                               "(imdb and reuters have)")
        if sequences and not options.multi_hot:
            raise config.error(("dataset", "preprocessing"),
                               f"dataset '{dataset.name}' holds word-index sequences of different lengths; "
                               "add `multi_hot: true` to turn each into a vector as wide as num_words")
        return cls(options, dataset.task, dataset.num_classes,
                   onehot=wants_onehot(config) and dataset.task != "regression",
                   vocabulary_size=dataset.extras.get("vocabulary_size"))

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
        """Inputs ready for the model: float32, or uint8 for plain multi-hot vectors
        (Keras casts each batch to the model's float32 input)."""
        x = self._shaped(x)
        if self.options.standardize:
            if self.mean_ is None:
                raise RuntimeError("Preprocessor.fit must be called before transform_x")
            shape = x.shape
            x = ((x.reshape(len(x), -1) - self.mean_) / self.scale_).reshape(shape)
        if self.options.channel_axis:
            x = x[..., np.newaxis]
        return np.ascontiguousarray(x, dtype=x.dtype if x.dtype == MULTI_HOT_DTYPE else "float32")

    def transform_y(self, y: np.ndarray) -> np.ndarray:
        """Labels in the form the loss expects: float32 for binary and regression,
        integers or one-hot for multiclass."""
        y = np.asarray(y)
        if self.task in ("binary", "regression"):
            y = y.astype("float32")
            return y.reshape(len(y), -1) if y.ndim > 1 else y
        if y.ndim == 2 and y.shape[1] == 1:  # a column of class indices (cifar10's labels)
            y = y[:, 0]
        if self.onehot:
            if y.ndim == 2:  # already one-hot
                return y.astype("float32")
            return np.eye(self.num_classes, dtype="float32")[y.astype("int64")]
        return y.astype("int64")

    def _shaped(self, x: np.ndarray) -> np.ndarray:
        if self.options.multi_hot:
            x = multi_hot(x, int(self.vocabulary_size or 0), dtype=MULTI_HOT_DTYPE)
            if not (self.options.scale or self.options.standardize):
                return x
        x = np.asarray(x, dtype="float32")
        if self.options.flatten:
            x = x.reshape(len(x), -1)
        if self.options.scale:
            x = x / np.float32(self.options.scale)
        return x

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The model's input shape after preprocessing one example of ``input_shape``."""
        if self.options.multi_hot:
            input_shape = (int(self.vocabulary_size or 0),)
        shape = (int(np.prod(input_shape)),) if self.options.flatten else tuple(input_shape)
        return shape + (1,) if self.options.channel_axis else shape

"""multi_hot: equal to the lesson's loop, narrow storage, and its place in preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from keras_files import keras_offline, write_cifar10, write_imdb, write_reuters
from nnlab.errors import ConfigError, DataError
from nnlab.preprocessing import MULTI_HOT_DTYPE, Preprocessor, multi_hot


def lesson_vectorize(sequences, dimension=10000):
    """The lesson listing, verbatim: a Python step per word, into float64."""
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        for j in sequence:
            results[i, j] = 1.
    return results


def ragged(rng, rows, dimension, max_len=60):
    out = np.empty(rows, dtype=object)
    for i in range(rows):
        out[i] = [int(v) for v in rng.integers(0, dimension, rng.integers(0, max_len))]  # empty rows too
    return out


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8", "bool"])
def test_equals_the_lessons_loop(dtype):
    rng = np.random.default_rng(1)
    sequences = ragged(rng, 300, 500)
    sequences[3] = [7, 7, 7, 0, 499]  # repeated words and both ends of the range
    expected = lesson_vectorize(sequences, 500)
    got = multi_hot(sequences, 500, dtype=dtype, chunk_rows=64)  # several chunks, a ragged last one
    assert got.dtype == np.dtype(dtype) and got.shape == (300, 500)
    np.testing.assert_array_equal(got.astype("float64"), expected)


def test_takes_lists_and_padded_arrays_alike():
    rng = np.random.default_rng(2)
    as_lists = [list(s) for s in ragged(rng, 50, 100)]
    np.testing.assert_array_equal(multi_hot(as_lists, 100), lesson_vectorize(as_lists, 100))
    padded = rng.integers(0, 100, size=(20, 15))
    np.testing.assert_array_equal(multi_hot(padded, 100), lesson_vectorize(padded, 100))
    assert multi_hot([], 10).shape == (0, 10)


@pytest.mark.parametrize("bad", [10, -1])
def test_an_index_outside_the_width_is_refused(bad):
    with pytest.raises(DataError, match=f"word index {bad} does not fit a multi-hot vector of width 10"):
        multi_hot([[1, 2], [3, bad]], 10)


IMDB_CONFIG = """
name: tiny_imdb
dataset: {{name: imdb, num_words: {num_words}, preprocessing: {preprocessing}}}
model: {{layers: [{{Dense: {{units: 1, activation: sigmoid}}}}]}}
optimizer: rmsprop
loss: binary_crossentropy
training: {{epochs: 1}}
"""


@pytest.fixture
def imdb_dir(monkeypatch, tmp_path):
    keras_offline(monkeypatch, tmp_path / "keras_home")
    write_imdb(tmp_path, train=30, test=20, vocab=200)
    write_reuters(tmp_path, rows=40, vocab=200)
    return tmp_path


def test_preprocessing_multi_hots_imdb_as_the_lesson_does(imdb_dir):
    from nnlab.config import config_from_text
    from nnlab.datasets.loading import load_dataset
    from nnlab.training.data import prepare

    config = config_from_text(IMDB_CONFIG.format(num_words=100, preprocessing="{multi_hot: true}"))
    dataset = load_dataset(config, imdb_dir)
    data = prepare(config, dataset)
    assert data.x_train.dtype == MULTI_HOT_DTYPE and data.input_shape == (100,)
    np.testing.assert_array_equal(data.x_train, lesson_vectorize(dataset.x_train, 100))
    np.testing.assert_array_equal(data.x_test, lesson_vectorize(dataset.x_test, 100))
    assert data.y_train.dtype == np.float32, "binary labels as float32"
    assert data.preprocessor.output_shape(dataset.input_shape) == (100,)


def test_without_num_words_the_width_covers_every_index(imdb_dir):
    from nnlab.config import config_from_text
    from nnlab.datasets.loading import load_dataset

    config = config_from_text(IMDB_CONFIG.format(num_words="null", preprocessing="{multi_hot: true}"))
    dataset = load_dataset(config, imdb_dir)
    width = dataset.extras["vocabulary_size"]
    assert width == 1 + max(max(s) for s in [*dataset.x_train, *dataset.x_test])
    assert Preprocessor.for_config(config, dataset).transform_x(dataset.x_test).shape == (20, width)


def test_reuters_labels_one_hot_for_categorical_crossentropy(imdb_dir):
    from nnlab.config import config_from_dict
    from nnlab.datasets.loading import load_dataset
    from nnlab.training.data import prepare

    config = config_from_dict({
        "name": "r", "dataset": {"name": "reuters", "num_words": 150, "preprocessing": {"multi_hot": True}},
        "model": {"layers": [{"Dense": {"units": 46, "activation": "softmax"}}]}, "optimizer": "rmsprop",
        "loss": "categorical_crossentropy", "training": {"epochs": 1}})
    dataset = load_dataset(config, imdb_dir)
    data = prepare(config, dataset)
    assert data.y_train.shape == (len(dataset.y_train), 46)
    np.testing.assert_array_equal(data.y_train.argmax(axis=1), dataset.y_train)


def test_sequences_need_multi_hot_and_multi_hot_needs_sequences(imdb_dir):
    from nnlab.config import config_from_text
    from nnlab.datasets.loading import load_dataset
    from nnlab.training.data import prepare

    config = config_from_text(IMDB_CONFIG.format(num_words=100, preprocessing="{}"))
    with pytest.raises(ConfigError, match="dataset.preprocessing: .*word-index sequences.*multi_hot: true"):
        prepare(config, load_dataset(config, imdb_dir))
    spiral = config_from_text(IMDB_CONFIG.format(num_words=1, preprocessing="{multi_hot: true}")
                              .replace("{name: imdb, num_words: 1,", "{name: spiral,"))
    with pytest.raises(ConfigError, match="dataset.preprocessing.multi_hot: dataset 'spiral' has no word-index"):
        prepare(spiral, load_dataset(spiral))


def test_cifar_label_column_becomes_one_hot_rows(monkeypatch, tmp_path):
    from nnlab.config import config_from_dict
    from nnlab.datasets.loading import load_dataset
    from nnlab.training.data import prepare

    keras_offline(monkeypatch, tmp_path / "keras_home")
    write_cifar10(tmp_path)
    base = {"name": "c", "dataset": {"name": "cifar10", "preprocessing": {"scale": 255}},
            "model": {"layers": ["Flatten", {"Dense": {"units": 10, "activation": "softmax"}}]},
            "optimizer": "adam", "training": {"epochs": 1}}
    onehot = config_from_dict({**base, "loss": "categorical_crossentropy"})
    dataset = load_dataset(onehot, tmp_path)
    data = prepare(onehot, dataset)
    assert data.y_train.shape == (30, 10)
    np.testing.assert_array_equal(data.y_train.argmax(axis=1), dataset.y_train[:, 0])
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1 and data.x_train.dtype == np.float32
    sparse = prepare(config_from_dict({**base, "loss": "sparse_categorical_crossentropy"}), dataset)
    assert sparse.y_train.shape == (30,)

"""Preprocessing: training statistics only, labels in the form the loss needs."""

from __future__ import annotations

import numpy as np

from nnlab.config import Preprocessing, config_from_text
from nnlab.datasets import Dataset
from nnlab.preprocessing import Preprocessor, wants_onehot
from nnlab.training.data import prepare, validation_indices

from conftest import SPIRAL


def test_standardize_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 2, size=(200, 3)).astype("float32")
    test = rng.normal(50, 9, size=(50, 3)).astype("float32")  # very different: must not be looked at
    pre = Preprocessor(Preprocessing(standardize=True), "regression").fit(train)
    np.testing.assert_allclose(pre.mean_, train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(pre.transform_x(train).mean(axis=0), 0, atol=1e-5)
    expected = (test - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(pre.transform_x(test), expected, rtol=1e-4)


def test_validation_rows_are_not_used_for_the_statistics():
    config = config_from_text(SPIRAL.replace("batch_size: full", "validation_holdout: 10")
                              .replace("{name: spiral,", "{name: spiral, preprocessing: {standardize: true},"),
                              "x.yaml")
    x = np.concatenate([np.full((10, 2), 1000.0), np.random.default_rng(0).normal(size=(90, 2))]).astype("float32")
    y = np.zeros(100, "int64")
    data = prepare(config, Dataset("d", "multiclass", x, y, x[:5], y[:5], class_names=["a", "b", "c"]))
    assert len(data.x_train) == 90 and len(data.x_val) == 10
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-5)  # fitted without the 1000s
    assert np.all(data.x_val > 100)


def test_validation_forms_take_the_front_or_the_end():
    holdout = config_from_text(SPIRAL.replace("batch_size: full", "validation_holdout: 3"), "x.yaml")
    fit, val = validation_indices(10, holdout)
    assert list(val) == [0, 1, 2] and list(fit) == list(range(3, 10))
    split = config_from_text(SPIRAL.replace("batch_size: full", "validation_split: 0.2"), "x.yaml")
    fit, val = validation_indices(10, split)
    assert list(val) == [8, 9] and list(fit) == list(range(8))


def test_scale_flatten_channel_axis_and_labels():
    images = np.arange(2 * 4 * 4, dtype="uint8").reshape(2, 4, 4)
    flat = Preprocessor(Preprocessing(scale=255, flatten=True), "multiclass", 3).fit(images)
    assert flat.transform_x(images).shape == (2, 16) and flat.transform_x(images).max() <= 1
    assert flat.transform_x(images).dtype == np.float32
    conv = Preprocessor(Preprocessing(channel_axis=True), "multiclass", 3)
    assert conv.transform_x(images).shape == (2, 4, 4, 1)
    assert conv.output_shape((4, 4)) == (4, 4, 1)
    onehot = Preprocessor(Preprocessing(), "multiclass", 3, onehot=True)
    np.testing.assert_array_equal(onehot.transform_y(np.array([2, 0])), [[0, 0, 1], [1, 0, 0]])
    binary = Preprocessor(Preprocessing(), "binary", 2)
    assert binary.transform_y(np.array([0, 1])).dtype == np.float32


def test_labels_auto_follow_the_loss():
    sparse = config_from_text(SPIRAL, "x.yaml")
    assert not wants_onehot(sparse)
    dense = config_from_text(SPIRAL.replace("sparse_categorical_crossentropy", "categorical_crossentropy"), "x")
    assert wants_onehot(dense)
    forced = config_from_text(SPIRAL.replace("{name: spiral,", "{name: spiral, preprocessing: {labels: onehot},"),
                              "x.yaml")
    assert wants_onehot(forced)

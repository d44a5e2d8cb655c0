"""The performance levers of ``training``: input pipeline, steps per execution, jit_compile.

They must not change what is computed: the same rows every epoch, the same
updates in the same order when nothing is shuffled, the same final metrics.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnlab.backend import keras
from nnlab.config import AUTO_STEPS_PER_EXECUTION, config_from_text
from nnlab.errors import ConfigError
from nnlab.training.feed import Feed, batches, configure_execution, pipeline, slices, steps_per_execution

from conftest import SPIRAL


def passes(dataset, count: int) -> list[np.ndarray]:
    """The first column of each batch, pass by pass (a new iterator each pass, as each epoch of fit)."""
    return [np.concatenate([x.numpy()[:, 0] for x, _ in dataset]) for _ in range(count)]


def test_batches_hold_every_row_once_per_pass_reshuffled_each_pass():
    x = np.arange(103 * 2, dtype=np.uint8).reshape(103, 2)
    y = np.arange(103, dtype=np.float32)
    data = batches(x, y, 10, shuffle=True, seed=7)
    first, second, third = passes(data, 3)
    assert [len(b[0]) for b in data] == [10] * 10 + [3], "the last batch holds the rest, as fit's does"
    for order in (first, second, third):
        assert sorted(order.tolist()) == sorted(x[:, 0].tolist())
    assert first.tolist() != second.tolist() != third.tolist(), "a new order every epoch"
    again = passes(batches(x, y, 10, shuffle=True, seed=7), 1)[0]
    assert again.tolist() == first.tolist(), "the same seed, the same order"
    for xb, yb in data:
        assert xb.dtype.name == "uint8", "narrow storage stays narrow until the model casts it"
        assert np.array_equal(xb.numpy()[:, 0] // 2, yb.numpy().astype(int)), "rows and labels stay paired"


def test_batches_without_shuffle_and_slices_keep_the_order():
    x = np.arange(25, dtype=np.float32).reshape(25, 1)
    y = np.arange(25, dtype=np.int64)
    assert all(np.array_equal(p, x[:, 0]) for p in passes(batches(x, y, 4), 2))
    data = slices(x, y, 4)
    assert int(data.cardinality()) == 7
    got = [(xb.numpy(), yb.numpy()) for xb, yb in data]
    assert np.array_equal(np.concatenate([g[0] for g in got]), x)
    assert np.array_equal(np.concatenate([g[1] for g in got]), y)


def test_pipeline_and_steps_per_execution_follow_the_backend():
    config = config_from_text(SPIRAL)
    assert pipeline(config, "tensorflow") == pipeline(config, "jax") == "fused"
    assert pipeline(config, "torch") == "arrays"
    no_jit = config_from_text(SPIRAL, overrides=["training.jit_compile=false"])
    assert pipeline(no_jit, "jax") == "arrays", "the fused loop is a compiled loop"
    assert pipeline(no_jit, "tensorflow") == "fused", "on TensorFlow the fused loop runs without XLA too"
    assert steps_per_execution(config, "tensorflow") == steps_per_execution(config, "jax") == AUTO_STEPS_PER_EXECUTION
    assert steps_per_execution(config, "torch") == 1
    assert steps_per_execution(config_from_text(SPIRAL, overrides=["training.steps_per_execution=5"]), "jax") == 5
    arrays = config_from_text(SPIRAL, overrides=["training.input_pipeline=arrays"])
    assert pipeline(arrays, "tensorflow") == "arrays"
    tf_data = config_from_text(SPIRAL, overrides=["training.input_pipeline=tf_data"])
    with pytest.raises(ConfigError) as err:
        pipeline(tf_data, "jax")
    assert err.value.key == "training.input_pipeline" and "TensorFlow backend only" in err.value.message
    device = config_from_text(SPIRAL, overrides=["training.input_pipeline=device"])
    assert pipeline(device, "jax") == "device"
    for refused, backend, reason in ((device, "tensorflow", "this run uses tensorflow"),
                                     (device, "torch", "this run uses torch"),
                                     (config_from_text(SPIRAL, overrides=["training.input_pipeline=device",
                                                                          "training.jit_compile=false"]),
                                      "jax", "jit_compile is false")):
        with pytest.raises(ConfigError) as err:
            pipeline(refused, backend)
        assert err.value.key == "training.input_pipeline" and reason in err.value.message


def test_a_device_feed_that_would_not_fit_the_device_uses_the_arrays(monkeypatch):
    import nnlab.training.device_loop

    x, y = np.zeros((10, 3), np.float32), np.zeros(10, np.int64)
    monkeypatch.setattr(nnlab.training.device_loop, "fits_on_device", lambda *arrays: False)
    feed = Feed.of("device", 4, (x, y), None)
    assert feed.kind == "arrays" and feed.parts["train"][0] is x
    monkeypatch.setattr(nnlab.training.device_loop, "fits_on_device", lambda *arrays: len(arrays) == 4)
    assert Feed.of("device", 4, (x, y), (x, y)).kind == "device", "train and validation arrays are counted"


@pytest.mark.parametrize("override, message", [
    ("training.input_pipeline=fast", "'auto', 'fused', 'tf_data', 'device' or 'arrays'"),
    ("training.steps_per_execution=0", "whole number from 1"),
    ("training.steps_per_execution=2.5", "whole number from 1"),
    ("training.jit_compile=maybe", "true, false or auto"),
    ("training.deterministic=sometimes", "boolean"),
])
def test_lever_values_are_validated(override, message):
    with pytest.raises(ConfigError) as err:
        config_from_text(SPIRAL, overrides=[override])
    assert err.value.key == override.split("=")[0] and message in err.value.message


def test_configure_execution_sets_the_compiled_models_levers():
    from nnlab.model import build_model

    config = config_from_text(SPIRAL, overrides=["training.steps_per_execution=7", "training.jit_compile=false"])
    model = build_model(config, (2,), task="multiclass", num_classes=3)
    configure_execution(model, config)
    assert model.steps_per_execution == 7 and model.jit_compile is False
    auto = build_model(config_from_text(SPIRAL), (2,), task="multiclass", num_classes=3)
    configure_execution(auto, config_from_text(SPIRAL))
    assert auto.steps_per_execution == AUTO_STEPS_PER_EXECUTION


def _fit(kind: str, steps: int, x, y, xv, yv, repeat: bool = False) -> tuple[dict, list[np.ndarray]]:
    k = keras()
    k.utils.set_random_seed(3)
    model = k.Sequential([k.Input((x.shape[1],)), k.layers.Dense(8, activation="relu"),
                          k.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"], steps_per_execution=steps)
    feed = Feed.of(kind, 16, (x, y), (xv, yv), repeat=repeat)
    history = feed.fit(model, epochs=3, callbacks=[], shuffle=False, seed=0)
    return history.history, model.get_weights()


def test_tf_data_and_many_steps_per_call_compute_what_keras_arrays_compute():
    rng = np.random.default_rng(0)
    x = (rng.random((150, 12)) < 0.3).astype("uint8")  # multi-hot-like, stored narrow
    y = (x[:, :4].sum(axis=1) > 1).astype("float32")
    xv, yv = x[:40], y[:40]
    reference, weights = _fit("arrays", 1, x, y, xv, yv)
    # repeat: one pipeline for every epoch, steps per call dividing the epoch, validation as one batch.
    for kind, steps, repeat in (("tf_data", 1, False), ("tf_data", 4, False), ("tf_data", 128, False),
                                ("arrays", 4, False), ("tf_data", 128, True), ("tf_data", 4, True),
                                ("arrays", 1, True)):
        history, got = _fit(kind, steps, x, y, xv, yv, repeat)
        assert set(history) == set(reference) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        for key in reference:
            assert history[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), (kind, steps, repeat, key)
        for a, b in zip(weights, got):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_train_gives_the_same_run_with_either_pipeline(write_config, tmp_path):
    from nnlab.config import load_config
    from nnlab.training.run import train

    path = write_config(SPIRAL.replace("batch_size: full", "batch_size: 32, shuffle: false, "
                                                            "validation_split: 0.2"))
    results = {}
    for kind in ("arrays", "tf_data"):
        config = load_config(path, [f"training.input_pipeline={kind}", "training.epochs=4"])
        result = train(config, runs_dir=tmp_path / kind)
        assert result.exit_code == 0
        results[kind] = json.loads((result.run.path / "metrics.json").read_text())
    for part in ("train", "validation", "test"):
        for metric, value in results["arrays"][part].items():
            assert results["tf_data"][part][metric] == pytest.approx(value, rel=1e-5, abs=1e-6), (part, metric)
    assert results["tf_data"]["epochs_run"] == 4


def test_word_lists_are_released_after_multi_hot():
    from nnlab.datasets.base import Dataset
    from nnlab.training.data import release_sequences

    lists = np.empty(3, dtype=object)
    for i in range(3):
        lists[i] = [1, 2, 3 + i]
    text = Dataset(name="t", task="binary", x_train=lists, y_train=np.zeros(3), x_test=lists[:2],
                   y_test=np.zeros(2), extras={"sequences": True})
    release_sequences(text)
    assert text.x_train.shape == (3,) and text.x_test.shape == (2,)
    assert all(v is None for v in text.x_train) and text.input_shape == ()
    images = Dataset(name="i", task="binary", x_train=np.ones((3, 2)), y_train=np.zeros(3),
                     x_test=np.ones((2, 2)), y_test=np.zeros(2))
    release_sequences(images)
    assert images.x_train.sum() == 6, "other datasets keep their arrays"

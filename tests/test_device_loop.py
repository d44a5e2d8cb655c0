"""nnlab.training.device_loop: the JAX epoch as one compiled call must train exactly as model.fit does.

The training itself runs in a subprocess with KERAS_BACKEND=jax (this process's
Keras runs on TensorFlow); the pure parts run here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnlab.training.device_loop import _batches

from conftest import PROBE_MODELS, SPIRAL, only_run, run_nnlab, run_probe


def run_on_jax(script: str, tmp_path) -> dict:
    """Run ``script`` with the JAX backend; it prints one JSON line, returned here."""
    pytest.importorskip("jax", reason="the jax backend needs the jax package")
    return run_probe(script, "jax", tmp_path)


MODELS = PROBE_MODELS + """
from nnlab.training import device_loop

x_val, y_val = x[:20] + 0.1, y[:20]
"""


def test_without_shuffle_the_device_loop_equals_model_fit(tmp_path):
    """Same batches in the same order (the partial last one included), same momentum
    updates, same per-epoch logs and validation metrics as Keras's own fit."""
    out = run_on_jax(MODELS + """
keras_model, device_model = make(), make()
by_keras = keras_model.fit(x, y, batch_size=16, epochs=3, shuffle=False, validation_data=(x_val, y_val),
                           verbose=0).history
by_device = device_loop.fit(device_model, x, y, batch_size=16, epochs=3, shuffle=False,
                            validation_data=(x_val, y_val)).history
print(json.dumps({"keras": weights(keras_model), "device": weights(device_model), "keras_history": by_keras,
                  "device_history": by_device,
                  "iterations": [int(keras_model.optimizer.iterations), int(device_model.optimizer.iterations)],
                  "evaluate": device_model.evaluate(x_val, y_val, verbose=0, return_dict=True)}))
""", tmp_path)
    assert out["iterations"] == [15, 15], "5 steps an epoch (4 whole batches and the rest) for 3 epochs"
    for by_keras, by_device in zip(out["keras"], out["device"]):
        np.testing.assert_allclose(by_device, by_keras, rtol=1e-5, atol=1e-6)
    assert sorted(out["device_history"]) == sorted(out["keras_history"]) == \
        ["accuracy", "loss", "val_accuracy", "val_loss"]
    for name, values in out["keras_history"].items():
        np.testing.assert_allclose(out["device_history"][name], values, rtol=1e-5, atol=1e-6)
    assert out["device_history"]["val_loss"][-1] == pytest.approx(out["evaluate"]["loss"], rel=1e-6), \
        "the model's variables hold the trained weights after the loop"


def test_shuffle_is_seeded_callbacks_stop_and_resume_and_narrow_inputs_train(tmp_path):
    out = run_on_jax(MODELS + """
class StopAfterSecond(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.seen = getattr(self, "seen", []) + [epoch]
        if epoch == 1:
            self.model.stop_training = True

runs = {}
for label, seed in (("a", 3), ("b", 3), ("c", 4)):
    model = make(dropout=0.2)
    device_loop.fit(model, x, y, batch_size=16, epochs=2, seed=seed)
    runs[label] = weights(model)
stopper = StopAfterSecond()
stopped = device_loop.fit(make(), x, y, batch_size=16, epochs=10, callbacks=[stopper]).history
resumed_model = make()
resumed = device_loop.fit(resumed_model, x, y, batch_size=16, epochs=5, initial_epoch=3)
narrow = make()
narrow_history = device_loop.fit(narrow, (x > 0).astype("uint8"), y, batch_size=8, epochs=4).history
print(json.dumps({"same_seed": runs["a"] == runs["b"], "other_seed": runs["a"] != runs["c"],
                  "stopped_epochs": len(stopped["loss"]), "seen": stopper.seen, "resumed_epochs": resumed.epoch,
                  "resumed_iterations": int(resumed_model.optimizer.iterations),
                  "narrow_loss": narrow_history["loss"]}))
""", tmp_path)
    assert out["same_seed"] and out["other_seed"], "the shuffle (and dropout) repeat with the seed only"
    assert out["stopped_epochs"] == 2 and out["seen"] == [0, 1], "stop_training ends the loop at the epoch's end"
    assert out["resumed_epochs"] == [3, 4] and out["resumed_iterations"] == 10
    assert out["narrow_loss"][-1] < out["narrow_loss"][0], "uint8 inputs (multi-hot storage) train"


def test_batches_cover_every_row_once_in_at_most_two_block_shapes():
    order = np.random.default_rng(0).permutation(70)
    blocks = _batches(order, 16)
    assert [b.shape for b in blocks] == [(4, 16), (1, 6)]
    assert np.array_equal(np.concatenate([b.reshape(-1) for b in blocks]), order)
    assert [b.shape for b in _batches(np.arange(32), 16)] == [(2, 16)]
    assert [b.shape for b in _batches(np.arange(5), 16)] == [(1, 5)]


@pytest.mark.slow
def test_train_and_kfold_on_jax_use_the_device_loop(write_config, tmp_path):
    pytest.importorskip("jax", reason="the jax backend needs the jax package")
    path = write_config(SPIRAL)
    runs = tmp_path / "runs"
    done = run_nnlab("train", path, "--backend", "jax", "--runs-dir", runs, "--set", "training.batch_size=16",
                     "--set", "training.input_pipeline=device", "--quiet", env={"KERAS_BACKEND": ""}, timeout=600)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((only_run(runs) / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["input_pipeline"] == "device"
    assert metrics["epochs_run"] == 5 and 0.0 <= metrics["train"]["accuracy"] <= 1.0
    folds = tmp_path / "folds"
    done = run_nnlab("kfold", path, "--backend", "jax", "--runs-dir", folds, "--set", "kfold.k=2",
                     "--set", "training.batch_size=16", "--set", "training.input_pipeline=device", "--quiet",
                     env={"KERAS_BACKEND": ""}, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads((only_run(folds) / "kfold.json").read_text())
    assert [(f["status"], f["epochs_run"]) for f in result["folds"]] == [("completed", 5)] * 2
    assert all(0.0 <= f["validation"]["accuracy"] <= 1.0 for f in result["folds"])


def test_an_interrupted_jax_run_resumes_to_where_an_uninterrupted_one_ends(tmp_path):
    """Ctrl-C between compiled epochs keeps the last whole epoch; resuming continues on the device loop."""
    out = run_on_jax(f"""
import json, signal
from nnlab.training import run as training
from nnlab.config import config_from_text
from nnlab.interrupts import Interrupted

text = {SPIRAL!r}.replace("epochs: 5", "epochs: 6, input_pipeline: device") + "backend: jax\\n"

def stop_at_3(done, epochs, logs, seconds):
    if done == 3:
        raise Interrupted(signal.SIGINT)

whole = training.train(config_from_text(text, "exp.yaml"), runs_dir={str(tmp_path / "whole")!r})
stopped = training.train(config_from_text(text, "exp.yaml"), runs_dir={str(tmp_path / "stopped")!r},
                         report=stop_at_3)
stopped_metrics = dict(stopped.metrics)
resumed = training.resume(stopped.run.path)
print(json.dumps({{"stopped": [stopped.exit_code, stopped_metrics["status"], stopped_metrics["checkpoint_epoch"]],
                   "resumed": [resumed.exit_code, resumed.metrics["status"], resumed.metrics["epochs_run"],
                               resumed.metrics["input_pipeline"]],
                   "loss": [whole.history["loss"], resumed.history["loss"]]}}))
""", tmp_path)
    assert out["stopped"] == [130, "interrupted", 3]
    assert out["resumed"] == [0, "completed", 6, "device"]
    whole, resumed = out["loss"]
    assert len(resumed) == 6
    np.testing.assert_allclose(resumed, whole, rtol=1e-5)  # full-batch training repeats exactly across the stop

"""nnlab.training.fused: many epochs per compiled call must train exactly as model.fit epoch by epoch.

Each probe runs in a subprocess per backend (KERAS_BACKEND=tensorflow, then jax), so
both backends' loops are held to the same comparisons with Keras's own fit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import PROBE_MODELS, SPIRAL, only_run, run_nnlab, run_probe

BACKENDS = ["tensorflow", pytest.param("jax", marks=pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("jax") is None, reason="the jax backend needs the jax package"))]


MODELS = PROBE_MODELS + """
from nnlab.training import fused

x_val, y_val = x[:20] * 3, y[:20]  # rows the model overfits, so validation loss turns up

def chunks_of(n):
    fused.next_chunk = lambda epochs, seconds: n
"""


def close(a, b):
    for left, right in zip(a, b):
        np.testing.assert_allclose(left, right, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_shuffle_fused_equals_model_fit(tmp_path, backend):
    """Same batches (the partial last one included), momentum updates, per-epoch logs, validation
    and optimizer iterations as Keras's fit, whether the epochs run one per call or many."""
    out = run_probe(MODELS + """
keras_model = make()
by_keras = keras_model.fit(x, y, batch_size=16, epochs=7, shuffle=False, validation_data=(x_val, y_val),
                           verbose=0).history
result = {"keras": weights(keras_model), "keras_history": by_keras,
          "keras_iterations": int(keras_model.optimizer.iterations)}
for n in (1, 3, 100):
    chunks_of(n)
    model = make()
    history = fused.fit(model, x, y, batch_size=16, epochs=7, shuffle=False, validation_data=(x_val, y_val)).history
    result[str(n)] = {"weights": weights(model), "history": history, "iterations": int(model.optimizer.iterations),
                      "evaluate": model.evaluate(x_val, y_val, batch_size=16, verbose=0, return_dict=True)}
print(json.dumps(result))
""", backend, tmp_path)
    assert out["keras_iterations"] == 35, "5 steps an epoch (4 whole batches and the rest) for 7 epochs"
    for n in ("1", "3", "100"):
        run = out[n]
        assert run["iterations"] == 35
        for by_keras, by_fused in zip(out["keras"], run["weights"]):
            close(by_fused, by_keras)
        assert sorted(run["history"]) == sorted(out["keras_history"]) == \
            ["accuracy", "loss", "val_accuracy", "val_loss"]
        for name, values in out["keras_history"].items():
            close(run["history"][name], values)
        assert run["history"]["val_loss"][-1] == pytest.approx(run["evaluate"]["loss"], rel=1e-5), \
            "the model's variables hold the trained weights after the loop"


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_stops_and_restores_as_model_fit(tmp_path, backend):
    """The stopping epoch, the best epoch and the restored weights are Keras's own, also when the
    stop or the best epoch falls inside a chunk of epochs."""
    out = run_probe(MODELS + """
result = {}
for patience, restore in ((0, True), (3, True), (3, False)):
    def stopper():
        return keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=restore)
    keras_model, keras_stop = make(), stopper()
    history = keras_model.fit(x, y, batch_size=16, epochs=80, shuffle=False, validation_data=(x_val, y_val),
                              verbose=0, callbacks=[keras_stop]).history
    runs = [{"weights": weights(keras_model), "epochs": len(history["loss"]),
             "stopped": keras_stop.stopped_epoch, "best": keras_stop.best_epoch}]
    for n in (1, 4, 1000):
        chunks_of(n)
        model, stop = make(), stopper()
        history = fused.fit(model, x, y, batch_size=16, epochs=80, shuffle=False, validation_data=(x_val, y_val),
                            callbacks=[stop], stopper=stop).history
        runs.append({"weights": weights(model), "epochs": len(history["loss"]), "stopped": stop.stopped_epoch,
                     "best": stop.best_epoch})
    result[f"{patience}-{restore}"] = runs
print(json.dumps(result))
""", backend, tmp_path)
    for case, (by_keras, *by_fused) in out.items():
        assert 0 < by_keras["stopped"] < 79, f"{case}: the validation set makes Keras stop early"
        for run in by_fused:
            assert (run["epochs"], run["stopped"], run["best"]) == \
                (by_keras["epochs"], by_keras["stopped"], by_keras["best"]), case
            for left, right in zip(run["weights"], by_keras["weights"]):
                close(left, right)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_seed_alone_decides_a_shuffled_run_and_a_nan_loss_stops_it(tmp_path, backend):
    out = run_probe(MODELS + """
from nnlab.training.callbacks import DivergenceGuard, LastEpochWeights

runs = {}
for label, seed, n in (("a", 3, 1), ("b", 3, 4), ("c", 4, 4)):
    chunks_of(n)
    model = make(dropout=0.2)
    fused.fit(model, x, y, batch_size=16, epochs=6, seed=seed)
    runs[label] = weights(model)
resumed = make(dropout=0.2)
chunks_of(4)
fused.fit(resumed, x, y, batch_size=16, epochs=3, seed=3)
resumed_history = fused.fit(resumed, x, y, batch_size=16, epochs=6, seed=3, initial_epoch=3).history
narrow = make()
narrow_history = fused.fit(narrow, (x > 0).astype("uint8"), y, batch_size=8, epochs=4).history

def regression():  # its loss overflows in the second epoch on either backend
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    return model

chunks_of(1000)  # epoch 1 (the first chunk is always one epoch), then 2-50
keras_guard, fused_guard, kept = DivergenceGuard(), DivergenceGuard(), LastEpochWeights()
keras_history = regression().fit(x * 10, x[:, :1] * 10, batch_size=16, epochs=50, shuffle=False, verbose=0,
                                 callbacks=[keras_guard]).history
fused_history = fused.fit(regression(), x * 10, x[:, :1] * 10, batch_size=16, epochs=50, shuffle=False,
                          callbacks=[fused_guard], chunk_callbacks=[kept]).history
print(json.dumps({"same_seed": runs["a"] == runs["b"], "other_seed": runs["a"] != runs["c"],
                  "resumed_epochs": resumed.history.epoch, "resumed_iterations": int(resumed.optimizer.iterations),
                  "narrow_loss": narrow_history["loss"],
                  "diverged": [keras_guard.diverged_at, fused_guard.diverged_at],
                  "epochs": [len(keras_history["loss"]), len(fused_history["loss"])], "kept": kept.epoch}))
""", backend, tmp_path)
    assert out["same_seed"], "the same seed gives the same run however the epochs fall into chunks"
    assert out["other_seed"]
    assert out["resumed_epochs"] == [3, 4, 5] and out["resumed_iterations"] == 30
    assert out["narrow_loss"][-1] < out["narrow_loss"][0], "uint8 inputs (multi-hot storage) train"
    keras_epoch, fused_epoch = out["diverged"]
    assert keras_epoch is not None and fused_epoch == keras_epoch, "the loop ends at the epoch Keras's guard sees"
    assert out["epochs"][0] == out["epochs"][1] == keras_epoch
    assert out["kept"] == 1, "the checkpoint is the last chunk that ended finite, not the diverged one"


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_during_a_chunk_stops_at_its_end_and_resumes_to_the_same_run(tmp_path, backend):
    """A stop signal while a chunk is replayed ends training after that chunk's last epoch, so the
    history, the checkpoint and the weights agree; resuming gives the uninterrupted run's losses."""
    out = run_probe(f"""
import json, os, signal
from nnlab.training import fused, run as training
from nnlab.config import config_from_text
from nnlab.interrupts import Interrupted

fused.next_chunk = lambda epochs, seconds: 3  # chunks: epoch 1, 2-4, 5-7, 8-10
text = {SPIRAL!r}.replace("epochs: 5, batch_size: full", "epochs: 10, batch_size: 40, input_pipeline: fused")
text += "backend: {backend}\\n"

def signal_at_3(done, epochs, logs, seconds):
    if done == 3:
        os.kill(os.getpid(), signal.SIGINT)

def raise_at_3(done, epochs, logs, seconds):
    if done == 3:
        raise Interrupted(signal.SIGINT)

whole = training.train(config_from_text(text, "exp.yaml"), runs_dir={str(tmp_path / "whole")!r})
stopped = training.train(config_from_text(text, "exp.yaml"), runs_dir={str(tmp_path / "stopped")!r},
                         report=signal_at_3)
raised = training.train(config_from_text(text, "exp.yaml"), runs_dir={str(tmp_path / "raised")!r},
                        report=raise_at_3)
stopped_metrics = dict(stopped.metrics)
resumed = training.resume(stopped.run.path)
print(json.dumps({{"stopped": [stopped.exit_code, stopped_metrics["status"], stopped_metrics["epochs_run"],
                               stopped_metrics["checkpoint_epoch"]],
                   "raised": [raised.exit_code, raised.metrics["status"], raised.metrics["epochs_run"],
                              raised.metrics["checkpoint_epoch"]],
                   "resumed": [resumed.exit_code, resumed.metrics["status"], resumed.metrics["epochs_run"],
                               resumed.metrics["input_pipeline"], resumed.metrics["epochs_per_call"]],
                   "loss": [whole.history["loss"], resumed.history["loss"]]}}))
""", backend, tmp_path)
    assert out["stopped"] == out["raised"] == [130, "interrupted", 4, 4]
    assert out["resumed"] == [0, "completed", 10, "fused", 3]
    whole, resumed = out["loss"]
    np.testing.assert_allclose(resumed, whole, rtol=1e-5)  # shuffled batches repeat: the order is (seed, epoch)'s


@pytest.mark.slow
def test_train_and_kfold_record_the_fused_pipeline(write_config, tmp_path):
    path = write_config(SPIRAL.replace("epochs: 5, batch_size: full",
                                       "epochs: 30, batch_size: full, input_pipeline: fused, "
                                       "early_stopping: {monitor: val_loss, patience: 2}, validation_split: 0.2"))
    runs = tmp_path / "runs"
    done = run_nnlab("train", path, "--runs-dir", runs, "--quiet", "--set", "training.tensorboard=true")
    assert done.returncode == 0, done.stderr
    assert list((only_run(runs) / "tensorboard").rglob("events.out.tfevents.*")), "TensorBoard sees the epochs"
    metrics = json.loads((only_run(runs) / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["input_pipeline"] == "fused"
    assert metrics["epochs_per_call"] >= 1 and metrics["jit_compile"] is False
    history = (only_run(runs) / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    assert len(history) == 1 + metrics["epochs_run"]
    folds = tmp_path / "folds"
    done = run_nnlab("kfold", path, "--runs-dir", folds, "--set", "kfold.k=2", "--quiet")
    assert done.returncode == 0, done.stderr
    result = json.loads((only_run(folds) / "kfold.json").read_text())
    assert [f["status"] for f in result["folds"]] == ["completed"] * 2
    fold_history = (only_run(folds) / "folds" / "fold_1" / "history.csv").read_text().splitlines()
    assert fold_history[0] == "epoch,accuracy,loss,val_accuracy,val_loss", "validation every epoch, in the call"


def test_fused_is_refused_where_it_cannot_run():
    from nnlab.config import config_from_text
    from nnlab.errors import ConfigError
    from nnlab.training.feed import pipeline

    config = config_from_text(SPIRAL.replace("batch_size: full", "batch_size: full, input_pipeline: fused"), "e.yaml")
    assert pipeline(config, "tensorflow") == pipeline(config, "jax") == "fused"
    with pytest.raises(ConfigError, match="fused runs many epochs per compiled call on TensorFlow or JAX"):
        pipeline(config, "torch")
    no_xla = config_from_text(SPIRAL.replace("batch_size: full", "batch_size: full, input_pipeline: fused, "
                                                                 "jit_compile: false"), "e.yaml")
    with pytest.raises(ConfigError, match="jit_compile is false"):
        pipeline(no_xla, "jax")

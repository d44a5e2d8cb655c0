"""``nnlab kfold``: folds, no leakage, averaging, the best epoch, the run folder, --final, --jobs."""

from __future__ import annotations

import csv
import json
import multiprocessing
import pickle
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnlab.crossval import folds as kfolds, stats, run as kfold
from nnlab.config import config_from_text
from nnlab.errors import NnlabError

from conftest import only_run

DIABETES = """
name: tiny_diabetes
seed: 3
dataset: {name: diabetes, preprocessing: {standardize: true}}
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 1}
optimizer: {name: rmsprop, learning_rate: 0.01}
loss: mse
metrics: [mae]
training: {epochs: 3, batch_size: 32}
kfold: {k: 3, skip_first_epochs: 1}
"""

DIGITS = """
name: tiny_digits
seed: 0
dataset: {name: digits, preprocessing: {scale: 16}}
model:
  layers:
    - Dense: {units: 16, activation: relu}
    - Dropout: {rate: 0.1}
    - Dense: {units: 10, activation: softmax}
optimizer: {name: adam, learning_rate: 0.01}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 3, batch_size: 64}
kfold: {k: 3, shuffle: true, monitor: val_accuracy}
"""


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# -- folds -------------------------------------------------------------------------------------

def test_contiguous_folds_are_the_lessons_blocks():
    folds = kfolds.fold_indices(404, 4)
    for i, (train, val) in enumerate(folds):
        # The lesson: val = rows [i * 101, (i + 1) * 101), train = everything else in order.
        assert np.array_equal(val, np.arange(i * 101, (i + 1) * 101))
        assert np.array_equal(train, np.concatenate([np.arange(0, i * 101), np.arange((i + 1) * 101, 404)]))
    uneven = [val.tolist() for _, val in kfolds.fold_indices(10, 4)]
    assert uneven == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]


def test_shuffled_folds_partition_the_rows_and_follow_the_seed():
    folds = kfolds.fold_indices(40, 4, shuffle=True, seed=7)
    vals = [val for _, val in folds]
    assert sorted(np.concatenate(vals).tolist()) == list(range(40))  # each row validated exactly once
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == 40
    assert any(not np.array_equal(np.sort(v), np.arange(v.min(), v.min() + len(v))) for v in vals)  # not blocks
    again = kfolds.fold_indices(40, 4, shuffle=True, seed=7)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(folds, again))
    other = kfolds.fold_indices(40, 4, shuffle=True, seed=8)
    assert any(not np.array_equal(a, b) for (_, a), (_, b) in zip(folds, other))


def test_standardizer_of_each_fold_sees_only_that_folds_training_rows(monkeypatch, tmp_path):
    from nnlab.datasets.loading import load_dataset
    from nnlab.preprocessing import Preprocessor

    config = config_from_text(DIABETES)
    x_train = load_dataset(config).x_train
    seen = []
    original = Preprocessor.fit

    def spy(self, x, y=None):
        seen.append(np.asarray(x).copy())
        return original(self, x, y)

    monkeypatch.setattr(Preprocessor, "fit", spy)
    result = kfold.run_kfold(config.with_overrides(["training.epochs=1"]), runs_dir=tmp_path / "runs")
    assert result.metrics["status"] == "completed"
    splits = kfolds.fold_indices(len(x_train), 3)
    for fold, (train_rows, val_rows) in enumerate(splits):
        assert any(np.array_equal(x, x_train[train_rows]) for x in seen), f"fold {fold + 1} was never fitted"
    for x in seen:
        rows = {tuple(r) for r in x}
        # Every fit saw one fold's training rows exactly, and none of its validation rows.
        matches = [(t, v) for t, v in splits if len(t) == len(x) and np.array_equal(x, x_train[t])]
        assert matches
        assert not rows & {tuple(r) for r in x_train[matches[0][1]]}


# -- across folds ----------------------------------------------------------------------------------

def test_best_epoch_on_a_known_curve():
    curve = [9.0, 6.0, 4.0, 3.0, 3.5, 2.5, 2.8, 3.1]
    best = stats.pick_best_epoch(curve, "val_loss")
    assert (best["epoch"], best["value"]) == (6, 2.5)
    accuracy = stats.pick_best_epoch([0.5, 0.7, 0.9, 0.8], "val_accuracy")
    assert accuracy["epoch"] == 3  # higher is better for accuracy
    assert stats.pick_best_epoch([], "val_loss") is None


def test_smoothing_ignores_a_one_epoch_dip():
    # A lucky epoch 3 is the raw minimum; the lesson's moving average (0.9) prefers the steady low tail.
    curve = [10, 8, 1, 8, 6, 5, 4, 3, 2.5, 2.4, 2.4, 2.4, 2.4, 2.4, 2.4, 2.4, 2.4, 2.4, 2.4, 2.4, 2.4, 2.4]
    assert stats.pick_best_epoch(curve, "val_mae")["epoch"] == 3
    expected, previous = [], None
    for value in curve:  # the lesson's smooth_curve
        previous = value if previous is None else previous * 0.9 + value * 0.1
        expected.append(previous)
    assert np.allclose(stats.smooth_curve(curve, 0.9), expected)
    best = stats.pick_best_epoch(curve, "val_mae", smoothing=0.9)
    assert best["epoch"] == int(np.argmin(expected)) + 1 == len(curve)
    assert best["value"] == 2.4 and best["smoothed_value"] == pytest.approx(min(expected))


def test_mean_history_averages_per_epoch_and_tolerates_early_stopped_folds():
    curves = stats.mean_history([{"val_loss": [4.0, 2.0, 1.0]}, {"val_loss": [2.0, 4.0]}])["val_loss"]
    assert np.allclose(curves["mean"], [3.0, 3.0, 1.0])
    assert np.allclose(curves["std"], [1.0, 1.0, 0.0])
    assert curves["folds"].tolist() == [2, 2, 1]


# -- running ----------------------------------------------------------------------------------------

def test_run_folder_holds_every_file(cli, write_config, tmp_path):
    runs = tmp_path / "runs"
    result = cli("kfold", write_config(DIABETES), "--runs-dir", runs, "--epochs", "4")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    assert run.name.endswith("_tiny_diabetes_kfold")
    for name in ("config.yaml", "kfold.json", "history_mean.csv", "env.json", "metrics.json", "summary.txt",
                 "folds/fold_1/history.csv", "folds/fold_2/history.csv", "folds/fold_3/history.csv",
                 "plots/kfold_val_loss.png", "plots/kfold_val_mae.png", "plots/kfold_val_mae_after_1.png"):
        assert (run / name).is_file(), name
    assert not (run / "model.keras").exists()  # no final model without --final
    assert yaml.safe_load((run / "config.yaml").read_text())["training"]["epochs"] == 4
    summary = json.loads((run / "kfold.json").read_text())
    assert summary["k"] == 3 and summary["monitor"] == "val_loss" and summary["folds_completed"] == 3
    assert [f["fold"] for f in summary["folds"]] == [1, 2, 3]
    assert [f["validation_rows"] for f in summary["folds"]] == [118, 118, 117]  # 353 training rows
    maes = [f["validation"]["mae"] for f in summary["folds"]]
    assert summary["mean"]["mae"] == pytest.approx(np.mean(maes))
    assert summary["std"]["mae"] == pytest.approx(np.std(maes))
    # history_mean.csv is the per-epoch mean of the folds' own histories.
    folds = [read_csv(run / f"folds/fold_{i}/history.csv") for i in (1, 2, 3)]
    mean = read_csv(run / "history_mean.csv")
    assert len(mean) == 4 and set(mean[0]) >= {"epoch", "loss_mean", "loss_std", "val_mae_mean", "val_mae_std",
                                               "folds"}
    for epoch in range(4):
        values = [float(f[epoch]["val_mae"]) for f in folds]
        assert float(mean[epoch]["val_mae_mean"]) == pytest.approx(np.mean(values))
        assert float(mean[epoch]["val_mae_std"]) == pytest.approx(np.std(values))
    # The last epoch's validation MAE of each fold is its final validation MAE.
    assert [float(f[-1]["val_mae"]) for f in folds] == pytest.approx(maes)
    best_curve = [float(row["val_loss_mean"]) for row in mean]
    assert summary["best"]["epoch"] == int(np.argmin(best_curve)) + 1
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("run_id", "name", "kind", "dataset", "task", "status", "started", "finished", "wall_time_s",
                "epochs_planned", "params", "validation", "best"):
        assert metrics.get(key) is not None, key
    assert metrics["kind"] == "kfold" and metrics["status"] == "completed" and metrics["task"] == "regression"
    assert metrics["validation"]["mae"] == pytest.approx(summary["mean"]["mae"])
    assert metrics["params"] == 10 * 8 + 8 + 8 + 1
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 3 and env["overrides"] == ["training.epochs=4"]
    for png in (run / "plots").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mean" in result.output and "best epoch" in result.output and str(run) in result.output.replace("\n", "")


def test_final_model_on_a_small_regression_set(cli, write_config, tmp_path):
    runs = tmp_path / "runs"
    result = cli("kfold", write_config(DIABETES), "--runs-dir", runs, "--final", "--set", "training.epochs=5")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    metrics = json.loads((run / "metrics.json").read_text())
    summary = json.loads((run / "kfold.json").read_text())
    best = summary["best"]["epoch"]
    assert metrics["status"] == "completed" and metrics["final_epochs"] == best == summary["final"]["epochs"]
    assert set(metrics["test"]) == {"loss", "mae"} and metrics["test_rows"] == 89
    assert metrics["baseline"]["linear_regression_mae"] > 0
    assert metrics["validation"]["mae"] == pytest.approx(summary["mean"]["mae"])  # the k-fold means stay
    assert len(read_csv(run / "final_history.csv")) == best  # trained exactly the best epoch count
    for name in ("model.keras", "plots/predicted_vs_true.png", "plots/loss.png", "plots/kfold_val_mae.png"):
        assert (run / name).is_file(), name
    assert "linear_regression_mae" in result.output and "final model" in result.output
    assert summary["final"]["loss"] == "mse"  # so the test loss stands beside the baseline's MSE
    assert any("loss" in line and "(linear_regression_mse)" in line for line in result.output.splitlines())


def test_classification_reports_accuracy_and_picks_the_highest(tmp_path):
    config = config_from_text(DIGITS)
    result = kfold.run_kfold(config, runs_dir=tmp_path / "runs")
    assert result.exit_code == 0 and result.metrics["status"] == "completed"
    assert set(result.summary["mean"]) == {"loss", "accuracy"}
    assert 0.5 < result.summary["mean"]["accuracy"] <= 1  # far above the 0.1 of guessing, after 3 epochs
    curve = [float(r["val_accuracy_mean"]) for r in read_csv(result.run.path / "history_mean.csv")]
    assert result.summary["best"]["epoch"] == int(np.argmax(curve)) + 1


def test_jobs_2_gives_the_same_kfold_metrics_as_jobs_1(cli, write_config, tmp_path):
    path = write_config(DIGITS)
    figures = []
    for jobs in ("1", "2"):
        runs = tmp_path / f"runs{jobs}"
        result = cli("kfold", path, "--runs-dir", runs, "--jobs", jobs, "--quiet")
        assert result.exit_code == 0, result.output
        summary = json.loads((only_run(runs) / "kfold.json").read_text())
        figures.append(({"mean": summary["mean"], "std": summary["std"], "best": summary["best"],
                         "folds": [{k: v for k, v in f.items() if k != "wall_time_s"} for f in summary["folds"]]},
                        (only_run(runs) / "history_mean.csv").read_text()))
    assert figures[0] == figures[1]


def test_the_pool_starts_its_workers_at_once_and_the_driver_takes_tasks_too():
    from nnlab.executors import ProcessExecutor

    before = set(multiprocessing.active_children())
    pool = ProcessExecutor(3, driver_helps=True)
    try:
        # Started before any task, so their TensorFlow import overlaps the driver's config reading.
        assert len(set(multiprocessing.active_children()) - before) == 2
        ran_here = []
        results = dict((i, r) for i, r, e in pool.run(abs, [(-i,) for i in range(6)],
                                                      here=lambda i, args: ran_here.append(i) or abs(*args)))
        assert results == {i: i for i in range(6)}
        assert ran_here, "with every worker busy, the driver took tasks"
    finally:
        pool.close()
    assert not set(multiprocessing.active_children()) - before


def test_run_fold_is_a_pure_picklable_function_of_config_fold_and_seed(tmp_path):
    config = config_from_text(DIABETES)
    whole = kfold.run_kfold(config, runs_dir=tmp_path / "runs")
    assert pickle.loads(pickle.dumps(kfolds.run_fold)) is kfolds.run_fold
    alone = kfolds.run_fold(config.to_dict(), 1, 3, config.seed, None, None)
    alone = pickle.loads(pickle.dumps(alone))  # what a worker sends back
    assert alone.validation == whole.folds[1].validation and alone.history == whole.folds[1].history
    shorter = kfolds.run_fold(config.to_dict(), 0, 3, config.seed, None, 2)
    assert shorter.epochs_run == 2
    error = pickle.loads(pickle.dumps(kfolds.FoldError("reason", "traceback")))
    assert (error.message, error.details) == ("reason", "traceback")


def test_input_pipeline_arrays_is_what_folds_train_with(monkeypatch, tmp_path):
    # On JAX or PyTorch there is no tf.data; on TensorFlow `input_pipeline: arrays` asks for fit on arrays:
    # it must be what runs, train and record the same history.
    from nnlab.datasets.loading import load_dataset
    from nnlab.training import feed

    config = config_from_text(DIABETES, overrides=["training.epochs=4"])
    dataset = load_dataset(config)
    train_rows, val_rows = kfolds.fold_indices(len(dataset.y_train), 3)[0]
    fast = kfolds.train_fold(config, dataset, 0, 3, train_rows, val_rows, config.seed)
    assert fast.execution["input_pipeline"] == "fused"

    def no_tf_data(*args, **kwargs):
        raise AssertionError("tf.data used when input_pipeline is arrays")

    monkeypatch.setattr(feed, "batches", no_tf_data)
    arrays = config.with_overrides(["training.input_pipeline=arrays"])
    plain = kfolds.train_fold(arrays, dataset, 0, 3, train_rows, val_rows, config.seed)
    assert plain.status == "completed" and plain.epochs_run == 4 and plain.execution["input_pipeline"] == "arrays"
    assert list(plain.history) == list(fast.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert all(len(v) == 4 for v in plain.history.values())
    assert plain.history["loss"][-1] < plain.history["loss"][0]  # it learns
    assert set(plain.validation) == set(fast.validation) == {"loss", "mae"}
    # The same model, data and updates; only the shuffled batch order differs, so the results are close.
    assert plain.history["val_mae"][-1] == pytest.approx(fast.history["val_mae"][-1], rel=0.3)
    result = kfold.run_kfold(arrays, runs_dir=tmp_path / "runs", final=True)  # and the final model
    assert result.exit_code == 0 and result.metrics["input_pipeline"] == "arrays"
    assert len(read_csv(result.run.path / "final_history.csv")) == result.summary["best"]["epoch"]


# -- refusals and outcomes ----------------------------------------------------------------------------

def test_refusals_leave_no_folder(cli, write_config, tmp_path):
    runs = tmp_path / "runs"
    path = write_config(DIABETES)
    result = cli("kfold", path, "--runs-dir", runs, "--set", "kfold.monitor=val_accuracy")
    assert result.exit_code == 2
    assert "kfold.monitor" in result.output and "val_mae" in result.output  # names what the model reports
    result = cli("kfold", path, "--runs-dir", runs, "--k", "400")
    assert result.exit_code == 2 and "kfold.k" in result.output and "353" in result.output
    result = cli("kfold", path, "--runs-dir", runs, "--set", "kfold.monitor=loss")
    assert result.exit_code == 2 and "validation metric" in result.output
    result = cli("kfold", path, "--runs-dir", runs, "--k", "1")
    assert result.exit_code == 2 and "--k" in result.output
    result = cli("kfold", path, "--runs-dir", runs, "--epochs", "0")
    assert result.exit_code == 2 and "--epochs" in result.output
    result = cli("kfold", "bostn", "--runs-dir", runs)
    assert result.exit_code == 2 and "unknown config 'bostn'" in result.output and "boston" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    # With --jobs the workers start before the config is read; a refusal stops them.
    before = set(multiprocessing.active_children())
    result = cli("kfold", path, "--runs-dir", runs, "--jobs", "2", "--set", "kfold.monitor=val_accuracy")
    assert result.exit_code == 2 and "kfold.monitor" in result.output
    assert not set(multiprocessing.active_children()) - before, "the refusal stopped the workers it started"
    assert not runs.exists() or not any(runs.iterdir())


def test_a_stop_keeps_the_finished_folds_and_says_interrupted(tmp_path):
    from nnlab.interrupts import Interrupted

    class StopInFold2:
        def fold_started(self, fold, k, epochs):
            if fold == 1:
                raise Interrupted(signal.SIGTERM)

        def epoch(self, *args):
            pass

        def fold_finished(self, result):
            pass

        def final_started(self, epochs):
            pass

    result = kfold.run_kfold(config_from_text(DIABETES), runs_dir=tmp_path / "runs", final=True,
                             report=StopInFold2())
    assert result.exit_code == 143
    metrics = json.loads((result.run.path / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and "1 of 3 folds" in metrics["message"]
    assert (result.run.path / "folds/fold_1/history.csv").is_file()
    assert not (result.run.path / "folds/fold_2").exists() and not (result.run.path / "model.keras").exists()


def test_a_failing_fold_fails_the_run_with_its_message(monkeypatch, tmp_path):
    original = kfolds.train_fold

    def flaky(config, dataset, fold, *args, **kwargs):
        if fold == 1:
            raise RuntimeError("out of coffee")
        return original(config, dataset, fold, *args, **kwargs)

    monkeypatch.setattr(kfold, "train_fold", flaky)
    result = kfold.run_kfold(config_from_text(DIABETES), runs_dir=tmp_path / "runs")
    assert result.exit_code == 1
    metrics = json.loads((result.run.path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "fold 2" in metrics["message"] and "out of coffee" in metrics["message"]
    assert "RuntimeError" in (result.run.path / "error.txt").read_text()


def test_a_diverging_fold_says_diverged(tmp_path):
    config = config_from_text(DIABETES, overrides=["optimizer={name: sgd, learning_rate: 1.0e+6}"])
    result = kfold.run_kfold(config, runs_dir=tmp_path / "runs", final=True)
    assert result.exit_code == 1
    assert result.metrics["status"] == "diverged" and "fold 1" in result.metrics["message"]
    assert not (result.run.path / "model.keras").exists()


def test_config_fields_are_validated():
    with pytest.raises(NnlabError, match="kfold.smoothing"):
        config_from_text(DIABETES, overrides=["kfold.smoothing=1.5"])
    assert config_from_text(DIABETES, overrides=["kfold.smoothing=0.9"]).kfold.smoothing == 0.9


def test_a_pipeline_the_backend_cannot_run_is_refused_before_any_fold(cli, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(DIABETES)
    result = cli("kfold", path, "--runs-dir", tmp_path / "runs", "--set", "training.input_pipeline=device")
    assert result.exit_code == 2, result.output
    assert "training.input_pipeline" in result.output and "JAX backend only" in result.output
    assert not (tmp_path / "runs").exists()

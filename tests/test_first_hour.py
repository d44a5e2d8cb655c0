"""What a new user meets in the first hour: refusals before training, readable files, predict on
one's own drawing, and what the run folder records."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from conftest import only_run
from keras_files import keras_offline, write_mnist


@pytest.mark.parametrize("overrides, key, words", [
    (["loss=mse"], "loss", "sparse_categorical_crossentropy"),
    (["loss=mae"], "loss", "labels: onehot"),
    (["loss=categorical_crossentropy", "dataset.preprocessing.labels=integer"], "dataset.preprocessing.labels",
     "labels: onehot"),
    (["loss=sparse_categorical_crossentropy", "dataset.preprocessing.labels=onehot"],
     "dataset.preprocessing.labels", "labels: integer"),
    (["loss=binary_crossentropy"], "loss", "two classes"),
])
def test_a_loss_that_does_not_fit_the_labels_is_refused_by_validate_and_train(cli, tmp_path, overrides, key, words):
    sets = [arg for o in overrides for arg in ("--set", o)]
    checked = cli("validate", "digits", *sets)
    assert checked.exit_code == 2, checked.output
    assert key in checked.output and words in checked.output and "Traceback" not in checked.output
    trained = cli("train", "digits", "--runs-dir", tmp_path / "runs", *sets)
    assert trained.exit_code == 2 and key in trained.output
    assert not (tmp_path / "runs").exists(), "refused before any run folder"


def test_mse_on_one_hot_labels_is_a_valid_exercise(cli):
    result = cli("validate", "digits", "--set", "loss=mse", "--set", "dataset.preprocessing.labels=onehot")
    assert result.exit_code == 0, result.output


def test_validate_and_train_compute_the_loss_and_metrics_on_real_rows(cli, write_config, tmp_path):
    # F1Score wants (batch, outputs) labels; a regression target is one number per row. No rule
    # foresees it; Keras tells when it computes the metric on two real rows.
    path = write_config("""
        name: f1
        dataset: {name: diabetes}
        model: {layers: [Dense: {units: 1}]}
        optimizer: adam
        loss: mse
        metrics: [mae, {F1Score: {}}]
        training: {epochs: 1}
        """)
    result = cli("validate", path)
    assert result.exit_code == 2, result.output
    assert "metrics.1" in result.output and "F1Score" in result.output and "Traceback" not in result.output
    trained = cli("train", path, "--runs-dir", tmp_path / "runs")
    assert trained.exit_code == 2 and "metrics.1" in trained.output and not (tmp_path / "runs").exists()
    # AUC on ten classes of integer labels: Keras's message names no class; computed alone, AUC fails.
    auc = cli("validate", "digits", "--set", "metrics=[accuracy, {AUC: {}}]")
    assert auc.exit_code == 2 and "metrics.1" in auc.output, auc.output


def test_summary_txt_keeps_every_column(cli, tmp_path):
    result = cli("train", "digits", "--runs-dir", tmp_path / "runs", "--quiet", "--set", "training.epochs=1")
    assert result.exit_code == 0, result.output
    run = only_run(tmp_path / "runs")
    summary = (run / "summary.txt").read_text()
    table = summary.split("Total params")[0]
    assert "Param #" in table and "4,160" in table and "650" in table, summary  # each layer's count
    assert max(len(line) for line in summary.splitlines()) <= 80, "an 80-column terminal shows it whole"


def test_run_files_get_the_mode_the_umask_gives(cli, tmp_path):
    old = os.umask(0o022)
    try:
        result = cli("train", "digits", "--runs-dir", tmp_path / "runs", "--quiet", "--set", "training.epochs=1")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    run = only_run(tmp_path / "runs")
    for name in ("metrics.json", "config.yaml", "env.json", "history.csv", "summary.txt", "plots/loss.png"):
        mode = stat.S_IMODE((run / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))


MNIST = """
name: tiny_mnist
dataset: {name: mnist, preprocessing: {scale: 255, flatten: true}}
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 10, activation: softmax}
optimizer: adam
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 1, batch_size: 8}
"""


def _digit(white_on_black: bool) -> np.ndarray:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = 255  # a "1"
    return image if white_on_black else 255 - image


def test_predict_finds_the_runs_data_again_and_warns_of_an_inverted_drawing(cli, write_config, tmp_path,
                                                                             monkeypatch):
    from PIL import Image

    keras_offline(monkeypatch, tmp_path / "keras_home")
    data = tmp_path / "data"
    file = write_mnist(data, train=24, test=12)
    # The training images: white strokes on black, as MNIST's are.
    with np.load(file) as arrays:
        parts = {k: arrays[k] for k in arrays.files}
    for part in ("x_train", "x_test"):
        parts[part] = np.stack([_digit(True)] * len(parts[part]))
    np.savez(file, **parts)
    result = cli("train", write_config(MNIST), "--runs-dir", tmp_path / "runs", "--data-dir", data, "--quiet")
    assert result.exit_code == 0, result.output
    run = only_run(tmp_path / "runs")
    recorded = json.loads((run / "env.json").read_text())["data"]
    assert recorded["data_dir"] == str(data.resolve()) and list(recorded["files"]) == [str(file)]
    assert len(recorded["files"][str(file)]) == 64  # its SHA-256

    drawn = tmp_path / "drawn.png"
    Image.fromarray(_digit(False)).save(drawn)  # a dark digit on white paper, as a student draws it
    plain = tmp_path / "plain.png"
    Image.fromarray(_digit(True)).save(plain)
    monkeypatch.delenv("NNLAB_DATA_DIR", raising=False)
    found = cli("predict", run, "--input", plain)  # no --data-dir: the run says where its data was
    assert found.exit_code == 0, found.output
    assert "warning" not in found.output
    inverted = cli("predict", run, "--input", drawn)
    assert inverted.exit_code == 0 and "background is light" in inverted.output and "--invert" in inverted.output
    turned = cli("predict", run, "--input", drawn, "--invert")
    assert turned.exit_code == 0 and "warning" not in turned.output


def test_a_last_layer_without_probabilities_under_cross_entropy_is_warned_of(cli, caplog):
    with caplog.at_level("WARNING"):
        result = cli("validate", "digits", "--set", "model.layers.1.Dense.activation=relu")
    assert result.exit_code == 0, result.output
    assert any("activation is relu" in r.getMessage() and "softmax" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"):
        cli("validate", "digits", "--set", "model.layers.1.Dense.activation=linear",
            "--set", "loss={SparseCategoricalCrossentropy: {from_logits: true}}")
    assert not [r for r in caplog.records if "activation" in r.getMessage()], "logits are what the loss takes"


def test_help_shows_no_type_labels_and_an_example(cli):
    for command in ("train", "kfold", "sweep", "compare", "show", "predict", "validate"):
        text = cli(command, "--help").output
        assert "<str>" not in text and "<bool>" not in text and "<path>" not in text and "{CONFIG}" not in text
        assert "Example: nnlab " + command in text, command


def test_an_interrupted_run_says_how_to_resume_it_and_early_stopping_says_so(tmp_path, capsys):
    from nnlab.views.summaries import run_summary

    run_summary({"status": "interrupted", "name": "x", "epochs_run": 3, "wall_time_s": 1.0, "params": 10,
                 "message": "stopped by SIGINT after 3 epochs", "checkpoint_epoch": 3}, str(tmp_path / "r"))
    out = capsys.readouterr().out
    assert f"nnlab train --resume {tmp_path / 'r'}" in out
    run_summary({"status": "completed", "name": "x", "epochs_run": 10, "wall_time_s": 1.0, "params": 10,
                 "early_stopping": {"monitor": "val_loss", "stopped_epoch": 10, "restored_epoch": 8},
                 "train": {"loss": 0.5}, "test": {"loss": 0.6}, "train_rows": 100},
                str(tmp_path / "r"), {"loss": [1.0, 0.8]})
    out = " ".join(capsys.readouterr().out.split())  # prose wraps at the console's width
    assert "stopped early at epoch 10" in out and "weights of epoch 8 restored" in out
    assert "measured again after training" in out and "0.8000" in out


def test_early_stopping_is_recorded(cli, tmp_path):
    result = cli("train", "digits", "--runs-dir", tmp_path / "runs", "--quiet", "--set", "training.epochs=60",
                 "--set", "training.early_stopping={monitor: val_loss, patience: 0, min_delta: 0.5}")
    assert result.exit_code == 0, result.output
    metrics = json.loads((only_run(tmp_path / "runs") / "metrics.json").read_text())
    stopped = metrics["early_stopping"]
    assert stopped["stopped_epoch"] == metrics["epochs_run"] < 60 and stopped["restored_epoch"] <= stopped["stopped_epoch"]


@pytest.mark.parametrize("text, words", [
    ("name: x\ndataset:\n  name: digits\n   preprocessing: {scale: 16}\n", "check the indentation of line 4"),
    ("name: x\ndataset:\n  name: digits\npreprocessing: {scale: 16}\nmodel: {layers: [Dense: {units: 10}]}\n"
     "optimizer: adam\nloss: mse\ntraining: {epochs: 1}\n", "did you mean dataset.preprocessing?"),
    ("name: x\ndataset: {name: digits}\nmodel: {layers: [Dense: {units: 10}]}\noptimizer: adam\nloss: mse\n"
     "training: {epochs: 1}\nearly_stopping: {patience: 2}\n", "did you mean training.early_stopping?"),
])
def test_indentation_mistakes_are_named(cli, tmp_path, text, words):
    path = tmp_path / "indent.yaml"
    path.write_text(text)
    result = cli("validate", path)
    assert result.exit_code == 2 and words in " ".join(result.output.split()), result.output

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


def test_summary_txt_keeps_every_column(cli, tmp_path):
    result = cli("train", "digits", "--runs-dir", tmp_path / "runs", "--quiet", "--set", "training.epochs=1")
    assert result.exit_code == 0, result.output
    run = only_run(tmp_path / "runs")
    summary = (run / "summary.txt").read_text()
    table = summary.split("Total params")[0]
    assert "Param #" in table and "4,160" in table and "650" in table, summary  # each layer's count


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

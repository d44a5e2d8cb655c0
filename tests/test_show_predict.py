"""``nnlab show`` and ``nnlab predict`` on a real (short) digits run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlab.cli import app
from nnlab.views.show import condensed_epochs
from nnlab.views.style import number

from conftest import REPO

PNG = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One real ``nnlab train`` of configs/digits.yaml, 2 epochs, plus a second (older) copy of it."""
    tmp = tmp_path_factory.mktemp("digits")
    runs = tmp / "runs"
    result = invoke("train", REPO / "configs" / "digits.yaml", "--runs-dir", runs, "--set", "training.epochs=2",
                    "-q")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip())
    older = runs / ("20000101T000000Z_" + folder.name.split("_", 1)[1])
    shutil.copytree(folder, older)
    return runs, folder


@pytest.fixture(scope="module")
def digits_test_set(digits_run):
    """The run's test images as the dataset stores them (raw), and their labels."""
    from nnlab.config import load_config
    from nnlab.datasets.loading import load_dataset

    _, folder = digits_run
    dataset = load_dataset(load_config(folder / "config.yaml"))
    return dataset.x_test, dataset.y_test


def test_show_on_every_form_of_run_id(digits_run):
    runs, folder = digits_run
    forms = [str(folder), folder.name, folder.name[:15], "last"]
    for form in forms:
        result = invoke("show", form, "--runs-dir", runs)
        assert result.exit_code == 0, (form, result.output)
        out = result.stdout
        assert folder.name in out, form  # `last` picks the newest run, not the older copy
        assert "completed" in out and "config (resolved)" in out and "name: digits" in out
        assert "epochs: 2" in out  # the override is in the resolved config shown
        assert "Dense" in out and "Total params" in out  # the model summary
        assert "final metrics" in out and "baseline" in out and "majority_class_accuracy" in out
        assert "per epoch" in out and "plots/loss.png" in out and "plots/test_predictions.png" in out
    metrics = json.loads((folder / "metrics.json").read_text())
    assert f"{metrics['test']['accuracy']:.4f}" in out


def test_show_refuses_what_names_no_run(digits_run):
    runs, folder = digits_run
    result = invoke("show", "20", "--runs-dir", runs)
    assert result.exit_code == 2 and "start of 2 runs" in result.stderr
    result = invoke("show", "19990101", "--runs-dir", runs)
    assert result.exit_code == 2 and "no run '19990101'" in result.stderr and "last" in result.stderr
    result = invoke("show", "last", "--runs-dir", runs.parent / "empty")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_show_on_a_broken_folder_says_what_is_missing(tmp_path):
    folder = tmp_path / "runs" / "20250101T000000Z_broken"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text('{"status": "runn')
    result = invoke("show", "last", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "not valid JSON" in result.stdout and "no config.yaml" in result.stdout
    assert "no summary.txt" in result.stdout


def test_condensed_epochs():
    assert condensed_epochs(5) == [0, 1, 2, 3, 4]
    shown = condensed_epochs(100, best=57)
    assert {0, 1, 2, 97, 98, 99, 57} <= set(shown) and len(shown) <= 14 and shown == sorted(shown)


def test_predict_a_test_example(digits_run, digits_test_set, tmp_path):
    runs, folder = digits_run
    x_test, y_test = digits_test_set
    result = invoke("predict", folder.name, "--runs-dir", runs, "--index", 7, "--top", 10, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (prediction,) = data["predictions"]
    assert prediction["true"] == str(y_test[7])  # digits' class names are "0".."9"
    probabilities = [t["probability"] for t in prediction["top"]]
    assert len(probabilities) == 10 and probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1, abs=1e-4)
    assert prediction["predicted"] == prediction["top"][0]["class"]
    assert prediction["right"] == (prediction["predicted"] == prediction["true"])

    figure = tmp_path / "example.png"
    result = invoke("predict", "last", "--runs-dir", runs, "--index", 7, "--top", 3, "--plot", figure)
    assert result.exit_code == 0, result.output
    assert "predicted:" in result.stdout and f"true: {y_test[7]}" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line[:1].isdigit()]) == 3  # --top 3
    assert figure.read_bytes()[:8] == PNG


def test_predict_input_files_go_through_the_runs_preprocessing(digits_run, digits_test_set, tmp_path):
    runs, folder = digits_run
    x_test, _ = digits_test_set

    def probabilities(*args):
        result = invoke("predict", folder, "--top", 10, "--json", *args)
        assert result.exit_code == 0, result.output
        return [{t["class"]: t["probability"] for t in p["top"]} for p in json.loads(result.stdout)["predictions"]]

    by_index = probabilities("--index", 3)[0]
    flat = tmp_path / "one.npy"
    np.save(flat, x_test[3])  # raw values 0..16, as the dataset stores them: scaled by the run's config
    assert probabilities("--input", flat)[0] == pytest.approx(by_index, abs=1e-5)
    image = tmp_path / "image.npy"
    np.save(image, x_test[3].reshape(8, 8))  # the picture shape is accepted too
    assert probabilities("--input", image)[0] == pytest.approx(by_index, abs=1e-5)
    batch = tmp_path / "batch.npz"
    np.savez(batch, x=x_test[:4])
    assert probabilities("--input", batch)[3] == pytest.approx(by_index, abs=1e-5)
    png = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray(np.round(x_test[3].reshape(8, 8) * 255 / 16).astype("uint8")).save(png)
    assert probabilities("--input", png)[0] == pytest.approx(by_index, abs=0.02)


def test_predict_refuses_input_of_the_wrong_shape(digits_run, tmp_path):
    runs, folder = digits_run
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 5)))
    result = invoke("predict", folder, "--input", wrong)
    assert result.exit_code == 2
    assert "(3, 5)" in result.stderr and "(64,)" in result.stderr and "(8, 8)" in result.stderr
    assert "Traceback" not in result.output
    result = invoke("predict", folder, "--index", 100000)
    assert result.exit_code == 2 and "--index" in result.stderr
    result = invoke("predict", folder)
    assert result.exit_code == 2 and "--index I" in result.stderr
    text = tmp_path / "words.csv"
    text.write_text("a,b")
    result = invoke("predict", folder, "--input", text)
    assert result.exit_code == 2 and ".npy" in result.stderr
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not an array")
    result = invoke("predict", folder, "--input", garbage)
    assert result.exit_code == 2 and "garbage.npy: cannot read the array: not a NumPy" in result.stderr
    no_model = tmp_path / "runs" / "20250101T000000Z_nomodel"
    no_model.mkdir(parents=True)
    (no_model / "metrics.json").write_text('{"status": "failed"}')
    result = invoke("predict", no_model, "--index", 0)
    assert result.exit_code == 2 and "no model.keras (status failed)" in result.stderr


def test_predict_text_through_the_word_index(tmp_path):
    from keras_files import write_imdb

    from nnlab.datasets.keras_sets import decode, read_word_index

    data = tmp_path / "data"
    write_imdb(data, train=40, test=10, vocab=300)
    config = tmp_path / "imdb_tiny.yaml"
    config.write_text("name: imdb_tiny\n"
                      "dataset: {name: imdb, num_words: 1000, preprocessing: {multi_hot: true}}\n"
                      "model: {layers: [Dense: {units: 4, activation: relu}, Dense: {units: 1, activation: sigmoid}]}\n"
                      "optimizer: rmsprop\nloss: binary_crossentropy\nmetrics: [accuracy]\n"
                      "training: {epochs: 1, batch_size: 16}\n")
    runs = tmp_path / "runs"
    assert invoke("train", config, "--runs-dir", runs, "--data-dir", data, "-q").exit_code == 0

    def predicted(*args):
        result = invoke("predict", "last", "--runs-dir", runs, "--data-dir", data, "--json", *args)
        assert result.exit_code == 0, result.output
        (p,) = json.loads(result.stdout)["predictions"]
        return {t["class"]: t["probability"] for t in p["top"]}

    by_index = predicted("--index", 0)
    assert set(by_index) == {"negative", "positive"}
    # The test review written out as words and read back gives the same prediction.
    from nnlab.config import load_config
    from nnlab.datasets.loading import load_dataset

    dataset = load_dataset(load_config(config), data)
    sequence = dataset.x_test[0]  # as loaded: the start character 1, then ranks + 3 (Keras shuffles the rows)
    review = tmp_path / "review.txt"
    review.write_text(decode(sequence[1:], read_word_index(data / "imdb_word_index.json")))
    assert "?" not in review.read_text()  # every word is in the index: nothing is lost on the way back
    assert predicted("--input", review) == pytest.approx(by_index, abs=1e-6)


# -- show at 80 columns, on the 0.1.0 run folders ----------------------------------------------------

FIXTURES = REPO / "tests" / "fixtures" / "runs_v0_1_0"


def show_at(width: int, runs: Path, run: str) -> str:
    """``nnlab show RUN`` as a terminal ``width`` columns wide shows it (escape codes removed)."""
    import re

    env = {"COLUMNS": str(width), "TTY_COMPATIBLE": "1", "NO_COLOR": "1", "FORCE_COLOR": None}
    result = CliRunner().invoke(app, ["show", run, "--runs-dir", str(runs)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", result.stdout)


def section(out: str, title: str) -> str:
    start = out.index(title)
    end = out.index("plots ──", start)
    return out[start:end]


@pytest.fixture
def old_runs(tmp_path) -> Path:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES, runs)
    return runs


@pytest.mark.parametrize("run", ["20261201T082859Z_digits_kfold", "20261201T082905Z_digits_kfold"])
def test_show_kfold_epochs_read_whole_at_80_columns(old_runs, run):
    out = show_at(80, old_runs, run)
    epochs = section(out, "per epoch")
    assert all(len(line.rstrip()) <= 80 for line in epochs.splitlines()), epochs
    assert "…" not in epochs
    assert "each figure: the mean ± std over the 2 folds" in epochs
    # history_mean.csv's figures, mean ± std in one cell, every metric (the monitored one first)
    mean = (old_runs / run / "history_mean.csv").read_text().splitlines()
    header, last = mean[0].split(","), [float(v) for v in mean[-1].split(",")]
    for name in ("val_loss", "loss", "val_accuracy", "accuracy"):
        value, spread = last[header.index(f"{name}_mean")], last[header.index(f"{name}_std")]
        assert f"{number(value)} ± {number(spread)}" in epochs, name
    assert epochs.index("val_loss") < epochs.index("val_accuracy")
    # The folds table: each fold's figures and the mean and std rows of kfold.json, whole.
    folds = out[out.index("k-fold validation (k=2)"):out.index("best epoch by mean")]
    rows = {line.split()[1]: line.split()[2:] for line in folds.splitlines() if line.startswith("│")}
    assert rows["1"] == ["│", "3", "│", "0.2865", "│", "2.1454", "│"]
    assert rows["mean"] == ["│", "│", "0.2916", "│", "2.1586", "│"]
    assert rows["std"] == ["│", "│", "0.0051", "│", "0.0131", "│"]
    assert "val_accuracy" in folds and "val_loss" in folds


def test_show_train_epochs_and_header_read_whole_at_80_columns(old_runs):
    run = "20261201T082914Z_digits"  # a sweep trial: the longest header line
    out = show_at(80, old_runs, run)
    epochs = section(out, "per epoch")
    assert all(len(line.rstrip()) <= 80 for line in epochs.splitlines()) and "…" not in epochs
    history = (old_runs / run / "history.csv").read_text().splitlines()
    names = history[0].split(",")
    for line in history[1:]:
        for name, value in zip(names[1:], line.split(",")[1:]):
            assert number(float(value)) in epochs, (name, value)
    # Lines of words wrap between words, not wherever the terminal's edge falls.
    head = out[:out.index("folder:")]  # (a path is not wrapped: it stays one word to copy)
    assert all(len(line.rstrip()) <= 80 for line in head.splitlines()), head
    assert "trial 0" in head and "sweep 20261201T082914Z_digits_sweep" in head
    metrics = section(out, "final metrics")
    assert "shuffled_labels_accuracy 0.0972" in metrics
    assert all(len(line.rstrip()) <= 80 for line in metrics[:metrics.index("per epoch")].splitlines())


def test_show_splits_a_wide_epochs_table_rather_than_cut_it(tmp_path):
    folder = tmp_path / "runs" / "20250101T000000Z_many"
    folder.mkdir(parents=True)
    names = ["loss", "accuracy", "auc", "precision", "recall"]
    (folder / "metrics.json").write_text(json.dumps({"status": "completed", "kind": "train", "epochs_run": 30,
                                                     "best": {"monitor": "val_auc", "epoch": 17, "value": 0.5}}))
    header = ["epoch", *names, *(f"val_{n}" for n in names)]
    lines = [",".join(header)] + [",".join([str(e), *(f"{0.123456 + e / 1000 + i / 100:.6f}" for i in range(10))])
                                  for e in range(1, 31)]
    (folder / "history.csv").write_text("\n".join(lines) + "\n")
    out = show_at(80, tmp_path / "runs", folder.name)
    epochs = section(out, "per epoch")
    assert all(len(line.rstrip()) <= 80 for line in epochs.splitlines()), epochs
    assert not any(token.endswith("…") and token != "…" for token in epochs.split())
    tables = [line for line in epochs.splitlines() if line.startswith("┃ epoch")]
    assert len(tables) > 1  # several tables, each with the epoch
    shown = {word for line in tables for word in line.replace("┃", " ").split()}
    assert shown == {"epoch", *header[1:]}
    assert tables[0].split()[3:6:2] == ["auc", "val_auc"]  # the monitored metric first, with its val_
    assert "17 *" in epochs and number(0.123456 + 17 / 1000 + 0.02) in epochs

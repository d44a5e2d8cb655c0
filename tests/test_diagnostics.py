"""The diagnostics of a run's test predictions: per-class figures, the confusion matrix, the most
confused pairs, the most confident mistakes, the ROC curve of binary tasks, the residuals of
regression; in train runs, k-fold's final model and sweep trials; ``nnlab show`` prints them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlab.cli import app
from nnlab.store import format as runfile
from nnlab.store.reading import read_diagnostics
from nnlab.training import results

from conftest import SPIRAL, only_run

PNG = b"\x89PNG\r\n\x1a\n"

DIGITS = """
name: tiny_digits
seed: 0
dataset: {name: digits, preprocessing: {scale: 16}}
model:
  layers:
    - Dense: {units: 16, activation: relu}
    - Dense: {units: 10, activation: softmax}
optimizer: {name: adam, learning_rate: 0.01}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 3, batch_size: 64}
kfold: {k: 2}
"""

BREAST_CANCER = """
name: tiny_cancer
seed: 0
dataset: {name: breast_cancer, preprocessing: {standardize: true}}
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 1, activation: sigmoid}
optimizer: {name: adam, learning_rate: 0.01}
loss: binary_crossentropy
metrics: [accuracy]
training: {epochs: 2, batch_size: 64}
"""

DIABETES = """
name: tiny_diabetes
seed: 0
dataset: {name: diabetes, preprocessing: {standardize: true}}
model:
  layers: [Dense: {units: 8, activation: relu}, Dense: {units: 1}]
optimizer: {name: rmsprop, learning_rate: 0.01}
loss: mse
metrics: [mae]
training: {epochs: 3, batch_size: 32}
"""


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def metrics_of(folder: Path) -> dict:
    return json.loads((folder / runfile.METRICS).read_text())


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG


def predictions_of(folder: Path, data_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The saved model's predictions of the run's test rows (prepared as the run prepared them), and the labels."""
    from nnlab.backend import keras
    from nnlab.config import load_config
    from nnlab.datasets.loading import load_dataset
    from nnlab.training.data import prepare

    config = load_config(folder / runfile.CONFIG)
    data = prepare(config, load_dataset(config, data_dir))
    model = keras().models.load_model(folder / runfile.MODEL)
    return model.predict(data.x_test, verbose=0), np.asarray(data.y_test)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One real ``nnlab train`` of a tiny digits MLP, with what it passed to the misclassified figure."""
    tmp = tmp_path_factory.mktemp("digits")
    (tmp / "digits.yaml").write_text(DIGITS)
    from nnlab import plots

    drawn = {}
    real = plots.misclassified

    def spy(images, probabilities, labels, class_names, path, **kwargs):
        drawn.update(images=images, probabilities=probabilities, labels=labels)
        return real(images, probabilities, labels, class_names, path, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "misclassified", spy)
        result = invoke("train", tmp / "digits.yaml", "--runs-dir", tmp / "runs", "-q")
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip()), drawn


# -- classification -------------------------------------------------------------------------------

def test_per_class_figures_are_sklearns_on_the_saved_models_predictions(digits_run):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    folder, _ = digits_run
    metrics = metrics_of(folder)
    predicted, labels = predictions_of(folder)
    guess = predicted.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(labels, guess, labels=range(10),
                                                                     zero_division=0)
    per_class = metrics["per_class"]
    assert [row["class"] for row in per_class] == [str(i) for i in range(10)]
    assert [row["precision"] for row in per_class] == pytest.approx(precision.tolist())
    assert [row["recall"] for row in per_class] == pytest.approx(recall.tolist())
    assert [row["f1"] for row in per_class] == pytest.approx(f1.tolist())
    assert [row["support"] for row in per_class] == support.tolist() and sum(support) == metrics["test_rows"]
    # Accuracy from the per-class recalls and supports is the run's test accuracy.
    right = sum(row["recall"] * row["support"] for row in per_class)
    assert right / metrics["test_rows"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)

    diagnostics = json.loads((folder / runfile.DIAGNOSTICS).read_text())
    counts = np.asarray(diagnostics["confusion_matrix"]["counts"])
    assert diagnostics["confusion_matrix"]["labels"] == [str(i) for i in range(10)]
    assert counts.tolist() == confusion_matrix(labels, guess, labels=range(10)).tolist()
    assert set(diagnostics) == {"confusion_matrix"}  # no ROC curve (10 classes), no residuals
    assert read_diagnostics(folder) == diagnostics
    assert "roc_auc" not in metrics and "diagnostics_error" not in metrics


def test_the_most_confused_pairs_are_the_largest_off_diagonal_counts(digits_run):
    folder, _ = digits_run
    metrics = metrics_of(folder)
    counts = np.asarray(read_diagnostics(folder)["confusion_matrix"]["counts"])
    off = counts.copy()
    np.fill_diagonal(off, 0)
    expected = sorted(((int(off[i, j]), i, j) for i in range(10) for j in range(10) if off[i, j]),
                      key=lambda t: -t[0])[:5]
    pairs = metrics["confused_pairs"]
    assert off.sum() > 0 and 0 < len(pairs) <= 5
    assert [p["count"] for p in pairs] == [c for c, _, _ in expected]
    for p in pairs:
        i, j = int(p["true"]), int(p["predicted"])
        assert i != j and p["count"] == off[i, j]
        assert p["share"] == pytest.approx(off[i, j] / counts[i].sum())


def test_image_runs_draw_the_confusion_matrix_and_the_most_confident_mistakes(digits_run):
    folder, drawn = digits_run
    metrics = metrics_of(folder)
    for name in (runfile.CONFUSION_MATRIX_PLOT, runfile.MISCLASSIFIED_PLOT, "test_predictions.png"):
        assert is_png(folder / runfile.PLOTS / name), name
        assert f"{runfile.PLOTS}/{name}" in metrics["plots"]
    assert len(metrics["plots"]) == len(set(metrics["plots"]))
    # What misclassified.png shows: wrong predictions only, at most 15, the most confident first,
    # and no wrong prediction left out was more confident than one shown.
    predicted, labels = predictions_of(folder)
    confidence = predicted.max(axis=1)
    wrong = predicted.argmax(axis=1) != labels
    shown = drawn["probabilities"]
    assert 0 < len(shown) <= 15 and len(drawn["images"]) == len(shown) and drawn["images"].shape[1:] == (8, 8)
    assert np.all(shown.argmax(axis=1) != drawn["labels"])
    assert np.all(np.diff(shown.max(axis=1)) <= 1e-6)
    assert len(shown) == min(15, int(wrong.sum()))
    assert shown.max(axis=1).min() >= np.sort(confidence[wrong])[::-1][len(shown) - 1] - 1e-6


def test_show_prints_the_per_class_table_and_the_confused_pairs(digits_run):
    folder, _ = digits_run
    result = invoke("show", folder)
    assert result.exit_code == 0, result.output
    out = result.stdout
    metrics = metrics_of(folder)
    assert "per class (test)" in out and "precision" in out and "support" in out
    lines = out[out.index("per class (test)"):out.index("most confused")].splitlines()
    for row in metrics["per_class"]:  # every class (10 <= 15), with its figures
        line = next(line for line in lines if line.strip("│ ").startswith(row["class"] + " "))
        assert f"{row['precision']:.4f}" in line and f"{row['f1']:.4f}" in line and str(row["support"]) in line
    first = metrics["confused_pairs"][0]
    assert "most confused (true → predicted):" in out
    assert f"{first['true']} → {first['predicted']}: {first['count']}×" in out
    assert "plots/confusion_matrix.png" in out and "plots/misclassified.png" in out
    assert out.index("per class (test)") > out.index("final metrics")


def test_a_damaged_diagnostics_file_breaks_neither_show_nor_its_reader(digits_run, tmp_path):
    import shutil

    folder, _ = digits_run
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    diagnostics = copy / runfile.DIAGNOSTICS
    for damage in ('{"confusion_matrix": {"labels": ["0", "1"], "coun', "[1, 2]", "", "\xff\xfe"):
        diagnostics.write_text(damage, encoding="latin-1")
        assert read_diagnostics(copy) == {}
        result = invoke("show", copy)
        assert result.exit_code == 0, result.output
        assert "per class (test)" in result.stdout and "Traceback" not in result.output
    # Sections of the wrong shape are dropped, well-formed ones kept.
    roc = {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.9, 1.0], "auc": 0.95}
    diagnostics.write_text(json.dumps({"confusion_matrix": {"labels": ["a", "b"], "counts": [[1, 2]]}, "roc": roc,
                                       "residuals": {"predicted": [1.0], "residual": [1.0, 2.0]}}))
    assert read_diagnostics(copy) == {"roc": roc}
    diagnostics.unlink()
    assert read_diagnostics(copy) == {}
    assert invoke("show", copy).exit_code == 0


@pytest.mark.parametrize("units, activation, loss", [
    (1, "sigmoid", "binary_crossentropy"),
    (2, "softmax", "sparse_categorical_crossentropy"),
])
def test_binary_runs_record_the_roc_auc_and_draw_the_curve(cli, write_config, tmp_path, units, activation, loss):
    from sklearn.metrics import roc_auc_score

    config = BREAST_CANCER.replace("{units: 1, activation: sigmoid}", f"{{units: {units}, activation: {activation}}}")
    path = write_config(config.replace("loss: binary_crossentropy", f"loss: {loss}"))
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path / "runs")
    metrics = metrics_of(folder)
    predicted, labels = predictions_of(folder)
    scores = predicted[:, -1]  # P(class 1): the sigmoid unit, or the softmax's second
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert [row["class"] for row in metrics["per_class"]] == ["malignant", "benign"]
    roc = read_diagnostics(folder)["roc"]
    assert roc["auc"] == metrics["roc_auc"] and len(roc["fpr"]) == len(roc["tpr"]) <= 200
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert is_png(folder / runfile.PLOTS / runfile.ROC_CURVE_PLOT) and is_png(folder / runfile.PLOTS /
                                                                               runfile.CONFUSION_MATRIX_PLOT)
    assert f"{runfile.PLOTS}/{runfile.ROC_CURVE_PLOT}" in metrics["plots"]
    assert not (folder / runfile.PLOTS / runfile.MISCLASSIFIED_PLOT).exists()  # not images
    shown = cli("show", folder)
    assert f"ROC AUC (test): {metrics['roc_auc']:.4f}" in shown.stdout


def test_many_classes_show_the_worst_five_and_a_readable_matrix(cli, write_config, tmp_path):
    from keras_files import write_reuters

    data = tmp_path / "data"
    write_reuters(data, rows=120, classes=46)
    path = write_config("""
        name: tiny_reuters
        dataset: {name: reuters, num_words: 300, preprocessing: {multi_hot: true}}
        model: {layers: [Dense: {units: 8, activation: relu}, Dense: {units: 46, activation: softmax}]}
        optimizer: rmsprop
        loss: sparse_categorical_crossentropy
        metrics: [accuracy]
        training: {epochs: 1, batch_size: 32}
        """)
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "--data-dir", data, "-q")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path / "runs")
    metrics = metrics_of(folder)
    assert len(metrics["per_class"]) == 46
    counts = read_diagnostics(folder)["confusion_matrix"]["counts"]
    assert len(counts) == 46 and all(len(row) == 46 for row in counts)
    assert sum(map(sum, counts)) == metrics["test_rows"]
    png = folder / runfile.PLOTS / runfile.CONFUSION_MATRIX_PLOT
    assert is_png(png)
    import matplotlib.image

    height, width = matplotlib.image.imread(png).shape[:2]
    assert min(height, width) > 1200  # 46 classes get a figure they fit in
    out = cli("show", folder).stdout
    assert "the 5 classes of 46 with the lowest F1" in out
    worst = sorted(metrics["per_class"], key=lambda r: r["f1"])[:5]
    table = out[out.index("per class (test)"):out.index("the 5 classes of 46")]
    assert sum(1 for line in table.splitlines() if line.startswith("│")) == 5
    assert all(f"{row['f1']:.4f}" in table for row in worst)


# -- regression -----------------------------------------------------------------------------------

def test_regression_runs_write_the_residuals(cli, write_config, tmp_path):
    result = cli("train", write_config(DIABETES), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path / "runs")
    metrics = metrics_of(folder)
    predicted, truth = predictions_of(folder)
    residuals = read_diagnostics(folder)["residuals"]
    assert len(residuals["predicted"]) == metrics["test_rows"] == len(truth)  # 89 rows: all kept
    assert residuals["predicted"] == pytest.approx(predicted.ravel().tolist(), abs=1e-5)
    assert residuals["residual"] == pytest.approx((truth.ravel() - predicted.ravel()).tolist(), abs=1e-4)
    mae = float(np.mean(np.abs(residuals["residual"])))
    assert mae == pytest.approx(metrics["test"]["mae"], rel=1e-4)
    for name in (runfile.RESIDUALS_PLOT, "predicted_vs_true.png"):
        assert is_png(folder / runfile.PLOTS / name) and f"{runfile.PLOTS}/{name}" in metrics["plots"]
    assert "per_class" not in metrics and "roc_auc" not in metrics and "confused_pairs" not in metrics
    out = cli("show", folder).stdout
    assert "per class" not in out and "plots/residuals.png" in out


# -- k-fold's final model, sweep trials --------------------------------------------------------

def test_kfold_final_writes_the_diagnostics_of_its_final_model(cli, write_config, tmp_path):
    from sklearn.metrics import confusion_matrix

    result = cli("kfold", write_config(DIGITS), "--runs-dir", tmp_path / "runs", "--final", "--quiet")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path / "runs")
    metrics = metrics_of(folder)
    assert metrics["kind"] == "kfold" and metrics["final"] and len(metrics["per_class"]) == 10
    predicted, labels = predictions_of(folder)  # the final model's
    counts = read_diagnostics(folder)["confusion_matrix"]["counts"]
    assert counts == confusion_matrix(labels, predicted.argmax(axis=1), labels=range(10)).tolist()
    for name in (runfile.CONFUSION_MATRIX_PLOT, runfile.MISCLASSIFIED_PLOT):
        assert is_png(folder / runfile.PLOTS / name) and f"{runfile.PLOTS}/{name}" in metrics["plots"]
    assert any(p.startswith("plots/kfold_") for p in metrics["plots"])  # the k-fold curves stay listed
    assert "per class (test)" in cli("show", folder).stdout


def test_kfold_without_final_has_no_test_diagnostics(cli, write_config, tmp_path):
    result = cli("kfold", write_config(DIGITS), "--runs-dir", tmp_path / "runs", "--quiet",
                 "--set", "training.epochs=1")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path / "runs")
    assert not (folder / runfile.DIAGNOSTICS).exists() and "per_class" not in metrics_of(folder)
    assert read_diagnostics(folder) == {}


def test_sweep_trials_write_the_diagnostics(cli, write_config, tmp_path):
    path = write_config(SPIRAL)
    runs = tmp_path / "runs"
    result = cli("sweep", path, "--runs-dir", runs, "--quiet", "--grid", "seed=1,2",
                 "--set", "training.validation_split=0.2")
    assert result.exit_code == 0, result.output
    trials = [p for p in runs.iterdir() if p.is_dir() and not p.name.endswith("_sweep")]
    assert len(trials) == 2
    for folder in trials:
        metrics = metrics_of(folder)
        assert metrics["sweep_id"] and [r["class"] for r in metrics["per_class"]] == ["arm 0", "arm 1", "arm 2"]
        assert sum(r["support"] for r in metrics["per_class"]) == metrics["test_rows"]
        assert len(read_diagnostics(folder)["confusion_matrix"]["counts"]) == 3
        assert is_png(folder / runfile.PLOTS / runfile.CONFUSION_MATRIX_PLOT)


# -- failures, and the computation itself ------------------------------------------------------------

def test_a_failure_in_the_diagnostics_costs_the_run_nothing_else(cli, write_config, tmp_path, monkeypatch):
    def broken(data, predicted):
        raise ValueError("diagnostics exploded")

    monkeypatch.setattr(results, "prediction_diagnostics", broken)
    result = cli("train", write_config(SPIRAL), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path / "runs")
    metrics = metrics_of(folder)
    assert metrics["status"] == "completed" and metrics["diagnostics_error"] == "diagnostics exploded"
    assert "test" in metrics and "baseline" in metrics and (folder / runfile.MODEL).is_file()
    assert "plots/decision_boundary.png" in metrics["plots"] and "plots/loss.png" in metrics["plots"]
    assert not (folder / runfile.DIAGNOSTICS).exists() and "per_class" not in metrics
    out = cli("show", folder).stdout
    assert "diagnostics not made: diagnostics exploded" in out


def test_a_failing_diagnostics_figure_keeps_the_others(cli, write_config, tmp_path, monkeypatch):
    from nnlab import plots

    def broken(*args, **kwargs):
        raise RuntimeError("no figure today")

    monkeypatch.setattr(plots, "confusion_matrix", broken)
    result = cli("train", write_config(SPIRAL), "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path / "runs")
    metrics = metrics_of(folder)
    assert metrics["status"] == "completed" and metrics["plots_error"] == "no figure today"
    assert "plots/decision_boundary.png" in metrics["plots"] and "per_class" in metrics
    assert (folder / runfile.DIAGNOSTICS).is_file()


def _prepared(y_test, classes=None, task="multiclass"):
    dataset = SimpleNamespace(task=task, class_names=classes, num_classes=len(classes) if classes else None,
                              image_shape=None, input_shape=(2,))
    return SimpleNamespace(dataset=dataset, y_test=np.asarray(y_test))


def test_the_computation_reads_one_hot_labels_logits_and_absent_classes():
    from sklearn.metrics import precision_recall_fscore_support

    labels = np.array([0, 0, 1, 1, 1, 0])
    onehot = np.eye(3)[labels]  # class "c" never occurs in the test set
    logits = np.array([[3.0, -1, 0], [-2, 1, 0], [0, 4, -1], [0, 2, 5], [-1, 3, 0], [2, 0, 1]])
    fields, file = results.prediction_diagnostics(_prepared(onehot, ["a", "b", "c"]), logits)
    guess = logits.argmax(axis=1)
    _, _, f1, _ = precision_recall_fscore_support(labels, guess, labels=[0, 1, 2], zero_division=0)
    assert [row["f1"] for row in fields["per_class"]] == pytest.approx(f1.tolist())
    assert [row["support"] for row in fields["per_class"]] == [3, 3, 0]
    assert file["confusion_matrix"] == {"labels": ["a", "b", "c"], "counts": [[2, 1, 0], [0, 2, 1], [0, 0, 0]]}
    assert fields["confused_pairs"] == [{"true": "a", "predicted": "b", "count": 1, "share": pytest.approx(1 / 3)},
                                        {"true": "b", "predicted": "c", "count": 1, "share": pytest.approx(1 / 3)}]
    assert "roc" not in file and "roc_auc" not in fields
    # No mistakes: no confused pairs; a binary test set with one class only: no ROC curve.
    fields, file = results.prediction_diagnostics(_prepared([1, 1], ["no", "yes"]), np.array([[0.9], [0.8]]))
    assert fields["confused_pairs"] == [] and "roc" not in file and "roc_auc" not in fields
    # A sigmoid's logits: the ROC AUC is that of the scores.
    fields, file = results.prediction_diagnostics(_prepared([0, 1, 1, 0], ["no", "yes"]),
                                                  np.array([[-2.0], [3.0], [-1.5], [-1.0]]))
    assert fields["roc_auc"] == pytest.approx(0.75) and file["roc"]["auc"] == fields["roc_auc"]


def test_long_curves_are_thinned_keeping_their_ends():
    kept = results.spread(10_000, 200)
    assert len(kept) <= 200 and kept[0] == 0 and kept[-1] == 9_999 and np.all(np.diff(kept) > 0)
    assert results.spread(50, 200).tolist() == list(range(50))
    truth = np.linspace(0, 1, 5000)
    _, file = results.prediction_diagnostics(_prepared(truth, task="regression"), truth[:, None] + 0.5)
    assert len(file["residuals"]["predicted"]) == len(file["residuals"]["residual"]) <= 2000
    assert file["residuals"]["residual"] == pytest.approx([-0.5] * len(file["residuals"]["residual"]))

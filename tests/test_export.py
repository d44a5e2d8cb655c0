"""``nnlab export``: every format round-trips on a digits MLP and a Fashion-MNIST-shaped CNN, each export
loaded with its own runtime; runs without a model, an existing output and a missing extra are refused
with nothing written; a failed check leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO, run_nnlab
from keras_files import keras_offline, write_fashion_mnist
from nnlab.cli import app

FIXTURES = REPO / "tests" / "fixtures" / "runs_v0_1_0"
FORMATS = ("saved_model", "onnx", "tflite")
DEFAULT_NAMES = {"saved_model": "saved_model", "onnx": "model.onnx", "tflite": "model.tflite"}
TOLERANCE = 1e-5
#: TensorFlow's own interpreter warns that it gives way to ai_edge_litert's, which is not installed here.
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def tree(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its size: what a refused export must leave as it was."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(Path(folder).rglob("*"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two small trained runs in one runs root: configs/digits.yaml (2 epochs) and
    configs/fashion_mnist_cnn.yaml (1 epoch, 8 filters) on Fashion-MNIST-shaped files."""
    tmp = tmp_path_factory.mktemp("export")
    data_dir = tmp / "data"
    write_fashion_mnist(data_dir, train=24, test=12)
    root = tmp / "runs"
    folders = {}
    for name, sets in (("digits", ["training.epochs=2"]),
                       ("fashion_mnist_cnn", ["training.epochs=1", "model.layers.0.Conv2D.filters=8"])):
        args = [a for s in sets for a in ("--set", s)]
        result = invoke("train", REPO / "configs" / f"{name}.yaml", *args, "--runs-dir", root, "--data-dir",
                        data_dir, "-q")
        assert result.exit_code == 0, result.output
        folders[name] = Path(result.stdout.strip())
    return {"root": root, "data_dir": data_dir, **folders}


def first_test_examples(name: str, data_dir: Path) -> np.ndarray:
    """The first 10 test examples preprocessed by hand as the README says the exported model takes them
    (digits: divided by 16; the CNN: divided by 255, with a channel axis), not through nnlab's own code."""
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        _, x_test = train_test_split(digits.data, test_size=0.2, random_state=0, stratify=digits.target)
        return (x_test[:10] / 16).astype("float32")
    import gzip

    raw = gzip.decompress((data_dir / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    return (images[:10] / 255).astype("float32")[..., None]


def outputs_of(fmt: str, path: Path, x: np.ndarray) -> np.ndarray:
    """The export's outputs computed by its own runtime, as a user serving it would load it."""
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        served = loaded.signatures["serving_default"](tf.constant(x))  # what TF Serving calls
        assert len(served) == 1
        return next(iter(served.values())).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    from nnlab.export import tflite_interpreter

    interpreter = tflite_interpreter(path)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["digits", "fashion_mnist_cnn"])
def test_every_format_round_trips_within_the_tolerance(runs, name, fmt):
    import keras

    folder = runs[name]
    result = invoke("export", folder, "--format", fmt, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    path = folder / "export" / DEFAULT_NAMES[fmt]
    assert Path(report["path"]) == path and report["format"] == fmt
    assert report["checked_examples"] == 10 and report["max_difference"] <= TOLERANCE
    assert report["size_bytes"] > 1000
    assert (path / "saved_model.pb").is_file() if fmt == "saved_model" else path.is_file()
    assert not [p for p in (folder / "export").iterdir() if p.name.startswith(".")], "a temporary name is left"

    x = first_test_examples(name, runs["data_dir"])
    expected = keras.models.load_model(folder / "model.keras").predict(x, verbose=0)
    got = outputs_of(fmt, path, x)
    assert got.shape == expected.shape == (10, 10)
    assert np.max(np.abs(got - expected)) <= TOLERANCE
    assert np.allclose(got.sum(axis=1), 1, atol=1e-5), "the softmax is inside the export"


def test_the_terminal_says_what_was_written_its_size_and_the_check(runs, tmp_path):
    out = tmp_path / "elsewhere" / "deeper" / "digits.onnx"  # -o into folders that do not exist yet
    before = tree(runs["digits"])
    result = invoke("export", runs["digits"], "--format", "onnx", "-o", out)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert f"wrote {out} (onnx, " in text and " kB)" in text
    assert "checked with onnxruntime on the first 10 test examples: max |difference| from model.keras" in text
    assert "input: (batch, 64) float32, preprocessed as the run's digits data was: divided by 16" in text
    assert out.is_file() and tree(runs["digits"]) == before, "-o writes nothing into the run folder"
    # An existing folder for a one-file format gets the default name inside it.
    result = invoke("export", runs["fashion_mnist_cnn"], "--format", "tflite", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model.tflite").is_file()
    assert "(batch, 28, 28, 1) float32" in result.stdout and "divided by 255; with a channel axis" in result.stdout


def test_an_existing_export_is_replaced_only_with_force(runs, tmp_path):
    for fmt, out in (("onnx", tmp_path / "m.onnx"), ("saved_model", tmp_path / "sm")):
        assert invoke("export", runs["digits"], "--format", fmt, "-o", out).exit_code == 0
        marker = (out / "saved_model.pb") if fmt == "saved_model" else out
        stamp = marker.stat().st_mtime_ns
        result = invoke("export", runs["digits"], "--format", fmt, "-o", out)
        assert result.exit_code == 2 and "exists already; pass --force" in result.stderr
        assert marker.stat().st_mtime_ns == stamp
        result = invoke("export", runs["digits"], "--format", fmt, "-o", out, "--force")
        assert result.exit_code == 0, result.output
        assert marker.stat().st_mtime_ns != stamp
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # --force replaces an earlier export, never a folder of something else.
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    result = invoke("export", runs["digits"], "--format", "saved_model", "-o", other, "--force")
    assert result.exit_code == 2 and "not a SavedModel folder" in result.stderr
    assert (other / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("run, reason", [
    ("20261201T082859Z_digits_kfold", "is a k-fold run without --final"),
    ("20261201T082852Z_digits", "has status interrupted: only a completed run has a trained model to export "
                                "(nnlab train --resume RUN finishes it)"),
    ("20261201T082923Z_digits", "has status failed"),
    ("20261201T082929Z_digits", "has status diverged"),
    ("20261201T082914Z_digits_sweep", "is a sweep folder"),
])
def test_a_run_without_a_model_is_refused_and_nothing_is_written(tmp_path, run, reason):
    root = tmp_path / "runs"
    shutil.copytree(FIXTURES / run, root / run)
    before = tree(root)
    result = invoke("export", run, "--runs-dir", root, "--format", "onnx")
    assert result.exit_code == 2
    assert reason in " ".join(result.stderr.split()) and "Traceback" not in result.output
    assert tree(root) == before


def test_a_kfold_run_with_final_exports_its_final_model(tmp_path):
    run = "20261201T082905Z_digits_kfold"
    shutil.copytree(FIXTURES / run, tmp_path / run)
    result = invoke("export", tmp_path / run, "--format", "saved_model", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["max_difference"] <= TOLERANCE


def test_onnx_without_the_export_extra_says_how_to_install_it(runs, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # `import tf2onnx` now raises ImportError
    out = tmp_path / "m.onnx"
    result = invoke("export", runs["digits"], "--format", "onnx", "-o", out)
    assert result.exit_code == 2
    assert "needs tf2onnx, which is not installed: pip install 'nnlab[export]'" in " ".join(result.stderr.split())
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_export_that_disagrees_with_the_model_is_removed_and_fails(runs, monkeypatch, tmp_path):
    from nnlab import export

    real = export.run_export
    monkeypatch.setattr(export, "run_export", lambda *args: real(*args) + 1e-3)
    out = tmp_path / "new" / "model.tflite"
    result = invoke("export", runs["digits"], "--format", "tflite", "-o", out)
    assert result.exit_code == 1
    assert "max |difference| 0.001, more than 1e-05; nothing was written" in " ".join(result.stderr.split())
    assert list(tmp_path.iterdir()) == [], "neither the export, its temporary name nor its new folder is left"


def test_without_the_data_the_export_is_written_unchecked_with_a_warning(runs, monkeypatch, tmp_path):
    folder = tmp_path / runs["fashion_mnist_cnn"].name
    shutil.copytree(runs["fashion_mnist_cnn"], folder, ignore=shutil.ignore_patterns("export"))
    env = json.loads((folder / "env.json").read_text())
    env["data"]["data_dir"] = str(tmp_path / "moved")  # the data directory the run used is gone
    (folder / "env.json").write_text(json.dumps(env))
    assert keras_offline(monkeypatch, tmp_path / "keras_home") == []
    result = invoke("export", folder, "--format", "saved_model", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["max_difference"] is None and report["checked_examples"] == 0
    warning = " ".join(report["warnings"])
    assert "the export was not checked against model.keras (give --data-dir DIR to check it)" in warning
    assert "fashion-mnist/{train-labels-idx1-ubyte.gz" in warning  # the loader's own reason
    assert (folder / "export" / "saved_model" / "saved_model.pb").is_file()


def test_an_unknown_format_is_refused(runs):
    result = invoke("export", runs["digits"], "--format", "pickle")
    assert result.exit_code == 2 and "accepted: saved_model, onnx, tflite" in result.stderr


def test_the_command_imports_no_tensorflow_until_it_exports():
    done = run_nnlab("export", "--help")
    assert done.returncode == 0 and "saved_model, onnx or tflite" in done.stdout
    probe = ("import sys, nnlab.cli, nnlab.export; "
             "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    done = __import__("subprocess").run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

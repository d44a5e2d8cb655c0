"""``nnlab train`` end to end: the run folder, its files, statuses, and refusals."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nnlab.store.folder import RunFolder

from conftest import REPO, SPIRAL, only_run, run_nnlab


def test_spiral_run_folder_holds_every_file(cli, write_config, tmp_path):
    path = write_config(SPIRAL)
    runs = tmp_path / "runs"
    result = cli("train", path, "--runs-dir", runs, "--set", "training.epochs=6")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    assert run.name.endswith("_tiny_spiral") and run.name[:8].isdigit()
    assert "run folder:" in result.output and "baseline" in result.output
    for name in ("config.yaml", "metrics.json", "history.csv", "model.keras", "summary.txt", "env.json",
                 "plots/loss.png", "plots/accuracy.png", "plots/decision_boundary.png"):
        assert (run / name).is_file(), name
    for png in (run / "plots").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["training"]["epochs"] == 6  # the override is in the resolved config
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 6 and metrics["kind"] == "train"
    assert metrics["params"] == 2 * 32 + 32 + 32 * 3 + 3
    assert set(metrics["test"]) == {"loss", "accuracy"} and set(metrics["train"]) == {"loss", "accuracy"}
    assert metrics["baseline"]["majority_class_accuracy"] == pytest.approx(1 / 3)
    assert metrics["wall_time_s"] > 0 and metrics["finished"]
    with open(run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert set(rows[0]) == {"epoch", "loss", "accuracy"}
    env = json.loads((run / "env.json").read_text())
    assert env["backend"] and env["keras"] and env["seed"] == 0 and env["command"]
    assert env["overrides"] == ["training.epochs=6"]
    assert "Dense" in (run / "summary.txt").read_text()
    assert not list(run.rglob(".*.tmp")), "no temporary files are left behind"


def test_json_and_quiet_output(cli, write_config, tmp_path):
    path = write_config(SPIRAL)
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "--json", "--set", "training.epochs=1")
    assert json.loads(result.stdout)["status"] == "completed"
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "-q", "--set", "training.epochs=1")
    assert Path(result.stdout.strip()).is_dir() and len(result.stdout.strip().splitlines()) == 1


def test_holdout_validation_and_regression_plots(cli, write_config, tmp_path):
    path = write_config("""
        name: diabetes_mlp
        dataset: {name: diabetes, preprocessing: {standardize: true}}
        model:
          layers: [Dense: {units: 8, activation: relu}, Dense: {units: 1}]
        optimizer: rmsprop
        loss: mse
        metrics: [mae]
        training: {epochs: 3, batch_size: 16, validation_holdout: 50}
        """)
    result = cli("train", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    run = only_run(tmp_path / "runs")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["validation_rows"] == 50 and "mae" in metrics["validation"]
    assert metrics["baseline"]["name"] == "linear_regression" and metrics["baseline"]["linear_regression_mae"] > 0
    assert (run / "plots" / "predicted_vs_true.png").is_file() and (run / "plots" / "mae.png").is_file()
    assert "val_mae" in (run / "history.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("change, words", [
    (("training: {epochs: 5, batch_size: full}", "training: {epochs: 0}"), "training.epochs"),
    (("- Dense: {units: 3, activation: softmax}", "- Dense: {units: 1, activation: softmax}"), "3 classes"),
    (("optimizer: {name: sgd, learning_rate: 1.0}", "optimizer: {name: sgx}"), "did you mean 'sgd'"),
])
def test_refused_config_exits_2_with_one_message_and_no_folder(cli, write_config, tmp_path, change, words):
    path = write_config(SPIRAL.replace(*change))
    runs = tmp_path / "runs"
    result = cli("train", path, "--runs-dir", runs)
    assert result.exit_code == 2
    assert words in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not runs.exists() or not any(runs.iterdir())


def test_diverging_loss_ends_with_status_diverged(cli, write_config, tmp_path):
    path = write_config("""
        name: exploding
        dataset: {name: diabetes}
        model: {layers: [Dense: {units: 1}]}
        optimizer: {name: sgd, learning_rate: 1.0e+6}
        loss: mse
        training: {epochs: 20, batch_size: 32}
        """)
    result = cli("train", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 1
    metrics = json.loads((only_run(tmp_path / "runs") / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and "epoch 1" in metrics["message"]


def test_same_name_in_the_same_second_gets_distinct_folders(tmp_path):
    from datetime import datetime, timezone

    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    a = RunFolder.create(tmp_path, "x", started=moment)
    b = RunFolder.create(tmp_path, "x", started=moment)
    assert a.path != b.path and a.path.name == "20260102T030405Z_x" and b.path.name == "20260102T030405Z_x-2"
    with pytest.raises(Exception, match="path separators"):
        RunFolder.create(tmp_path, "../x")


def test_import_and_help_do_not_import_tensorflow():
    code = ("import sys, nnlab, nnlab.cli, nnlab.config, nnlab.datasets; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    result = run_nnlab("--help")
    assert result.returncode == 0 and "train" in result.stdout


@pytest.mark.slow
def test_digits_in_a_subprocess_beats_its_baseline(tmp_path):
    result = run_nnlab("train", REPO / "configs" / "digits.yaml", "--runs-dir", tmp_path / "runs",
                       "--set", "training.epochs=15", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = Path(result.stdout.strip())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.9 > metrics["baseline"]["majority_class_accuracy"]
    assert (run / "plots" / "test_predictions.png").is_file()
    assert "train" in json.loads((run / "env.json").read_text())["command"]
    assert result.stderr == "", "TensorFlow's start-up noise stays off the terminal"


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopped_run_is_marked_interrupted_and_keeps_its_history(tmp_path, write_config, sig, code):
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 100000"))
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "nnlab", "train", str(path), "--runs-dir", str(runs)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    history = None
    while time.monotonic() < deadline:
        found = list(runs.glob("*/history.csv")) if runs.exists() else []
        if found and len(found[0].read_text().splitlines()) > 3:
            history = found[0]
            break
        time.sleep(0.2)
    assert history is not None, "training never started"
    process.send_signal(sig)
    process.communicate(timeout=60)
    assert process.returncode == code
    metrics = json.loads((history.parent / "metrics.json").read_text())
    assert metrics["status"] == "interrupted"
    lines = history.read_text().splitlines()
    assert len(lines) - 1 == metrics["epochs_run"] >= 3


def test_epoch_durations_read_in_milliseconds_below_a_tenth_of_a_second():
    from nnlab.views.progress import format_seconds

    assert format_seconds(0.0041) == "4.1ms" and format_seconds(0.0999) == "99.9ms"
    assert format_seconds(0.1) == "0.10s" and format_seconds(12.345) == "12.35s"

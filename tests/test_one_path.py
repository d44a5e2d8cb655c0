"""One training path: every ``training.*`` lever means the same in train, kfold and sweep; metric
directions come from Keras's metric objects; run folders of the previous release still resume."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from conftest import only_run
from test_kfold import DIABETES as KFOLD_DIABETES

FIXTURES = Path(__file__).parent / "fixtures" / "runs_v0_1_0"

DIABETES = KFOLD_DIABETES.replace("k: 3,", "k: 2,")  # 2 folds: the step counts below are for them


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_kfold_honours_tensorboard_the_input_pipeline_and_steps_per_execution(cli, write_config, tmp_path):
    path = write_config(DIABETES)
    runs = tmp_path / "runs"
    # 353 rows / 2 folds: 176 rows trained per fold, 6 batches of 32: 3 divides the epoch's 6 steps.
    result = cli("kfold", path, "--runs-dir", runs, "--quiet", "--set", "training.tensorboard=true",
                 "--set", "training.input_pipeline=arrays", "--set", "training.steps_per_execution=3")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    metrics = _metrics(run)
    assert metrics["input_pipeline"] == "arrays" and metrics["steps_per_execution"] == 3
    assert "jit_compile" in metrics
    for fold in (1, 2):
        events = list((run / f"folds/fold_{fold}/tensorboard").rglob("events.out.tfevents.*"))
        assert events, f"fold {fold} wrote no TensorBoard events"
    # The same levers on tf_data: steps per execution is the largest divisor of the epoch's steps up to it.
    runs2 = tmp_path / "runs2"
    result = cli("kfold", path, "--runs-dir", runs2, "--quiet", "--set", "training.steps_per_execution=4",
                 "--set", "training.input_pipeline=tf_data")
    assert result.exit_code == 0, result.output
    metrics = _metrics(only_run(runs2))
    assert metrics["input_pipeline"] == "tf_data" and metrics["steps_per_execution"] == 3  # 6 steps: 3 <= 4


def test_train_records_what_ran(cli, write_config, tmp_path):
    path = write_config(DIABETES)
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "--quiet", "--set", "training.input_pipeline=arrays",
                 "--set", "training.steps_per_execution=2", "--set", "training.jit_compile=false")
    assert result.exit_code == 0, result.output
    metrics = _metrics(only_run(tmp_path / "runs"))
    assert (metrics["input_pipeline"], metrics["steps_per_execution"], metrics["jit_compile"]) == ("arrays", 2, False)
    assert metrics["directions"] == {"loss": "min", "mae": "min"}


R2 = DIABETES.replace("metrics: [mae]", "metrics: [mae, {R2Score: {}}]").replace(
    "training: {epochs: 3, batch_size: 32}", "training: {epochs: 8, batch_size: 32}")


def test_a_higher_is_better_monitor_picks_the_highest_epoch_in_kfold(cli, write_config, tmp_path):
    path = write_config(R2)
    runs = tmp_path / "runs"
    result = cli("kfold", path, "--runs-dir", runs, "--quiet", "--set", "kfold.monitor=val_r2_score")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    with open(run / "history_mean.csv", newline="") as handle:
        curve = [float(row["val_r2_score_mean"]) for row in csv.DictReader(handle)]
    best = json.loads((run / "kfold.json").read_text())["best"]
    assert curve[-1] > curve[0], "R² rises as the model learns"
    assert best["epoch"] == int(np.argmax(curve)) + 1 and best["direction"] == "max"
    assert _metrics(run)["directions"]["r2_score"] == "max"


def test_a_higher_is_better_metric_ranks_highest_first_in_a_sweep(cli, write_config, tmp_path):
    path = write_config(R2.replace("epochs: 8", "epochs: 3"))
    runs = tmp_path / "runs"
    result = cli("sweep", path, "--runs-dir", runs, "--quiet", "--set", "training.validation_split=0.2",
                 "--metric", "val_r2_score", "--grid", "optimizer.learning_rate=0.0001,0.01")
    assert result.exit_code == 0, result.output
    record = json.loads(next(runs.glob("*_sweep/sweep.json")).read_text())
    assert record["direction"] == "max"
    values = {t["index"]: t["metrics"]["validation"]["r2_score"] for t in record["trials"]}
    assert values[record["ranking"][0]] == max(values.values())
    assert values[record["ranking"][0]] > values[record["ranking"][1]]


def test_a_monitor_whose_direction_nothing_tells_is_refused_naming_mode(cli, write_config, tmp_path):
    path = write_config(DIABETES.replace("metrics: [mae]", "metrics: [mae, {FalsePositives: {name: fp}}]"))
    runs = tmp_path / "runs"
    result = cli("kfold", path, "--runs-dir", runs, "--set", "kfold.monitor=val_fp")
    assert result.exit_code == 2, result.output
    assert "kfold.mode" in result.output and "Traceback" not in result.output
    result = cli("sweep", path, "--runs-dir", runs, "--set", "training.validation_split=0.2",
                 "--metric", "val_fp", "--grid", "seed=1,2")
    assert result.exit_code == 2 and "sweep.mode" in result.output
    assert not runs.exists() or not any(runs.iterdir())
    # Said by the user, it is taken.
    result = cli("kfold", path, "--runs-dir", runs, "--quiet", "--set", "kfold.monitor=val_fp",
                 "--set", "kfold.mode=min")
    assert result.exit_code == 0, result.output
    assert json.loads((only_run(runs) / "kfold.json").read_text())["best"]["direction"] == "min"


def test_an_interrupted_run_of_the_previous_release_resumes(cli, tmp_path):
    source = FIXTURES / "20261201T082852Z_digits"
    before = _metrics(source)
    assert before["status"] == "interrupted" and before["checkpoint_epoch"] > 0, "the fixture is a stopped run"
    run = tmp_path / "runs" / source.name
    shutil.copytree(source, run)
    # A shorter run than the fixture's 2000 epochs, for the test's time: resumed as the config says.
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 2000", "epochs: 40"))
    result = cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    after = _metrics(run)
    assert after["status"] == "completed" and after["epochs_run"] == 40
    with open(run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 41)), "the history goes on from the checkpoint"
    assert not (run / "checkpoint.keras").exists() and (run / "model.keras").is_file()
    assert json.loads((run / "env.json").read_text())["resumed"][0]["at_epoch"] == before["checkpoint_epoch"]

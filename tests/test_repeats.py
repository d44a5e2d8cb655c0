"""Repeated seeds: --seeds on train, kfold and sweep; the group id; the figures over the repeats."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnlab.config import config_from_text
from nnlab.errors import ConfigError
from nnlab.repeats import parse_seeds

from conftest import REPO

DIGITS = """
name: tiny_digits
dataset: {name: digits, preprocessing: {scale: 16}}
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dropout: {rate: 0.2}
    - Dense: {units: 10, activation: softmax}
optimizer: {name: adam, learning_rate: 0.01}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 2, batch_size: 64, validation_split: 0.2}
kfold: {k: 2, monitor: val_accuracy}
"""


def test_seeds_are_a_count_from_the_configs_seed_or_a_list():
    assert parse_seeds("3", 7) == [7, 8, 9]
    assert parse_seeds("0,1,7", 3) == [0, 1, 7]
    for bad, says in (("0", "1 to 1000"), ("1001", "1 to 1000"), ("-1,2", "0 to"), ("1,1", "given twice"),
                      ("three", "number of repeats"), (",".join(map(str, range(1001))), "at most 1000")):
        with pytest.raises(ConfigError, match=says):
            parse_seeds(bad, 0)


def test_the_group_id_ignores_the_seed_only_and_is_the_same_in_another_process(tmp_path):
    config = config_from_text(DIGITS, "a.yaml")
    assert config.group_id() == config.with_overrides(["seed=99"]).group_id()
    assert config.group_id() != config.with_overrides(["training.epochs=3"]).group_id()
    assert config.group_id() != config.with_overrides(["model.layers.0.Dense.units=9"]).group_id()
    path = tmp_path / "a.yaml"
    path.write_text(DIGITS)
    code = f"from nnlab.config import load_config; print(load_config({str(path)!r}).group_id())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert other.stdout.strip() == config_from_text(DIGITS, str(path)).group_id(), other.stderr


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_train_with_seeds_writes_a_folder_per_seed_and_one_summary(cli, write_config, tmp_path):
    from scipy import stats

    path = write_config(DIGITS)
    runs = tmp_path / "runs"
    result = cli("train", path, "--runs-dir", runs, "--seeds", "3")
    assert result.exit_code == 0, result.output
    folders = sorted(p for p in runs.iterdir() if p.is_dir())
    assert len(folders) == 3
    metrics = [_metrics(f) for f in folders]
    assert [m["repeat"] for m in metrics] == [0, 1, 2] and len({m["group"] for m in metrics}) == 1
    seeds = [yaml.safe_load((f / "config.yaml").read_text())["seed"] for f in folders]
    assert seeds == [0, 1, 2]
    accuracies = [m["test"]["accuracy"] for m in metrics]
    assert len(set(accuracies)) > 1, "the seeds changed the runs"
    mean, std = np.mean(accuracies), np.std(accuracies, ddof=1)
    low, high = stats.t.interval(0.95, 2, loc=mean, scale=std / math.sqrt(3))
    row = next(line for line in result.output.splitlines() if "test_accuracy" in line)
    assert f"{mean:.4f} ± {std:.4f}" in row and f"{low:.4f} to {high:.4f}" in row and row.rstrip(" │").endswith("3")
    assert result.output.count("over the repeats") == 1, "one summary, not three"


def test_kfold_with_seeds(cli, write_config, tmp_path):
    path = write_config(DIGITS)
    runs = tmp_path / "runs"
    result = cli("kfold", path, "--runs-dir", runs, "--seeds", "0,5", "--quiet")
    assert result.exit_code == 0, result.output
    folders = [Path(line) for line in result.output.split()]
    assert len(folders) == 2 and all(f.name.endswith("_kfold") for f in folders)
    metrics = [_metrics(f) for f in folders]
    assert [m["repeat"] for m in metrics] == [0, 1] and metrics[0]["group"] == metrics[1]["group"]
    assert metrics[0]["validation"] != metrics[1]["validation"]


def test_a_sweep_with_seeds_ranks_its_trials_by_their_mean(cli, write_config, tmp_path):
    path = write_config(DIGITS)
    runs = tmp_path / "runs"
    result = cli("sweep", path, "--runs-dir", runs, "--seeds", "2", "--metric", "val_accuracy",
                 "--grid", "model.layers.0.Dense.units=4,32")
    assert result.exit_code == 0, result.output
    record = json.loads(next(runs.glob("*_sweep/sweep.json")).read_text())
    assert len(record["trials"]) == 4 and {(t["index"], t["repeat"]) for t in record["trials"]} == {
        (0, 0), (0, 1), (1, 0), (1, 1)}
    stats_by_trial = {s["trial"]: s for s in record["trial_stats"]}
    for trial, s in stats_by_trial.items():
        folders = [Path(f) for f in s["folders"]]
        values = [_metrics(f)["validation"]["accuracy"] for f in folders]
        assert [_metrics(f)["trial"] for f in folders] == [trial, trial]
        assert s["n"] == 2 and s["values"] == values and s["mean"] == pytest.approx(np.mean(values))
        assert s["std"] == pytest.approx(np.std(values, ddof=1))
    means = [stats_by_trial[t]["mean"] for t in record["ranking"]]
    assert means == sorted(means, reverse=True), "accuracy: the highest mean first"
    assert "ranked by their mean val_accuracy" in result.output
    summary = next(runs.glob("*_sweep/summary.md")).read_text()
    assert "mean ± std" in summary and "2/2 completed" in summary
    # The grouped compare of the trial folders says what the sweep says.
    grouped = cli("compare", runs, "--group-by", "model.layers.0.Dense.units", "--columns", "val_accuracy",
                  "--format", "json")
    assert grouped.exit_code == 0, grouped.output
    rows = json.loads(grouped.stdout)
    by_units = {r["model.layers.0.Dense.units"]: r for r in rows}
    for trial, s in stats_by_trial.items():
        units = record["trials"][[t["index"] for t in record["trials"]].index(trial)]["params"][
            "model.layers.0.Dense.units"]
        figures = by_units[units]["val_accuracy"]
        assert figures["n"] == 2 and figures["mean"] == pytest.approx(s["mean"])
        assert figures["ci_low"] == pytest.approx(s["ci_low"]) and figures["ci_high"] == pytest.approx(s["ci_high"])


def test_seeds_and_resume_do_not_mix(cli, tmp_path):
    result = cli("train", "--resume", tmp_path, "--seeds", "3")
    assert result.exit_code == 2 and "--seeds" in result.output

"""``nnlab sweep``: expanding the space, validating every trial first, and running trials anywhere."""

from __future__ import annotations

import json
import signal
import sys

import numpy as np
import pytest

from nnlab.config import config_from_text
from nnlab.errors import ConfigError
from nnlab.executors import LocalExecutor, ProcessExecutor
from nnlab.interrupts import Interrupted
from nnlab import sweep

from conftest import SPIRAL

BASE = SPIRAL.replace("epochs: 5, batch_size: full", "epochs: 4, batch_size: 32")
GRID = {"optimizer.learning_rate": [0.1, 1.0],
        "model.layers": [[{"Dense": {"units": 3, "activation": "softmax"}}],
                         [{"Dense": {"units": 8, "activation": "tanh"}}, {"Dense": {"units": 3, "activation": "softmax"}}]]}


def test_grid_options_parse_yaml_values_and_keep_brackets_whole():
    assert sweep.parse_grid_option("model.layers.1.Dense.units=16,32,64") == ("model.layers.1.Dense.units", [16, 32, 64])
    key, values = sweep.parse_grid_option("model.layers=[Dense: {units: 3}],[Dense: {units: 8}, Dense: {units: 3}]")
    assert key == "model.layers" and len(values) == 2 and len(values[1]) == 2
    assert sweep.parse_grid_option("loss=mse,binary_crossentropy")[1] == ["mse", "binary_crossentropy"]
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        sweep.parse_grid_option("model.layers")


def test_grid_expansion_covers_every_combination_with_list_positions_and_subtrees():
    base = config_from_text(SPIRAL, "exp.yaml")
    points = sweep.expand({**GRID, "model.layers.0.Dense.units": [3]})
    assert len(points) == 4
    trials = sweep.build_trials(base, sweep.expand(GRID))
    assert [t.config.optimizer.options["learning_rate"] for t in trials] == [0.1, 0.1, 1.0, 1.0]
    assert [len(t.config.model.layers) for t in trials] == [1, 2, 1, 2]
    listed = sweep.build_trials(base, sweep.expand({"model.layers.0.Dense.units": [4, 64]}))
    assert [t.config.model.layers[0]["Dense"]["units"] for t in listed] == [4, 64]


def test_random_expansion_is_seeded_and_respects_distributions():
    space = {"optimizer.learning_rate": "loguniform(1e-4, 1e-1)", "model.layers.0.Dense.units": "randint(4, 8)",
             "model.layers.0.Dense.activation": "choice(relu, tanh)", "seed": "uniform(0, 1)"}
    a = sweep.expand({}, space, 50, seed=3)
    assert a == sweep.expand({}, space, 50, seed=3) and a != sweep.expand({}, space, 50, seed=4)
    lr = np.array([p["optimizer.learning_rate"] for p in a])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    assert {p["model.layers.0.Dense.units"] for p in a} <= set(range(4, 9))
    assert {p["model.layers.0.Dense.activation"] for p in a} == {"relu", "tanh"}
    with_grid = sweep.expand({"loss": ["mse", "mae"]}, {"seed": "randint(0, 9)"}, 3)
    assert len(with_grid) == 6
    with pytest.raises(ConfigError, match="distribution"):
        sweep.expand({}, {"seed": "normal(0, 1)"}, 1)


def test_every_trial_is_validated_before_any_starts(tmp_path):
    base = config_from_text(SPIRAL, "exp.yaml")
    with pytest.raises(ConfigError) as info:
        sweep.build_trials(base, sweep.expand({"training.epochs": [3, 0]}))
    assert "trial 1 (training.epochs=0)" in str(info.value)
    with pytest.raises(ConfigError, match="trial 1 .*did you mean 'relu'"):
        sweep.build_trials(base, sweep.expand({"model.layers.0.Dense.activation": ["tanh", "rellu"]}))


def test_sweep_section_in_the_config_declares_the_space():
    config = config_from_text(SPIRAL + "sweep:\n  grid: {optimizer.learning_rate: [0.1, 1.0]}\n  metric: test_accuracy\n",
                              "exp.yaml")
    grid, random, n = sweep.space_of(config, [], [], None)
    assert grid == {"optimizer.learning_rate": [0.1, 1.0]} and not random and n == 0
    trials = sweep.build_trials(config, sweep.expand(grid))
    assert all(t.config.sweep is None for t in trials), "a trial is a normal config"


def run(tmp_path, executor, name):
    base = config_from_text(BASE, "exp.yaml")
    trials = sweep.build_trials(base, sweep.expand(GRID))
    with executor:
        return sweep.run_sweep(base, trials, executor, runs_dir=tmp_path / name, metric="test_accuracy")


def per_trial(result):
    return {o.index: o.metrics["test"] for o in result.outcomes}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    return run(tmp, LocalExecutor(), "runs")


def test_local_sweep_writes_tagged_trials_and_a_ranked_summary(local_sweep):
    result = local_sweep
    assert result.status == "completed" and result.exit_code == 0 and len(result.outcomes) == 4
    record = json.loads((result.run.path / "sweep.json").read_text())
    assert record["metric"] == "test_accuracy" and record["direction"] == "max"
    assert [t["status"] for t in record["trials"]] == ["completed"] * 4
    values = [o.metrics["test"]["accuracy"] for o in result.outcomes]
    assert values == sorted(values, reverse=True), "ranked best first"
    for outcome in result.outcomes:
        metrics = json.loads((outcome.folder and (__import__("pathlib").Path(outcome.folder) / "metrics.json")).read_text())
        assert metrics["sweep_id"] == result.run.run_id and metrics["trial_params"] == outcome.params
        assert metrics["kind"] == "train"
    assert (result.run.path / "summary.md").read_text().count("| completed |") == 4
    assert json.loads((result.run.path / "metrics.json").read_text())["kind"] == "sweep"


def test_process_pool_gives_the_same_metrics_as_local(local_sweep, tmp_path):
    pooled = run(tmp_path, ProcessExecutor(2), "runs")
    assert per_trial(pooled) == per_trial(local_sweep)
    for outcome in pooled.outcomes:  # the driver wrote complete run folders from what workers returned
        folder = __import__("pathlib").Path(outcome.folder)
        assert (folder / "model.keras").is_file() and (folder / "plots" / "loss.png").is_file()
        assert json.loads((folder / "metrics.json").read_text())["run_id"] == folder.name


def test_a_failing_trial_is_recorded_and_the_others_go_on(tmp_path, write_config):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.random.default_rng(0).normal(size=(40, 2)).astype("float32"), y=np.arange(40) % 3)
    (tmp_path / "broken.npz").write_bytes(good.read_bytes()[:50])
    base = config_from_text(BASE.replace("{name: spiral, points_per_class: 50, classes: 3}",
                                         f"{{name: npz, path: {good}}}"), "exp.yaml")
    trials = sweep.build_trials(base, sweep.expand({"dataset.path": [str(good), str(tmp_path / "broken.npz"),
                                                                      str(good)]}))
    result = sweep.run_sweep(base, trials, LocalExecutor(), runs_dir=tmp_path / "runs")
    statuses = {o.index: o.status for o in result.outcomes}
    assert statuses == {0: "completed", 1: "failed", 2: "completed"}
    failed = next(o for o in result.outcomes if o.index == 1)
    assert "broken.npz" in failed.message
    assert result.status == "completed with failures" and result.exit_code == 1


def test_ctrl_c_stops_the_sweep_and_says_which_trials_finished(tmp_path):
    base = config_from_text(BASE, "exp.yaml")
    trials = sweep.build_trials(base, sweep.expand(GRID))

    def stop_after_first(outcome, total):
        raise Interrupted(signal.SIGINT)

    result = sweep.run_sweep(base, trials, LocalExecutor(), runs_dir=tmp_path / "runs", report=stop_after_first)
    assert result.status == "interrupted" and result.exit_code == 130
    record = json.loads((result.run.path / "sweep.json").read_text())
    assert [t["status"] for t in record["trials"]] == ["completed", "not run", "not run", "not run"]


def test_sweep_command_end_to_end(cli, write_config, tmp_path):
    path = write_config(BASE + "sweep:\n  grid: {optimizer.learning_rate: [0.1, 1.0]}\n")
    result = cli("sweep", path, "--runs-dir", tmp_path / "runs", "--set", "training.epochs=1")
    assert result.exit_code == 0, result.output
    assert "ranked by test_loss" in result.output and "sweep folder" in result.output
    assert len(list((tmp_path / "runs").iterdir())) == 3
    refused = cli("sweep", path, "--grid", "training.epochs=1,-1", "--runs-dir", tmp_path / "bad")
    assert refused.exit_code == 2 and "trial 1" in refused.stderr and not (tmp_path / "bad").exists()


def test_ray_executor_without_ray_says_how_to_install(monkeypatch, cli, write_config, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    path = write_config(BASE)
    result = cli("sweep", path, "--grid", "seed=0,1", "--executor", "ray", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "pip install 'nnlab[ray]'" in result.stderr


@pytest.mark.ray
def test_local_ray_cluster_gives_the_same_metrics_as_local(local_sweep, tmp_path):
    """A real Ray instance (ray.init with 2 CPUs, on the loopback interface), started here and shut down."""
    pytest.importorskip("ray")
    from nnlab.executors import RayExecutor

    result = run(tmp_path, RayExecutor(None, cpus=1, num_cpus=2), "runs")
    assert result.status == "completed"
    assert per_trial(result) == per_trial(local_sweep)
    import ray

    assert not ray.is_initialized(), "the executor shuts down the instance it started"

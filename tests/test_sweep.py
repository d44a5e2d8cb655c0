"""``nnlab sweep``: expanding the space, validating every trial first, and running trials anywhere."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from nnlab.config import config_from_text
from nnlab.errors import ConfigError
from nnlab.executors import LocalExecutor, ProcessExecutor
from nnlab.interrupts import Interrupted
from nnlab.sweeps import ranking, space as spaces, run as sweep
from nnlab.views import style

from conftest import SPIRAL

BASE = SPIRAL.replace("epochs: 5, batch_size: full", "epochs: 4, batch_size: 32, validation_split: 0.2")
GRID = {"optimizer.learning_rate": [0.1, 1.0],
        "model.layers": [[{"Dense": {"units": 3, "activation": "softmax"}}],
                         [{"Dense": {"units": 8, "activation": "tanh"}}, {"Dense": {"units": 3, "activation": "softmax"}}]]}


def test_grid_options_parse_yaml_values_and_keep_brackets_whole():
    assert spaces.parse_grid_option("model.layers.1.Dense.units=16,32,64") == ("model.layers.1.Dense.units", [16, 32, 64])
    key, values = spaces.parse_grid_option("model.layers=[Dense: {units: 3}],[Dense: {units: 8}, Dense: {units: 3}]")
    assert key == "model.layers" and len(values) == 2 and len(values[1]) == 2
    assert spaces.parse_grid_option("loss=mse,binary_crossentropy")[1] == ["mse", "binary_crossentropy"]
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        spaces.parse_grid_option("model.layers")


def test_grid_expansion_covers_every_combination_with_list_positions_and_subtrees():
    base = config_from_text(SPIRAL, "exp.yaml")
    points = spaces.expand({**GRID, "model.layers.0.Dense.units": [3]})
    assert len(points) == 4
    trials = spaces.build_trials(base, spaces.expand(GRID))
    assert [t.config.optimizer.options["learning_rate"] for t in trials] == [0.1, 0.1, 1.0, 1.0]
    assert [len(t.config.model.layers) for t in trials] == [1, 2, 1, 2]
    listed = spaces.build_trials(base, spaces.expand({"model.layers.0.Dense.units": [4, 64]}))
    assert [t.config.model.layers[0]["Dense"]["units"] for t in listed] == [4, 64]


def test_random_expansion_is_seeded_and_respects_distributions():
    space = {"optimizer.learning_rate": "loguniform(1e-4, 1e-1)", "model.layers.0.Dense.units": "randint(4, 8)",
             "model.layers.0.Dense.activation": "choice(relu, tanh)", "seed": "uniform(0, 1)"}
    a = spaces.expand({}, space, 50, seed=3)
    assert a == spaces.expand({}, space, 50, seed=3) and a != spaces.expand({}, space, 50, seed=4)
    lr = np.array([p["optimizer.learning_rate"] for p in a])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    assert {p["model.layers.0.Dense.units"] for p in a} <= set(range(4, 9))
    assert {p["model.layers.0.Dense.activation"] for p in a} == {"relu", "tanh"}
    with_grid = spaces.expand({"loss": ["mse", "mae"]}, {"seed": "randint(0, 9)"}, 3)
    assert len(with_grid) == 6
    with pytest.raises(ConfigError, match="distribution"):
        spaces.expand({}, {"seed": "normal(0, 1)"}, 1)


def test_every_trial_is_validated_before_any_starts(tmp_path):
    base = config_from_text(SPIRAL, "exp.yaml")
    with pytest.raises(ConfigError) as info:
        spaces.build_trials(base, spaces.expand({"training.epochs": [3, 0]}))
    assert "trial 1 (training.epochs=0)" in str(info.value)
    with pytest.raises(ConfigError, match="trial 1 .*did you mean 'relu'"):
        spaces.build_trials(base, spaces.expand({"model.layers.0.Dense.activation": ["tanh", "rellu"]}))


def test_sweep_section_in_the_config_declares_the_space():
    config = config_from_text(SPIRAL + "sweep:\n  grid: {optimizer.learning_rate: [0.1, 1.0]}\n  metric: test_accuracy\n",
                              "exp.yaml")
    space = spaces.space_of(config, [], [], None)
    assert space.grid == {"optimizer.learning_rate": [0.1, 1.0]} and not space.random and space.n_random == 0
    trials = spaces.build_trials(config, space.points(config.seed))
    assert all(t.config.sweep is None for t in trials), "a trial is a normal config"
    command_line = spaces.space_of(config, ["seed=1,2,3"], [], None)
    assert command_line.grid == {"seed": [1, 2, 3]}, "the command line's space replaces the config's"


VARIANTS = """
sweep:
  variants:
    - {}
    - {model.layers: [Dense: {units: 3, activation: softmax}]}
    - {model.layers.0.Dense.units: 64, model.layers.0.Dense.activation: tanh}
    - {loss: {SparseCategoricalCrossentropy: {from_logits: false}}}
  grid: {optimizer.learning_rate: [0.1, 1.0]}
"""


def test_variants_change_one_thing_at_a_time_times_the_grid():
    config = config_from_text(SPIRAL + VARIANTS, "exp.yaml")
    space = spaces.space_of(config, [], [], None)
    points = space.points(config.seed)
    assert len(points) == 8 and points[0] == {"optimizer.learning_rate": 0.1}
    assert points[3] == {"model.layers": [{"Dense": {"units": 3, "activation": "softmax"}}],
                         "optimizer.learning_rate": 1.0}
    trials = spaces.build_trials(config, points)
    assert [len(t.config.model.layers) for t in trials] == [2, 2, 1, 1, 2, 2, 2, 2]
    assert trials[4].config.model.layers[0]["Dense"] == {"units": 64, "activation": "tanh",
                                                         "kernel_regularizer": {"L2": {"l2": 0.0005}}}
    assert trials[4].config.model.layers[1] == config.model.layers[1], "the rest stays as it is"
    assert [t.config.loss for t in trials[6:]] == [{"SparseCategoricalCrossentropy": {"from_logits": False}}] * 2
    assert spaces.expand({}, variants=[{}, {"seed": 1}]) == [{}, {"seed": 1}]


def test_variants_are_validated_like_the_grid():
    bad_key = config_from_text(SPIRAL + "sweep:\n  variants: [{}, {model.layrs.0.Dense.units: 4}]\n", "exp.yaml")
    with pytest.raises(ConfigError, match=r"trial 1 \(model.layrs.0.Dense.units=4\)"):
        spaces.build_trials(bad_key, spaces.space_of(bad_key, [], [], None).points(0))
    out_of_range = config_from_text(SPIRAL + "sweep:\n  variants: [{model.layers.7.Dense.units: 4}]\n", "exp.yaml")
    with pytest.raises(ConfigError, match="list of 2 items; '7' is not a position in it"):
        spaces.build_trials(out_of_range, spaces.space_of(out_of_range, [], [], None).points(0))
    both = config_from_text(SPIRAL + "sweep:\n  variants: [{seed: 1}]\n  grid: {seed: [2, 3]}\n", "exp.yaml")
    with pytest.raises(ConfigError, match="also a grid key") as info:
        spaces.space_of(both, [], [], None)
    assert info.value.line is not None and "sweep.variants.0.seed" in str(info.value)
    not_a_mapping = "sweep:\n  variants: [loss=mse]\n"
    with pytest.raises(ConfigError, match="sweep.variants.0"):
        config_from_text(SPIRAL + not_a_mapping, "exp.yaml")
    empty = config_from_text(SPIRAL + "sweep:\n  grid: {seed: []}\n", "exp.yaml")
    with pytest.raises(ConfigError, match="sweep.grid.seed.*no values"):
        spaces.space_of(empty, [], [], None)


def test_the_lesson_sweeps_expand_to_the_lessons_variants():
    from nnlab.config import load_config

    def trials_of(name):
        config = load_config(name)
        return config, spaces.build_trials(config, spaces.space_of(config, [], [], None).points(config.seed))

    imdb, trials = trials_of("imdb_variants")
    assert ranking.sweep_metric(imdb, None) == "val_accuracy", "val_loss cannot compare mse with cross-entropy"
    changed = [[key for key in ("model", "loss") if getattr(t.config, key) != getattr(imdb, key)] for t in trials]
    assert changed == [[], ["model"], ["model"], ["model"], ["model"], ["loss"], ["model"]], "one change each"
    assert [len(t.config.model.layers) - 1 for t in trials] == [2, 1, 3, 2, 2, 2, 2]
    assert [t.config.model.layers[0]["Dense"] for t in trials[3:5]] == [{"units": 32, "activation": "relu"},
                                                                       {"units": 64, "activation": "relu"}]
    assert trials[6].config.model.layers[1]["Dense"]["activation"] == "tanh"
    reuters, trials = trials_of("reuters_widths")
    assert [t.config.model.layers[1]["Dense"]["units"] for t in trials] == [4, 8, 16, 32, 64, 128]
    bottleneck = load_config("reuters_bottleneck").to_dict()
    assert {**trials[0].config.to_dict(), "name": "reuters_bottleneck"} == bottleneck
    fashion, trials = trials_of("fashion_mnist_structures")
    assert [len(t.config.model.layers) for t in trials] == [1, 2, 3, 4, 3]
    assert trials[2].config.model == load_config("fashion_mnist_mlp").model


def test_summaries_show_one_column_per_key_or_the_changes_of_each_variant():
    grid = [sweep.TrialOutcome(0, {"seed": 1, "loss": "mse"}), sweep.TrialOutcome(1, {"seed": 2, "loss": "mae"})]
    headers, cells = style.param_columns(grid)
    assert headers == ["seed", "loss"] and cells(grid[1].params) == ["2", "mae"]
    variants = [sweep.TrialOutcome(0, {}), sweep.TrialOutcome(1, {"loss": "mse", "seed": 3})]
    headers, cells = style.param_columns(variants)
    assert headers == ["changes"] and cells(variants[1].params) == ["loss=mse; seed=3"]
    assert "config as it is" in cells({})[0]
    table = ranking.summary_markdown(variants, "val_loss", kfold=True)
    assert "| 2 | 1 | loss=mse; seed=3 | - | pending | - |" in table and "mean over the folds" in table


def run(tmp_path, executor, name, **options):
    base = config_from_text(BASE, "exp.yaml")
    trials = spaces.build_trials(base, spaces.expand(GRID))
    return sweep.run_sweep(base, trials, executor, runs_dir=tmp_path / name, metric="test_accuracy", **options)


def per_trial(result):
    return {o.index: o.metrics["test"] for o in result.outcomes}


# k-fold trials: 4 trials of 2 folds of 2 epochs.
KFOLD_BASE = BASE.replace("epochs: 4", "epochs: 2") + "kfold: {k: 2}\n"


def run_kfold_sweep(tmp_path, executor, name):
    base = config_from_text(KFOLD_BASE, "exp.yaml")
    trials = spaces.build_trials(base, spaces.expand(GRID))
    return sweep.run_sweep(base, trials, executor, runs_dir=tmp_path / name, kfold=True)


def per_kfold_trial(result):
    return {o.index: (o.metrics["validation"], o.metrics["validation_std"], o.metrics["best"]) for o in result.outcomes}


class Counting:
    """Counts the tasks an executor is handed, by function name."""

    def submit(self, fn, args):
        counts = self.__dict__.setdefault("submitted", {})
        counts[fn.__name__] = counts.get(fn.__name__, 0) + 1
        return super().submit(fn, args)


class CountingPool(Counting, ProcessExecutor):
    pass


class OutOfProcessHere(Counting, LocalExecutor):
    """The code path of a pool or Ray (folds submitted ahead as run_fold tasks), run in this process."""

    in_process = False

    def __init__(self):
        self.submitted, self.cancelled, self.tasks = {}, [], []

    def submit(self, fn, args):
        self.tasks.append(args)
        return super().submit(fn, args)

    def cancel(self, handles):
        self.cancelled.extend(handles)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    return run(tmp, LocalExecutor(), "runs")


@pytest.fixture(scope="module")
def local_kfold_sweep(tmp_path_factory):
    """A k-fold sweep through the command line, declared in the config (sweep.kfold: true)."""
    from typer.testing import CliRunner

    from nnlab.cli import app

    tmp = tmp_path_factory.mktemp("local_kfold")
    path = tmp / "exp.yaml"
    path.write_text(KFOLD_BASE + "sweep:\n  kfold: true\n  grid:\n" +
                    "".join(f"    {key}: {json.dumps(values)}\n" for key, values in GRID.items()))
    result = CliRunner().invoke(app, ["sweep", str(path), "--runs-dir", str(tmp / "runs"), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def pool():
    with CountingPool(2) as executor:
        yield executor


def test_local_sweep_writes_tagged_trials_and_a_ranked_summary(local_sweep):
    result = local_sweep
    assert result.status == "completed" and result.exit_code == 0 and len(result.outcomes) == 4
    record = json.loads((result.run.path / "sweep.json").read_text())
    assert record["metric"] == "test_accuracy" and record["direction"] == "max"
    assert [t["status"] for t in record["trials"]] == ["completed"] * 4
    values = [o.metrics["test"]["accuracy"] for o in result.outcomes]
    assert values == sorted(values, reverse=True), "ranked best first"
    for outcome in result.outcomes:
        metrics = json.loads((Path(outcome.folder) / "metrics.json").read_text())
        assert metrics["sweep_id"] == result.run.run_id and metrics["trial_params"] == outcome.params
        assert metrics["kind"] == "train"
    assert (result.run.path / "summary.md").read_text().count("| completed |") == 4
    assert json.loads((result.run.path / "metrics.json").read_text())["kind"] == "sweep"


def test_process_pool_gives_the_same_metrics_as_local(local_sweep, pool, tmp_path):
    pooled = run(tmp_path, pool, "runs")
    assert per_trial(pooled) == per_trial(local_sweep)
    for outcome in pooled.outcomes:  # the driver wrote complete run folders from what workers returned
        folder = Path(outcome.folder)
        assert (folder / "model.keras").is_file() and (folder / "plots" / "loss.png").is_file()
        assert json.loads((folder / "metrics.json").read_text())["run_id"] == folder.name


def test_kfold_trials_are_tagged_kfold_runs_ranked_by_the_mean_over_folds(local_kfold_sweep):
    record = local_kfold_sweep
    assert record["trial_kind"] == "kfold" and record["metric"] == "val_loss" and record["direction"] == "min"
    assert [t["status"] for t in record["trials"]] == ["completed"] * 4
    by_index = {t["index"]: t for t in record["trials"]}
    ranked_values = []
    for index in record["ranking"]:
        trial = by_index[index]
        folder = Path(trial["folder"])
        assert folder.name.endswith("_kfold") and (folder / "folds" / "fold_2" / "history.csv").is_file()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["kind"] == "kfold" and metrics["k"] == 2
        assert metrics["sweep_id"] == record["sweep_id"] and metrics["trial"] == index
        assert metrics["trial_params"] == trial["params"]
        folds = json.loads((folder / "kfold.json").read_text())["folds"]
        mean = np.mean([f["validation"]["loss"] for f in folds])
        assert trial["metrics"]["validation"]["loss"] == pytest.approx(mean), "the mean over the folds"
        ranked_values.append(mean)
    assert ranked_values == sorted(ranked_values), "lowest mean val_loss first"
    summary = (Path(by_index[0]["folder"]).parent / f"{record['sweep_id']}" / "summary.md").read_text()
    assert "mean over the folds" in summary


def test_kfold_trials_submit_every_fold_ahead_and_a_refused_trial_does_not_stop_the_others(
        local_kfold_sweep, tmp_path):
    base = config_from_text(KFOLD_BASE, "exp.yaml")
    first = {k: v[0] for k, v in GRID.items()}  # trial 0 of the local k-fold sweep
    trials = spaces.build_trials(base, [first, {**first, "kfold.k": 500}, first])
    executor = OutOfProcessHere()
    result = sweep.run_sweep(base, trials, executor, runs_dir=tmp_path / "runs", kfold=True)
    assert executor.submitted == {"run_fold": 2 + 500 + 2}, "run_kfold took the folds submitted ahead"
    assert len(executor.cancelled) >= 500, "the refused trial's folds were given up"
    statuses = {o.index: o.status for o in result.outcomes}
    assert statuses == {0: "completed", 1: "failed", 2: "completed"} and result.exit_code == 1
    assert "500 folds need at least 500 training rows" in next(o for o in result.outcomes if o.index == 1).message
    local = next(t for t in local_kfold_sweep["trials"] if t["index"] == 0)["metrics"]
    for outcome in result.outcomes:
        if outcome.status == "completed":  # folds run by run_fold give what folds trained in-process give
            assert outcome.metrics["validation"] == local["validation"] and outcome.metrics["best"] == local["best"]


def test_kfold_trials_on_a_process_pool_give_the_same_metrics(local_kfold_sweep, pool, tmp_path):
    before = getattr(pool, "submitted", {}).get("run_fold", 0)  # the pool may have run nothing yet
    pooled = run_kfold_sweep(tmp_path, pool, "runs")
    assert pool.submitted["run_fold"] - before == 4 * 2, "each fold once, on the pool"
    local = {t["index"]: (t["metrics"]["validation"], t["metrics"]["validation_std"], t["metrics"]["best"])
             for t in local_kfold_sweep["trials"]}
    assert per_kfold_trial(pooled) == local
    assert [o.index for o in pooled.outcomes] == local_kfold_sweep["ranking"]


def test_a_failing_trial_is_recorded_and_the_others_go_on(tmp_path, monkeypatch):
    # Data that cannot be read is refused before any trial (test_missing_data_is_refused_once_before_any_trial);
    # a trial can still fail while it trains.
    from nnlab.training import run as training

    original = training.train

    def fails_for_trial_1(config, **kwargs):
        if kwargs["tags"]["trial"] == 1:
            raise RuntimeError("the GPU fell off the bus")
        return original(config, **kwargs)

    monkeypatch.setattr(training, "train", fails_for_trial_1)
    base = config_from_text(BASE, "exp.yaml")
    trials = spaces.build_trials(base, spaces.expand({"seed": [0, 1, 2]}))
    result = sweep.run_sweep(base, trials, LocalExecutor(), runs_dir=tmp_path / "runs")
    statuses = {o.index: o.status for o in result.outcomes}
    assert statuses == {0: "completed", 1: "failed", 2: "completed"}
    failed = next(o for o in result.outcomes if o.index == 1)
    assert "the GPU fell off the bus" in failed.message
    assert result.status == "completed with failures" and result.exit_code == 1


def test_workers_get_absolute_data_paths_and_return_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a worker does not start here: relative paths would not reach it
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "d.npz", x=np.random.default_rng(0).normal(size=(30, 2)).astype("float32"),
             y=np.arange(30) % 3)
    base = config_from_text(BASE.replace("{name: spiral, points_per_class: 50, classes: 3}",
                                         "{name: npz, path: data/d.npz}").replace("epochs: 4", "epochs: 1"), "exp.yaml")
    executor = OutOfProcessHere()
    result = sweep.run_sweep(base, spaces.build_trials(base, [{}]), executor, runs_dir="runs", data_dir="data")
    (config_data, _, data_dir, tags), = executor.tasks
    assert config_data["dataset"]["path"] == str(tmp_path / "data" / "d.npz") and data_dir == str(tmp_path / "data")
    assert executor.submitted == {"train_trial_remote": 1} and tags["trial"] == 0
    folder = Path(result.outcomes[0].folder).resolve()
    assert result.status == "completed" and folder.parent == tmp_path / "runs" and (folder / "model.keras").is_file()


@pytest.mark.parametrize("kfold", [False, True])
def test_ctrl_c_stops_the_sweep_and_says_which_trials_finished(tmp_path, kfold):
    base = config_from_text(KFOLD_BASE if kfold else BASE, "exp.yaml")
    trials = spaces.build_trials(base, spaces.expand(GRID))

    def stop_after_first(outcome, total):
        raise Interrupted(signal.SIGINT)

    result = sweep.run_sweep(base, trials, LocalExecutor(), runs_dir=tmp_path / "runs", report=stop_after_first,
                             kfold=kfold)
    assert result.status == "interrupted" and result.exit_code == 130
    record = json.loads((result.run.path / "sweep.json").read_text())
    assert [t["status"] for t in record["trials"]] == ["completed", "not run", "not run", "not run"]
    assert len(list((tmp_path / "runs").iterdir())) == 2, "the sweep folder and the one trial that ran"


def test_sweep_command_end_to_end(cli, write_config, tmp_path):
    path = write_config(BASE + "sweep:\n  grid: {optimizer.learning_rate: [0.1, 1.0]}\n")
    result = cli("sweep", path, "--runs-dir", tmp_path / "runs", "--set", "training.epochs=1")
    assert result.exit_code == 0, result.output
    assert "ranked by val_loss" in result.output and "sweep folder" in result.output
    assert len(list((tmp_path / "runs").iterdir())) == 3
    refused = cli("sweep", path, "--grid", "training.epochs=1,-1", "--runs-dir", tmp_path / "bad")
    assert refused.exit_code == 2 and "trial 1" in refused.stderr and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("options, says", [
    (["--grid", "model.layers.0.Dense.units"], "expected KEY=V1,V2,... with at least one value"),
    (["--grid", "seed="], "expected KEY=V1,V2,... with at least one value"),
    (["--grid", "seed=,"], "expected KEY=V1,V2,... with at least one value"),
    (["--grid", "seed=1", "--grid", "seed=2"], "'seed' is given twice"),
    (["--grid", "model.layrs.0.Dense.units=4,8"], "trial 0 (model.layrs.0.Dense.units=4) is not a valid config: "),
    (["--grid", "model.layers.5.Dense.units=4,8"], "'model.layers' is a list of 2 items; '5' is not a position"),
    (["--random", "2", "--param", "seed=normal(0, 1)"], "expected KEY=uniform(a, b), loguniform(a, b), randint"),
    (["--random", "2", "--param", "seed=uniform(a, b)"], "uniform takes two numbers"),
    (["--random", "2"], "--random N needs at least one --param"),
    (["--param", "seed=randint(0, 9)"], "random parameters need --random N"),
    (["--grid", "seed=1,2", "--address", "auto"], "--address names a Ray cluster; add --executor ray"),
    (["--grid", "seed=1,2", "--executor", "ray", "--address", "auto", "--jobs", "2"], "--jobs sets the CPUs"),
    (["--grid", "seed=1,2", "--executor", "dask"], "unknown executor 'dask' (accepted: local, ray)"),
    (["--grid", "seed=1,2", "--kfold", "--metric", "test_accuracy"], "k-fold trials report validation metrics only"),
    (["--grid", "seed=1,2", "--metric", "best_val_accuracy"], "the trials record the best epoch of val_loss"),
])
def test_bad_sweep_input_is_one_message_and_no_folder(cli, write_config, tmp_path, options, says):
    path = write_config(BASE)
    result = cli("sweep", path, *options, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("error:") == 1 and says in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_an_address_where_nothing_listens_is_refused_at_once(cli, write_config, tmp_path):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        result = cli("sweep", write_config(BASE), "--grid", "seed=1,2", "--executor", "ray", "--address", address,
                     "--runs-dir", tmp_path / "runs")
        assert result.exit_code == 2 and f"nothing answers at 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_ray_executor_without_ray_says_how_to_install(monkeypatch, cli, write_config, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    path = write_config(BASE)
    result = cli("sweep", path, "--grid", "seed=0,1", "--executor", "ray", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "pip install 'nnlab[ray]'" in result.stderr


@pytest.mark.ray
def test_local_ray_cluster_gives_the_same_metrics_as_local(local_sweep, local_kfold_sweep, tmp_path):
    """A real Ray instance on this machine (ray.init with 2 CPUs), started here and shut down:
    4 train trials as Ray tasks, then 4 k-fold trials whose folds are Ray tasks (kfold.run_fold)."""
    pytest.importorskip("ray")
    from nnlab.executors import RayExecutor

    with RayExecutor(None, cpus=1, num_cpus=2) as executor:
        trained = run(tmp_path, executor, "runs")
        folded = run_kfold_sweep(tmp_path, executor, "kfold_runs")
    assert trained.status == "completed" and per_trial(trained) == per_trial(local_sweep)
    local = {t["index"]: (t["metrics"]["validation"], t["metrics"]["validation_std"], t["metrics"]["best"])
             for t in local_kfold_sweep["trials"]}
    assert folded.status == "completed" and per_kfold_trial(folded) == local
    import ray

    assert not ray.is_initialized(), "the executor shuts down the instance it started"


def test_without_validation_rows_a_sweep_is_refused_unless_a_test_metric_is_named(cli, write_config, tmp_path):
    no_validation = write_config(BASE.replace(", validation_split: 0.2", ""))
    runs = tmp_path / "runs"
    refused = cli("sweep", no_validation, "--runs-dir", runs, "--grid", "seed=1,2")
    assert refused.exit_code == 2 and "validation_split" in refused.output and "--kfold" in refused.output
    assert not runs.exists()
    on_purpose = cli("sweep", no_validation, "--runs-dir", runs, "--grid", "seed=1,2", "--metric", "test_loss",
                     "--set", "training.epochs=1")
    assert on_purpose.exit_code == 0, on_purpose.output
    assert "ranked on the test set as asked" in " ".join(on_purpose.output.split())
    summary = next(runs.glob("*_sweep/summary.md")).read_text()
    assert "optimistic" in summary
    # The progress lines and the ranked table number the trials alike.
    assert "trial 0 " in on_purpose.output and "trial 1 " in on_purpose.output and "[2/2]" in on_purpose.output


def test_missing_data_is_refused_once_before_any_trial(cli, write_config, tmp_path):
    path = write_config(BASE.replace("{name: spiral, points_per_class: 50, classes: 3}",
                                     "{name: npz, path: nowhere/missing.npz}"))
    runs = tmp_path / "runs"
    result = cli("sweep", path, "--runs-dir", runs, "--grid", "seed=1,2,3")
    assert result.exit_code == 2, result.output
    assert result.output.count("missing.npz") == 1 and "Traceback" not in result.output
    assert not runs.exists() or not any(runs.iterdir())


# -- size: a space too large is refused at once, a large one validates fast ---------------------------------

HUNDRED = ",".join(str(i) for i in range(1, 101))


@pytest.mark.parametrize("options, says", [
    (["--grid", f"seed={HUNDRED}", "--grid", f"training.epochs={HUNDRED}",
      "--grid", f"model.layers.0.Dense.units={HUNDRED}"], "the sweep has 1,000,000 trials, more than the limit of 10,000"),
    (["--random", "20000", "--param", "seed=randint(0, 9)"], "the sweep has 20,000 trials"),
    (["--grid", f"seed={HUNDRED}", "--grid", f"training.epochs={HUNDRED}", "--seeds", "2"],
     "the sweep has 10,000 trials x 2 seeds = 20,000 runs, more than the limit of 10,000"),
    (["--grid", f"seed={HUNDRED}", "--random", "101", "--param", "training.epochs=randint(1, 9)"],
     "the sweep has 10,100 trials"),
    (["--grid", "seed=1,2,3", "--max-trials", "2"], "the sweep has 3 trials, more than the limit of 2"),
    (["--grid", f"seed={HUNDRED}", "--grid", f"training.epochs={HUNDRED}", "--max-trials", "9999"],
     "give --max-trials 10000 to run them all"),
])
def test_a_sweep_above_the_limit_is_refused_before_any_trial_is_expanded_or_validated(
        cli, write_config, tmp_path, monkeypatch, options, says):
    def never(*args, **kwargs):
        raise AssertionError("expanded or validated a sweep that is refused for its size")

    monkeypatch.setattr(spaces, "expand", never)
    monkeypatch.setattr(spaces, "build_trials", never)
    result = cli("sweep", write_config(BASE), *options, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("error:") == 1 and says in result.stderr and "--max-trials" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()


def test_a_config_sweep_section_of_a_million_trials_is_refused_the_same_way(cli, write_config, tmp_path):
    values = "[" + HUNDRED + "]"
    path = write_config(BASE + f"sweep:\n  variants: [{{}}, {{loss: mse}}]\n  grid:\n    seed: {values}\n"
                               f"    training.epochs: {values}\n    model.layers.0.Dense.units: {values}\n")
    result = cli("sweep", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "the sweep has 2,000,000 trials" in result.stderr
    zero = cli("sweep", path, "--max-trials", "0", "--runs-dir", tmp_path / "runs")
    assert zero.exit_code == 2 and "--max-trials" in zero.output


def test_the_size_is_counted_without_expanding_and_said_before_validation(cli, write_config, tmp_path):
    spaces_to_count = [spaces.Space(), spaces.Space(grid={"seed": [1, 2, 3], "loss": ["mse", "mae"]}),
                       spaces.Space(variants=[{}, {"seed": 1}], grid={"loss": ["mse", "mae"]}),
                       spaces.Space(random={"seed": "randint(0, 9)"}, n_random=4),
                       spaces.Space(variants=[{}], grid={"loss": ["mse"]}, random={"seed": "randint(0, 9)"}, n_random=3),
                       spaces.Space(grid={"seed": []})]
    for space in spaces_to_count:
        assert space.size() == len(space.points(0)), space
    assert spaces.check_size(spaces.Space(grid={"seed": list(range(10_001))}), None, 10_001) == "10,001 trials"
    with pytest.raises(Exception, match="10,001 trials, more than the limit of 10,000"):
        spaces.check_size(spaces.Space(grid={"seed": list(range(10_001))}))
    # A sweep that passes says its size first; the refusal of its last trial shows every trial was validated.
    result = cli("sweep", write_config(BASE), "--grid", "training.epochs=" + ",".join(map(str, range(1, 137))) + ",0",
                 "--grid", "seed=" + ",".join(map(str, range(73))), "--max-trials", "10001",
                 "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "sweep of 10,001 trials; validating" in result.stdout
    assert "trial 9928 (training.epochs=0, seed=0)" in result.stderr and not (tmp_path / "runs").exists()


def test_each_distinct_keras_part_is_built_once_however_many_trials_share_it(monkeypatch):
    from nnlab import keras_objects

    built = {"layer": 0, "optimizer": 0, "loss": 0, "metric": 0}
    for name in built:
        original = getattr(keras_objects, name)

        def counting(*args, _name=name, _original=original):
            built[_name] += 1
            return _original(*args)

        monkeypatch.setattr(keras_objects, name, counting)
    base = config_from_text(SPIRAL, "exp.yaml")
    grid = {"seed": list(range(10)), "optimizer.learning_rate": [0.1 * i for i in range(1, 11)],
            "model.layers.0.Dense.units": list(range(1, 11))}
    trials = spaces.build_trials(base, spaces.expand(grid))
    assert len(trials) == 1000 and trials[-1].config.model.layers[0]["Dense"]["units"] == 10
    assert built == {"layer": 10 + 1, "optimizer": 10, "loss": 1, "metric": 1}
    with pytest.raises(ConfigError, match=r"trial 3 \(model.layers.0.Dense.activation=\"rellu\"\)"):
        spaces.build_trials(base, spaces.expand({"model.layers.0.Dense.activation": ["tanh", "relu", "tanh", "rellu"]}))

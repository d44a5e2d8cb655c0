"""The Python API (``import nnlab``): the commands' own path, their messages as exceptions, and what it returns.

The notebooks that use it run for real in tests/test_notebooks.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import nnlab
from conftest import REPO, SPIRAL
from nnlab.errors import ConfigError, NnlabError, RunNotFound
from test_kfold import DIABETES

PUBLIC = ("train", "kfold", "sweep", "runs", "run", "report", "predict")


def _error(result) -> str:
    """The message ``nnlab`` printed: what follows ``error:`` on stderr (exit code 2)."""
    assert result.exit_code == 2, result.output
    assert "error: " in result.stderr, result.stderr
    return result.stderr[result.stderr.index("error: ") + len("error: "):].rstrip("\n")


@pytest.fixture(scope="module")
def spiral_runs(tmp_path_factory):
    """Two spiral runs trained through the API (learning rates 1.0 and 0.1) in one runs folder."""
    root = tmp_path_factory.mktemp("api") / "runs"
    config = yaml.safe_load(SPIRAL)
    first = nnlab.train(config, runs_dir=root, progress=False)
    second = nnlab.train(config, set={"optimizer.learning_rate": 0.1}, runs_dir=root, progress=False)
    return root, first, second


# -- the surface ------------------------------------------------------------------------------------

def test_the_api_is_listed_documented_and_imported_lazily():
    assert set(PUBLIC) <= set(nnlab.__all__) and {"Run", "RunGroup"} <= set(nnlab.__all__)
    for name in PUBLIC:
        doc = getattr(nnlab, name).__doc__
        assert doc and "Args:" in doc and "Returns:" in doc, name
    assert set(nnlab.__all__) <= set(dir(nnlab))
    with pytest.raises(AttributeError):
        nnlab.no_such_function


def test_import_nnlab_and_reaching_the_api_import_nothing_heavy():
    probe = ("import sys, nnlab\n"
             "names = [getattr(nnlab, n) for n in nnlab.__all__]\n"
             "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'pandas', 'numpy', "
             "'matplotlib', 'sklearn', 'IPython', 'ipykernel'})\n"
             "print('heavy:', heavy)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout


def test_a_table_without_pandas_names_what_installs_it(monkeypatch, spiral_runs):
    root, _, _ = spiral_runs
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(NnlabError, match="pandas is not installed: pip install pandas"):
        nnlab.runs(root)


# -- one path: the command line calls the API's functions ------------------------------------------------

@pytest.mark.parametrize("command, function", [("train", "train"), ("kfold", "kfold")])
def test_the_commands_go_through_the_api(cli, monkeypatch, command, function):
    from nnlab.api import core

    def refuse(*args, **kwargs):
        raise NnlabError("the shared path was taken", source="probe")

    monkeypatch.setattr(core, function, refuse)
    assert _error(cli(command, "spiral_mlp")) == "probe: the shared path was taken"


def test_a_dict_config_and_the_same_yaml_on_the_command_line_give_identical_runs(cli, write_config, tmp_path):
    path = write_config(SPIRAL)
    result = cli("train", path, "--runs-dir", tmp_path / "cli", "--quiet", "--set", "training.epochs=4")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip())
    run = nnlab.train(yaml.safe_load(SPIRAL), set={"training.epochs": 4}, runs_dir=tmp_path / "api", progress=False)
    on_cli = json.loads((folder / "metrics.json").read_text())
    for key in ("status", "train", "test", "baseline", "best", "params", "epochs_run", "group", "directions"):
        assert run.metrics[key] == on_cli[key], key
    assert (run.path / "history.csv").read_text() == (folder / "history.csv").read_text()


@pytest.mark.parametrize("overrides, api_set", [
    (["--set", "training.epoch=3"], {"training.epoch": 3}),
    (["--set", "model.layers.1.Dense.units=1"], ["model.layers.1.Dense.units=1"]),
])
def test_api_errors_carry_the_message_the_command_prints(cli, write_config, tmp_path, overrides, api_set):
    path = write_config(SPIRAL)
    printed = _error(cli("train", path, "--runs-dir", tmp_path / "runs", *overrides))
    with pytest.raises(ConfigError) as raised:
        nnlab.train(str(path), set=api_set, runs_dir=tmp_path / "runs", progress=False)
    assert str(raised.value) == printed
    assert not (tmp_path / "runs").exists()  # refused before any run folder


def test_a_bad_dict_config_is_refused_as_a_file_is(cli, write_config, tmp_path):
    bad = SPIRAL.replace("epochs: 5", "epoch: 5")
    printed = _error(cli("train", write_config(bad), "--runs-dir", tmp_path / "runs"))
    with pytest.raises(ConfigError) as raised:
        nnlab.train(yaml.safe_load(bad), runs_dir=tmp_path / "runs", progress=False)
    # The same problem and words; only where it is differs (the file and line, or <dict>).
    assert str(raised.value).split(": ", 1)[1] == printed.split(": ", 1)[1]
    assert str(raised.value).startswith("<dict>: ")
    with pytest.raises(NnlabError, match="a config is a YAML file, the name of one, or a dict"):
        nnlab.train(42, progress=False)


def test_unknown_runs_and_config_names_are_refused_with_the_commands_message(cli, tmp_path, spiral_runs):
    root, _, _ = spiral_runs
    with pytest.raises(RunNotFound) as raised:
        nnlab.run("20990101", runs_dir=root)
    assert str(raised.value) == _error(cli("show", "20990101", "--runs-dir", root))
    with pytest.raises(ConfigError) as raised:
        nnlab.train("spiral_mpl", progress=False)
    assert str(raised.value) == _error(cli("train", "spiral_mpl"))


# -- what comes back ------------------------------------------------------------------------------------

def test_train_returns_the_run_with_its_metrics_history_config_model_and_plots(spiral_runs):
    _, run, _ = spiral_runs
    assert isinstance(run, nnlab.Run) and run.status == "completed" and run.kind == "train"
    assert run.metrics["test"]["accuracy"] == run.summary["test_accuracy"]
    history = run.history
    assert list(history.index) == [1, 2, 3, 4, 5] and history.index.name == "epoch"
    assert {"loss", "accuracy"} <= set(history.columns)
    assert run.config["model"]["layers"][0]["Dense"]["units"] == 32
    assert [p.name for p in run.plots][0] == "loss.png" and all(p.is_file() for p in run.plots)
    assert run.model().count_params() == run.metrics["params"]
    assert nnlab.run(run.path) == run and nnlab.run("last", runs_dir=run.path.parent) != run
    html = run._repr_html_()
    assert "completed" in html and "0.3333 (majority_class_accuracy)" in html
    assert html.count("<img") == len(run.plots) and "decision_boundary.png" in html


def test_seeds_give_a_run_group_with_the_mean_and_std_table(tmp_path):
    group = nnlab.train(yaml.safe_load(SPIRAL), set={"training.epochs": 2}, seeds=[3, 4], runs_dir=tmp_path,
                        progress=False)
    assert isinstance(group, nnlab.RunGroup) and len(group) == 2 and group.seeds == [3, 4]
    assert [r.metrics["repeat"] for r in group] == [0, 1] and group.statuses == ["completed", "completed"]
    table = group.table
    row = table.loc["test_accuracy"]
    values = [r.metrics["test"]["accuracy"] for r in group]
    assert row["n"] == 2 and math.isclose(row["mean"], sum(values) / 2)
    html = group._repr_html_()
    assert "mean ± std" in html and "95% CI of the mean" in html and "<img" in html


def test_runs_is_the_compare_table_with_the_same_numbers(cli, spiral_runs):
    root, first, second = spiral_runs
    printed = json.loads(cli("compare", root, "--format", "json").stdout)
    frame = nnlab.runs(root)
    assert list(frame["run_id"]) == [first.run_id, second.run_id]
    records = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
               for row in frame.to_dict(orient="records")]
    assert records == printed
    # Config keys as columns, on request; a filter and a sort as compare takes them.
    chosen = nnlab.runs(root, filter="optimizer.learning_rate<0.5", config=["optimizer.learning_rate"])
    assert list(chosen["run_id"]) == [second.run_id] and list(chosen["optimizer.learning_rate"]) == [0.1]
    every = nnlab.runs(first, second, config=True)
    assert "training.epochs" in every.columns and list(every["training.epochs"]) == [5, 5]


def test_runs_group_by_gives_one_row_per_group_as_compare_does(cli, spiral_runs):
    root, _, _ = spiral_runs
    printed = json.loads(cli("compare", root, "--group-by", "optimizer.learning_rate", "--format", "json").stdout)
    frame = nnlab.runs(root, group_by="optimizer.learning_rate")
    assert len(frame) == len(printed) == 2
    for row, item in zip(frame.to_dict(orient="records"), printed):
        assert row["optimizer.learning_rate"] == item["optimizer.learning_rate"] and row["n"] == item["n"] == 1
        assert row["test_accuracy_mean"] == item["test_accuracy"]["mean"]
    with pytest.raises(NnlabError, match="add group_by=KEY"):
        nnlab.runs(root, versus=1.0)


def test_kfold_returns_its_run_with_the_folds_and_mean_curves(tmp_path):
    run = nnlab.kfold(yaml.safe_load(DIABETES), k=2, epochs=2, final=True, runs_dir=tmp_path, progress=False)
    assert run.kind == "kfold" and run.status == "completed" and len(run.kfold["folds"]) == 2
    assert {"val_loss_mean", "val_loss_std"} <= set(run.history.columns) and "val_loss" not in run.history
    html = run._repr_html_()
    assert "validation metrics at the end of each fold" in html and "final model" in html
    assert "(linear_regression_mae)" in html


def test_predict_takes_arrays_and_test_examples(spiral_runs):
    _, run, _ = spiral_runs
    predictions = nnlab.predict(run, [[0.1, 0.2], [-0.4, 0.3]])
    assert len(predictions) == 2 and predictions.probabilities.shape == (2, 3)
    assert predictions.classes == [p["predicted"] for p in predictions.to_dicts()]
    assert "x, an array of shape (2, 2)" in predictions._repr_html_()
    assert nnlab.predict(run.run_id, index=0, runs_dir=run.path.parent)[0].true is not None
    with pytest.raises(NnlabError) as raised:
        nnlab.predict(run, [1.0, 2.0, 3.0])
    assert str(raised.value).startswith("x: input of shape (3,) does not fit this run's model")


def test_sweep_and_report_return_their_folders(tmp_path):
    sweep = nnlab.sweep(yaml.safe_load(SPIRAL), set={"training.epochs": 2, "training.validation_split": 0.2},
                        grid={"model.layers.0.Dense.units": [4, 8]}, runs_dir=tmp_path / "runs", progress=False)
    assert sweep.kind == "sweep" and len(sweep.trials) == 2
    assert {t.config["model"]["layers"][0]["Dense"]["units"] for t in sweep.trials} == {4, 8}
    assert "trials ranked by" in sweep._repr_html_()
    report = nnlab.report(runs_dir=tmp_path / "runs", output=tmp_path / "page.html")
    assert report.path == tmp_path / "page.html" and report.path.is_file()
    assert report._repr_html_().startswith("<iframe srcdoc=")

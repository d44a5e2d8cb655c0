"""``nnlab compare``: the table, sorting, filters, formats, two runs side by side, curves,
broken folders, the index, and that it never imports TensorFlow."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nnlab.cli import app
from nnlab.metric_names import higher_is_better
from nnlab.store.format import INDEX
from nnlab.store.reading import collect, flatten, resolve_run
from nnlab.views.compare import Filter

from conftest import SPIRAL, assert_imports_nothing_heavy

PNG = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def make_run(root: Path, stamp: str, name: str, *, task: str = "multiclass", status: str = "completed",
             test: dict | None = None, validation: dict | None = None, lr: float = 0.01, units: int = 16,
             history: dict | None = None, kind: str = "train", **extra) -> Path:
    """A run folder as ``nnlab train`` writes it (metrics.json, config.yaml, history.csv)."""
    folder = root / f"{stamp}_{name}"
    folder.mkdir(parents=True)
    regression = task == "regression"
    metric = "mae" if regression else "accuracy"
    test = test if test is not None else {"loss": 0.5, metric: 0.8}
    validation = validation if validation is not None else {"loss": 0.6, metric: 0.75}
    metrics = {
        "run_id": folder.name, "name": name, "kind": kind, "dataset": "boston" if regression else "digits",
        "task": task, "status": status, "message": None,
        "started": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}+00:00",
        "finished": None, "wall_time_s": 12.5, "epochs_planned": 10, "epochs_run": 10, "params": 1234,
        "train": {"loss": 0.4, metric: 0.9}, "validation": validation, "test": test,
        "best": {"monitor": "val_loss", "epoch": 7, "value": validation.get("loss", 0.6)},
        "baseline": ({"name": "linear_regression", "linear_regression_mae": 3.5, "linear_regression_mse": 20.0}
                     if regression else
                     {"name": "majority_class", "majority_class_accuracy": 0.1, "shuffled_labels_accuracy": 0.1}),
        **extra,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    config = {"name": name, "seed": 0, "dataset": {"name": metrics["dataset"]},
              "model": {"layers": [{"Dense": {"units": units, "activation": "relu"}}, {"Dense": {"units": 10}}]},
              "optimizer": {"name": "adam", "learning_rate": lr}, "loss": "mse",
              "training": {"epochs": 10, "batch_size": 32, "shuffle": True}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    history = history or {"loss": [1.0, 0.8, 0.6], "val_loss": [1.1, 0.9, 0.7]}
    lines = ["epoch," + ",".join(history)]
    lines += [f"{i + 1}," + ",".join(str(v[i]) for v in history.values()) for i in range(len(next(iter(history.values()))))]
    (folder / "history.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def runs(tmp_path) -> Path:
    """A runs root: three classifiers, one regressor, and every kind of broken folder."""
    root = tmp_path / "runs"
    make_run(root, "20250101T100000Z", "alpha", test={"loss": 0.40, "accuracy": 0.91}, lr=0.01)
    make_run(root, "20250101T110000Z", "beta", test={"loss": 0.20, "accuracy": 0.95},
             validation={"loss": 0.30, "accuracy": 0.93}, lr=0.001, units=64)
    make_run(root, "20250101T120000Z", "gamma", test={"loss": 0.70, "accuracy": 0.72},
             validation={"loss": 0.80, "accuracy": 0.70}, status="failed", lr=0.1)
    make_run(root, "20250101T130000Z", "housing", task="regression", test={"loss": 9.0, "mae": 2.4})
    # A running run: metrics.json says running, history.csv has 3 epochs so far.
    running = make_run(root, "20250101T140000Z", "delta", status="running", test={}, validation={})
    metrics = json.loads((running / "metrics.json").read_text())
    metrics.pop("best")
    (running / "metrics.json").write_text(json.dumps(metrics))
    broken = root / "20250101T150000Z_truncated"
    broken.mkdir()
    (broken / "metrics.json").write_text('{"run_id": "20250101T150000Z_truncated", "stat')
    incomplete = root / "20250101T160000Z_nometrics"
    incomplete.mkdir()
    (incomplete / "config.yaml").write_text("name: nometrics\n")
    (root / "notes").mkdir()  # a stray directory
    (root / "README.txt").write_text("not a run")  # a stray file: ignored
    return root


def table_rows(output: str) -> dict[str, str]:
    """Lines of a table by the run id they start with."""
    return {line.split()[0]: line for line in output.splitlines() if line[:8].isdigit()}


def test_table_lists_every_folder_with_adapted_columns_and_warnings(runs):
    result = invoke("compare", runs)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert set(rows) == {"20250101T100000Z_alpha", "20250101T110000Z_beta", "20250101T120000Z_gamma",
                         "20250101T130000Z_housing", "20250101T140000Z_delta", "20250101T150000Z_truncated",
                         "20250101T160000Z_nometrics"}
    assert "notes" in result.stdout and "README" not in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("run_id"))
    # accuracy for the classifiers, MAE for the regressor, the best validation loss, the baselines
    for column in ("test_accuracy", "test_mae", "best_val_loss", "best_epoch", "baseline_accuracy", "baseline_mae",
                   "status", "duration_s", "params"):
        assert column in header, column
    assert "0.9500" in rows["20250101T110000Z_beta"] and "2.4000" in rows["20250101T130000Z_housing"]
    assert "3.5000" in rows["20250101T130000Z_housing"]  # LinearRegression's MAE beside it
    assert "failed" in rows["20250101T120000Z_gamma"]
    assert "running" in rows["20250101T140000Z_delta"] and "3/10" in rows["20250101T140000Z_delta"]
    assert "unreadable" in rows["20250101T150000Z_truncated"]
    assert "incomplete" in rows["20250101T160000Z_nometrics"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("truncated" in w and "not valid JSON" in w for w in warnings)
    assert any("nometrics" in w and "no metrics.json" in w for w in warnings)
    assert any("notes" in w and "not a run folder" in w for w in warnings)
    assert any("delta" in w and "running (3 of 10 epochs" in w for w in warnings)
    assert all(len(w.splitlines()) == 1 for w in warnings)


def test_sort_direction_is_inferred_and_can_be_forced(runs):
    def order(*args):
        result = invoke("compare", runs, "--format", "csv", "--columns", "run_id", *args)
        assert result.exit_code == 0, result.output
        return [r["run_id"].split("_", 1)[-1] for r in csv.DictReader(io.StringIO(result.stdout))]

    assert order("--sort", "test_accuracy")[:3] == ["beta", "alpha", "gamma"]  # accuracy: highest first
    assert order("--sort", "test_loss")[:4] == ["beta", "alpha", "gamma", "housing"]  # loss: lowest first
    assert order("--sort", "test_accuracy", "--asc")[:3] == ["gamma", "alpha", "beta"]
    assert order("--sort", "test_loss", "--desc")[:4] == ["housing", "gamma", "alpha", "beta"]
    # runs without the key go last whichever the direction
    assert set(order("--sort", "test_accuracy")[3:]) == {"housing", "delta", "truncated", "nometrics", "notes"}
    assert order("--sort", "optimizer.learning_rate", "--filter", "status=completed") == ["beta", "alpha", "housing"]
    assert higher_is_better("val_accuracy") and higher_is_better("test_auc")
    assert not higher_is_better("val_loss") and not higher_is_better("test_mae") and not higher_is_better("error")


def test_filters_on_metrics_fields_and_config_keys(runs):
    def names(*filters):
        args = [a for f in filters for a in ("--filter", f)]
        result = invoke("compare", runs, "--format", "json", *args)
        assert result.exit_code == 0, result.output
        return sorted(r["name"] for r in json.loads(result.stdout))

    assert names("status=completed") == ["alpha", "beta", "housing"]
    assert names("test_accuracy>0.85") == ["alpha", "beta"]
    assert names("test_accuracy>=0.91", "test_accuracy<0.95") == ["alpha"]
    assert names("test_accuracy<=0.72") == ["gamma"]
    assert names("dataset=boston") == ["housing"]
    assert names("optimizer.learning_rate=0.001") == ["beta"]
    assert names("model.layers.0.Dense.units>16") == ["beta"]
    assert names("name=al*") == ["alpha"]
    assert names("status!=completed", "kind=train") == ["delta", "gamma"]
    assert names("validation_loss<0.5") == ["beta"]  # validation_ is accepted for val_
    assert names("started>2025-01-01T12") == ["delta", "gamma", "housing"]


def test_bad_filters_and_keys_are_refused_with_a_suggestion(runs):
    result = invoke("compare", runs, "--filter", "test_acuracy>0.5")
    assert result.exit_code == 2
    assert "--filter" in result.stderr and "did you mean 'test_accuracy'" in result.stderr
    assert "Traceback" not in result.output
    result = invoke("compare", runs, "--filter", "accuracy")
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr
    result = invoke("compare", runs, "--sort", "nonsense")
    assert result.exit_code == 2 and "--sort" in result.stderr
    result = invoke("compare", runs, "--format", "xml")
    assert result.exit_code == 2 and "table, csv, json, markdown" in result.stderr
    result = invoke("compare", runs / "nope")
    assert result.exit_code == 2 and "no run" in result.stderr
    result = invoke("compare", "--runs-dir", runs / "nope")
    assert result.exit_code == 2 and "no runs folder" in result.stderr
    result = invoke("compare", runs, "--last", "0")
    assert result.exit_code == 2 and "--last" in result.stderr
    result = invoke("compare", runs, "--plot", runs.parent / "curves.pdf")
    assert result.exit_code == 2 and "ending in .png" in result.stderr
    assert result.stdout == ""  # refused before anything is listed


def test_last_and_columns(runs):
    result = invoke("compare", runs, "--last", "2", "--filter", "status=completed", "--format", "csv",
                    "--columns", "run_id,test_loss,optimizer.learning_rate")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["run_id"] for r in rows] == ["20250101T110000Z_beta", "20250101T130000Z_housing"]
    assert list(rows[0]) == ["run_id", "test_loss", "optimizer.learning_rate"]
    assert float(rows[0]["test_loss"]) == 0.2 and float(rows[0]["optimizer.learning_rate"]) == 0.001


def test_every_format_parses(runs):
    result = invoke("compare", runs, "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 8
    beta = next(r for r in rows if r["name"] == "beta")
    assert float(beta["test_accuracy"]) == 0.95 and float(beta["duration_s"]) == 12.5 and beta["params"] == "1234"
    assert "warning" not in result.stdout  # warnings go to stderr, stdout stays parseable

    result = invoke("compare", runs, "--format", "json")
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 8
    beta = next(r for r in data if r["name"] == "beta")
    assert beta["test_accuracy"] == 0.95 and beta["best_epoch"] == 7 and beta["status"] == "completed"
    assert next(r for r in data if r["run_id"].endswith("truncated"))["status"] == "unreadable"

    result = invoke("compare", runs, "--format", "markdown", "--filter", "status=completed")
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("| run_id | name |") and lines[0].endswith("|")
    assert set(lines[1]) <= set("|-:") and lines[1].count("|") == lines[0].count("|")
    assert len(lines) == 2 + 3 and all(line.count("|") == lines[0].count("|") for line in lines[2:])


def test_two_runs_side_by_side(runs):
    a, b = runs / "20250101T100000Z_alpha", runs / "20250101T110000Z_beta"
    result = invoke("compare", a, b)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "config differences" in out and "metrics" in out
    diff = out[out.index("config differences"):out.index("metrics")]
    lines = {line.split()[0]: line.split()[1:] for line in diff.splitlines() if line.strip()[:1].isalpha()
             and len(line.split()) == 3}
    assert lines["optimizer.learning_rate"] == ["0.01", "0.001"]
    assert lines["model.layers.0.Dense.units"] == ["16", "64"]
    assert lines["name"] == ["alpha", "beta"]
    assert "seed" not in diff and "training.epochs" not in diff  # only the keys that differ
    side = out[out.index("metrics"):]
    test_line = next(line for line in side.splitlines() if line.strip().startswith("test_accuracy"))
    assert test_line.split()[1:] == ["0.9100", "0.9500", "+0.0400"]
    # run ids and prefixes work as well as paths
    by_id = invoke("compare", "20250101T100000Z_alpha", "20250101T110000Z_b", "--runs-dir", runs)
    assert by_id.exit_code == 0 and "optimizer.learning_rate" in by_id.stdout


def test_plot_overlays_learning_curves(runs, tmp_path):
    figure = tmp_path / "curves.png"
    result = invoke("compare", runs, "--filter", "kind=train", "--plot", figure, "--metric", "val_loss")
    assert result.exit_code == 0, result.output
    assert figure.read_bytes()[:8] == PNG and "val_loss curves" in result.stdout
    result = invoke("compare", runs, "--filter", "status=completed", "--plot", tmp_path / "x.png",
                    "--metric", "val_accuracy")
    assert result.exit_code == 2 and "val_loss" in result.stderr  # says which columns there are
    result = invoke("compare", runs, "--plot", tmp_path / "x.jpg")
    assert result.exit_code == 2 and ".png" in result.stderr


def test_index_is_used_and_stays_correct(runs):
    first = invoke("compare", runs, "--format", "json")
    index = runs / INDEX
    assert index.is_file()
    cached = json.loads(index.read_text())["folders"]
    assert "20250101T100000Z_alpha" in cached and "notes" not in cached
    # A run finishes: its metrics.json changes, and the listing shows the new status at once.
    delta = runs / "20250101T140000Z_delta" / "metrics.json"
    metrics = json.loads(delta.read_text())
    metrics.update(status="completed", test={"loss": 0.1, "accuracy": 0.99})
    delta.write_text(json.dumps(metrics))
    os.utime(delta, ns=(time.time_ns(), time.time_ns() + 10**9))  # even within one clock tick
    # A folder is deleted, another appears.
    (runs / "20250101T100000Z_alpha" / "metrics.json").unlink()
    (runs / "20250101T100000Z_alpha" / "config.yaml").unlink()
    (runs / "20250101T100000Z_alpha" / "history.csv").unlink()
    (runs / "20250101T100000Z_alpha").rmdir()
    make_run(runs, "20250102T000000Z", "epsilon", test={"loss": 0.3, "accuracy": 0.88})
    second = json.loads(invoke("compare", runs, "--format", "json").stdout)
    by_name = {r["run_id"].split("_", 1)[-1]: r for r in second}
    assert "alpha" not in by_name and by_name["epsilon"]["test_accuracy"] == 0.88
    assert by_name["delta"]["status"] == "completed" and by_name["delta"]["test_accuracy"] == 0.99
    assert len(second) == len(json.loads(first.stdout))
    assert "20250101T100000Z_alpha" not in json.loads(index.read_text())["folders"]
    # A damaged index is rebuilt, never trusted.
    index.write_text('{"version": 1, "folders": {"x"')
    third = json.loads(invoke("compare", runs, "--format", "json").stdout)
    assert third == second
    # Summaries from the index equal those read afresh.
    assert [r.fields for r in collect([runs]).runs] == [r.fields for r in collect([runs], use_index=False).runs]


def test_kfold_and_sweep_folders(tmp_path):
    root = tmp_path / "runs"
    kfold = root / "20250101T000000Z_boston_kfold"
    kfold.mkdir(parents=True)
    (kfold / "config.yaml").write_text("name: boston\n")
    # kfold.json as nnlab writes it: figures under the metrics' own names, the best epoch under best.
    (kfold / "kfold.json").write_text(json.dumps({"k": 4, "monitor": "val_mae",
                                                  "best": {"monitor": "val_mae", "epoch": 80, "value": 2.5},
                                                  "mean": {"mae": 2.5, "loss": 11.0}, "std": {"mae": 0.2}}))
    (kfold / "history_mean.csv").write_text("epoch,val_mae_mean,val_mae_std\n1,5.0,1.0\n2,3.0,0.5\n")
    (kfold / "metrics.json").write_text(json.dumps({"run_id": kfold.name, "name": "boston", "kind": "kfold",
                                                    "dataset": "boston_housing", "task": "regression",
                                                    "status": "completed", "test": {"loss": 8.0, "mae": 2.3}}))
    make_run(root, "20250101T010000Z", "trial", sweep_id="20250101T005959Z_grid_sweep", trial=1,
             trial_params={"optimizer.learning_rate": 0.01})
    result = invoke("compare", root, "--format", "json", "--columns", "all")
    assert result.exit_code == 0, result.output
    rows = {r["run_id"]: r for r in json.loads(result.stdout)}
    k = rows[kfold.name]
    assert k["kind"] == "kfold" and k["val_mae"] == 2.5 and k["best_epoch"] == 80 and k["test_mae"] == 2.3
    t = rows["20250101T010000Z_trial"]
    assert t["sweep_id"] == "20250101T005959Z_grid_sweep" and t["trial_params"] == {"optimizer.learning_rate": 0.01}
    figure = tmp_path / "kfold.png"
    result = invoke("compare", kfold, "--plot", figure, "--metric", "val_mae")
    assert result.exit_code == 0, result.output
    assert figure.read_bytes()[:8] == PNG
    result = invoke("show", kfold.name, "--runs-dir", root)  # the mean curve, per epoch, and the best epoch
    assert result.exit_code == 0, result.output
    assert "k-fold validation (k=4)" in result.stdout and "best epoch by mean val_mae: 80" in result.stdout
    assert "val_mae" in result.stdout and "3.0000 ± 0.5000" in result.stdout  # mean ± std in one cell


def test_resolve_run_forms(runs):
    assert resolve_run(str(runs / "20250101T110000Z_beta"), runs).name == "20250101T110000Z_beta"
    assert resolve_run("20250101T110000Z_beta", runs).name == "20250101T110000Z_beta"
    assert resolve_run("20250101T11", runs).name == "20250101T110000Z_beta"
    assert resolve_run("last", runs).name == "20250101T160000Z_nometrics"
    with pytest.raises(Exception, match="start of"):
        resolve_run("20250101T1", runs)
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": []}) == {"a.b.0": 1, "a.b.1.c": 2, "d": []}
    assert Filter.parse("test_accuracy >= 0.9") == Filter("test_accuracy", ">=", "0.9")


def test_real_runs_from_nnlab_train(trained_spiral):
    runs, folder = trained_spiral
    result = invoke("compare", runs, "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert row["run_id"] == folder.name and row["status"] == "completed" and row["epochs"] == 2
    assert row["test_accuracy"] == metrics["test"]["accuracy"]
    assert row["baseline_accuracy"] == metrics["baseline"]["majority_class_accuracy"]
    assert row["best_loss"] == metrics["best"]["value"]
    figure = runs.parent / "real.png"
    result = invoke("compare", runs, "--plot", figure)
    assert result.exit_code == 0 and figure.read_bytes()[:8] == PNG and "loss curves" in result.stdout


@pytest.fixture(scope="module")
def trained_spiral(tmp_path_factory):
    """One real, short ``nnlab train`` of the spiral config."""
    tmp = tmp_path_factory.mktemp("real")
    config = tmp / "spiral.yaml"
    config.write_text(SPIRAL)
    runs = tmp / "runs"
    result = invoke("train", config, "--runs-dir", runs, "--set", "training.epochs=2", "-q")
    assert result.exit_code == 0, result.output
    return runs, Path(result.stdout.strip())


def test_compare_never_imports_tensorflow(runs, tmp_path):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from nnlab.cli import app\n"
        f"r = CliRunner().invoke(app, ['compare', {str(runs)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(app, ['compare', {str(runs)!r}, '--filter', 'optimizer.name=adam', '--format', 'csv'])\n"
        "assert r.exit_code == 0, r.output\n"
    )
    assert_imports_nothing_heavy(code)


# -- a terminal 80 columns wide -----------------------------------------------------------------

def on_terminal(width: int, *args):
    """``nnlab compare ARGS`` as a terminal ``width`` columns wide shows it (escape codes removed)."""
    import re

    env = {"COLUMNS": str(width), "TTY_COMPATIBLE": "1", "NO_COLOR": "1", "FORCE_COLOR": None}
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    strip = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
    return strip.sub("", result.stdout), strip.sub("", result.stderr)


def test_table_keeps_the_columns_that_fit_and_names_the_rest(runs):
    piped = invoke("compare", runs)
    full_header = next(line for line in piped.stdout.splitlines() if line.startswith("run_id")).split()
    for width in (80, 160):
        out, err = on_terminal(width, "compare", runs)
        lines = out.splitlines()
        assert all(len(line.rstrip()) <= width for line in lines), out
        header = next(line for line in lines if line.startswith("run_id")).split()
        assert header[:1] == ["run_id"] and {"status", "test_accuracy", "test_mae"} <= set(header)
        assert "…" not in out  # nothing is cut: a column is shown whole or not at all
        rows = table_rows(out)
        assert "0.9500" in rows["20250101T110000Z_beta"] and "2.4000" in rows["20250101T130000Z_housing"]
        note = " ".join(line for line in err.splitlines() if not line.startswith("warning:"))
        hidden = len(full_header) - len(header)
        assert hidden > 0 and f"note: {hidden} more columns (" in note and "--columns run_id," in note
    out, _ = on_terminal(80, "compare", runs)
    # The run, its status and the test metrics first; the baselines (17 wide) no longer fit, kind does.
    header = next(line for line in out.splitlines() if line.startswith("run_id")).split()
    assert header == ["run_id", "kind", "status", "test_accuracy", "test_mae"]


def test_columns_given_are_all_shown_even_wider_than_the_terminal(runs):
    wanted = "run_id,name,kind,dataset,status,started,duration_s,test_accuracy,best_val_loss,baseline_accuracy,params"
    out, err = on_terminal(80, "compare", runs, "--columns", wanted)
    header = next(line for line in out.splitlines() if line.startswith("run_id")).split()
    assert header == wanted.split(",")
    assert "…" not in out and "note:" not in err
    assert "0.9500" in table_rows(out)["20250101T110000Z_beta"]
    assert max(len(line.rstrip()) for line in out.splitlines()) > 80  # wider, rather than numbers cut


def test_two_runs_left_by_filters_stay_a_table_with_columns(runs):
    two = ("--filter", "status=completed", "--last", "2")
    result = invoke("compare", runs, *two, "--columns", "run_id,test_accuracy")
    assert result.exit_code == 0, result.output
    assert "config differences" not in result.stdout and "difference" not in result.stdout
    assert len(table_rows(result.stdout)) == 2
    result = invoke("compare", runs, *two, "--columns", "run_id,test_accuracy", "--format", "markdown")
    assert "config differences" not in result.stdout
    # Without --columns, or with the two runs named, they are shown side by side too.
    assert "config differences" in invoke("compare", runs, *two).stdout
    a, b = runs / "20250101T100000Z_alpha", runs / "20250101T110000Z_beta"
    assert "config differences" in invoke("compare", a, b, "--columns", "run_id,test_accuracy").stdout


def test_two_runs_side_by_side_fit_80_columns(runs):
    a, b = runs / "20250101T100000Z_alpha", runs / "20250101T110000Z_beta"
    out, _ = on_terminal(80, "compare", a, b)
    side = out[out.index("config differences"):]
    assert "A: 20250101T100000Z_alpha" in out and "B: 20250101T110000Z_beta" in out
    assert all(len(line.rstrip()) <= 80 for line in side.splitlines()), side
    assert "…" not in out
    test_line = next(line for line in side.splitlines() if line.strip().startswith("test_accuracy"))
    assert test_line.split()[1:] == ["0.9100", "0.9500", "+0.0400"]


def test_a_text_filter_value_no_run_has_is_named_with_the_closest(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "20250101T100000Z", "housing", task="regression", dataset="boston_housing")
    make_run(root, "20250101T110000Z", "digits")
    result = invoke("compare", root, "--filter", "dataset=bostn")
    assert result.exit_code == 0  # nothing matched is an answer, not a mistake
    assert "note: no run has dataset=bostn; did you mean boston_housing?" in result.stderr
    assert table_rows(result.stdout) == {}
    result = invoke("compare", root, "--filter", "optimizer.name=adamw")  # a config key too
    assert "note: no run has optimizer.name=adamw; did you mean adam?" in result.stderr
    result = invoke("compare", root, "--filter", "dataset=zzz")
    assert "note: no run has dataset=zzz (the runs have boston_housing, digits)" in result.stderr
    # A value some run has, a wildcard or a number says nothing more.
    for quiet in ("dataset=boston_housing", "dataset=bo*", "test_accuracy=0.123"):
        assert "note:" not in invoke("compare", root, "--filter", quiet, "--filter", "name=nobody").stderr.replace(
            "note: no run has name=nobody", "")


def test_plot_labels_sweep_trials_by_their_parameters(tmp_path, monkeypatch):
    import nnlab.plots

    root = tmp_path / "runs"
    sweep = "20250101T095959Z_grid_sweep"
    for i, (lr, units) in enumerate([(0.1, 64), (0.01, 64)]):
        make_run(root, f"20250101T10000{i}Z", "grid", sweep_id=sweep, trial=i,
                 trial_params={"optimizer.learning_rate": lr, "model.layers.0.Dense.units": units})
    make_run(root, "20250101T110000Z", "plain")
    drawn = {}

    def capture(curves, metric, path, **kwargs):
        drawn["labels"] = [label for label, _, _ in curves]
        return path

    monkeypatch.setattr(nnlab.plots, "overlaid_curves", capture)
    result = invoke("compare", root, "--plot", tmp_path / "curves.png")
    assert result.exit_code == 0, result.output
    assert drawn["labels"] == ["learning_rate=0.1, units=64", "learning_rate=0.01, units=64",
                               "20250101T110000Z_plain"]


#: Each file of a run folder, nested far deeper than nnlab writes it (Python's readers recurse once per level).
DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("damaged", ["metrics.json", "config.yaml", "history.csv", "kfold.json", "sweep.json",
                                     "env.json", "diagnostics.json", ".nnlab-index.json", "moderately deep"])
def test_a_deeply_nested_file_in_one_folder_stops_no_listing(tmp_path, damaged):
    pytest.importorskip("altair")
    root = tmp_path / "runs"
    make_run(root, "20250101T100000Z", "good")
    bad = make_run(root, "20250101T110000Z", "bad")
    if damaged == "moderately deep":  # parses, but deeper than any reader should follow
        metrics = json.loads((bad / "metrics.json").read_text())
        metrics["test"] = json.loads("[" * 500 + "]" * 500)
        (bad / "metrics.json").write_text(json.dumps(metrics))
    elif damaged == ".nnlab-index.json":
        invoke("compare", root)
        (root / damaged).write_text('{"version": 1, "folders": ' + DEEP_JSON + "}")
    elif damaged == "config.yaml":
        (bad / damaged).write_text("name: bad\nmodel: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n")
    else:
        (bad / damaged).write_text(DEEP_JSON)
    listing = invoke("compare", root)
    assert listing.exit_code == 0, listing.output
    rows = table_rows(listing.stdout)
    assert "completed" in rows["20250101T100000Z_good"] and "20250101T110000Z_bad" in rows
    for args in (("compare", root, "--format", "json"), ("compare", root, "--group-by", "name"),
                 ("show", bad), ("show", root / "20250101T100000Z_good"),
                 ("report", root, "-o", tmp_path / "report.html")):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output
    if damaged in ("metrics.json", "moderately deep"):
        assert "nested deeper than 64 levels" in listing.stderr


@pytest.mark.parametrize("recorded, status", [
    ({"pid": "123", "host": "HOST"}, "running"), ({"pid": True, "host": "HOST"}, "running"),
    ({"pid": 2 ** 70, "host": "HOST"}, "lost"), ({"pid": -5, "host": "HOST"}, "lost"),
    ({"pid": 1, "host": ["a"]}, "running"), ({"pid": 1, "host": "elsewhere", "heartbeat": "yesterday"}, "running"),
    ({"pid": 1, "host": "elsewhere", "heartbeat": "2020-01-01T00:00:00+00:00"}, "lost"),
    ({"pid": 1, "host": "elsewhere", "heartbeat": "2020-01-01T00:00:00"}, "running"),  # no zone: no age
    ({"pid": 1, "host": "HOST", "process_start": "soon"}, "running"),
])
def test_odd_process_records_of_a_running_run_never_stop_a_listing(tmp_path, recorded, status):
    from nnlab.store.liveness import host_name

    recorded = {k: host_name() if v == "HOST" else v for k, v in recorded.items()}
    root = tmp_path / "runs"
    make_run(root, "20250101T100000Z", "odd", status="running", **recorded)
    listing = invoke("compare", root, "--format", "json")
    assert listing.exit_code == 0, listing.output
    assert json.loads(listing.stdout)[0]["status"] == status
    assert invoke("show", root / "20250101T100000Z_odd").exit_code == 0


def test_a_sweep_whose_process_is_gone_is_lost(tmp_path):
    root = tmp_path / "runs"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from nnlab.store.liveness import host_name

    make_run(root, "20250101T100000Z", "grid_sweep", kind="sweep", status="running", pid=int(dead.stdout),
             host=host_name())
    listing = invoke("compare", root, "--format", "json")
    assert json.loads(listing.stdout)[0]["status"] == "lost"
    assert "nnlab sweep --resume" in listing.stderr

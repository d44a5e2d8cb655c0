"""The run-folder format on the reading side: statuses, their one palette, the folders the
previous release (0.1.0) wrote, and the metric directions runs record."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from nnlab.store import format as runfile
from nnlab.store.format import RunMetrics, Status
from nnlab.store.reading import read_run, summarize
from nnlab.views import style
from nnlab.views.style import STATUS_STYLES, number, status_style

from conftest import REPO

#: Run folders written by nnlab 0.1.0 (see the README there).
V0_1_0 = Path(__file__).resolve().parent / "fixtures" / "runs_v0_1_0"
#: Each of them, by the README's table: kind and status.
OLD_FOLDERS = {
    "20261201T082845Z_digits": ("train", "completed"),
    "20261201T082852Z_digits": ("train", "interrupted"),
    "20261201T082859Z_digits_kfold": ("kfold", "completed"),
    "20261201T082905Z_digits_kfold": ("kfold", "completed"),
    "20261201T082914Z_digits_sweep": ("sweep", "completed"),
    "20261201T082914Z_digits": ("train", "completed"),
    "20261201T082916Z_digits": ("train", "completed"),
    "20261201T082923Z_digits": ("train", "failed"),
    "20261201T082929Z_digits": ("train", "diverged"),
}
needs_old_runs = pytest.mark.skipif(not V0_1_0.is_dir(), reason="no fixtures of 0.1.0 run folders")


# -- statuses ---------------------------------------------------------------------------------

def test_every_status_round_trips_and_anything_else_is_unknown():
    for status in Status:
        assert Status.of(status.value) is status and Status.of(status) is status
        assert str(status) == status.value
        # As metrics.json holds it, and as a listing reads it back.
        written = json.loads(json.dumps(RunMetrics("r", "n", "train", "d", "multiclass", status=status).to_dict()))
        assert written["status"] == status.value and Status.of(written["status"]) is status
        assert summarize(written, "r")["status"] == status.value
    for text in ("", "Completed", "done", "running ", None, 3, ["completed"]):
        assert Status.of(text) is Status.UNKNOWN
    assert summarize({"status": "finished"}, "r")["status"] == "unknown"
    assert summarize({}, "r")["status"] == "unknown"


@needs_old_runs
def test_the_statuses_the_previous_release_wrote_are_statuses():
    for name, (_, status) in OLD_FOLDERS.items():
        metrics = json.loads((V0_1_0 / name / runfile.METRICS).read_text())
        assert Status.of(metrics["status"]) is Status(status), name
    sweep = json.loads((V0_1_0 / "20261201T082914Z_digits_sweep" / runfile.SWEEP).read_text())
    assert Status.of(sweep["status"]) is Status.COMPLETED
    assert all(Status.of(t["status"]) is Status.COMPLETED for t in sweep["trials"])


def test_one_palette_styles_every_status():
    from rich.style import Style

    assert set(STATUS_STYLES) == set(Status)
    for status in Status:
        assert status_style(status) == status_style(status.value) == STATUS_STYLES[status]
        Style.parse(status_style(status))  # a style rich knows
    assert status_style("running") == "yellow"  # one colour, whoever prints it
    assert status_style("completed") == "green"
    assert status_style("failed") == status_style("diverged") == status_style("unreadable") == "red"
    assert status_style("completed with failures") == status_style("not run") == "yellow"
    assert status_style("something else") == status_style(None) == "dim"
    from nnlab.views import progress, summaries

    assert progress.status_style is summaries.status_style is style.status_style


def test_one_number_format():
    assert number(0.95) == "0.9500" and number(2.4) == "2.4000" and number(0.0) == "0.0000"
    assert number(1.5e-5) == "1.5e-05" and number(2.5e6) == "2.5e+06" and number(-0.25) == "-0.2500"
    assert number(float("nan")) == "nan" and number(float("inf")) == "inf"
    assert number(None) == "-" and number(12) == "12" and number("majority_class") == "majority_class"
    import numpy as np

    assert number(np.float32(0.5)) == "0.5000" and number(np.int64(7)) == "7"


# -- what the views render ---------------------------------------------------------------------

def test_console_renders_without_importing_the_sweep():
    code = ("import sys\nimport nnlab.views.progress, nnlab.views.summaries, nnlab.views.show, nnlab.views.compare\n"
            "print(sorted(m for m in sys.modules if m.startswith(('nnlab.sweeps', 'nnlab.training', 'nnlab.crossval'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_sweep_summary_renders_the_results_note_and_values(capsys):
    from nnlab.views import summaries

    outcome = SimpleNamespace(index=0, params={"seed": 1}, status="completed", message=None,
                              folder="runs/t", metrics={"validation": {"r2_score": 0.8125}})
    failed = SimpleNamespace(index=1, params={"seed": 2}, status="failed", message="boom",
                             folder=None, metrics={})
    result = SimpleNamespace(outcomes=[outcome, failed], metric="val_r2_score", status="completed with failures",
                             run=SimpleNamespace(path="runs/t_sweep"),
                             note="val_r2_score is the trained model's, after the last epoch.")
    summaries.sweep_summary(result)
    out = capsys.readouterr().out
    assert "0.8125" in out and "failed: boom" in out and "seed" in out
    assert "val_r2_score is the trained model's, after the last epoch." in out
    assert "sweep completed with failures" in out


@pytest.mark.parametrize("best, word", [
    ({"monitor": "val_calibration", "epoch": 4, "value": 0.5, "direction": "max"}, "highest"),
    ({"monitor": "val_accuracy", "epoch": 4, "value": 0.5, "direction": "min"}, "lowest"),  # the run's word wins
    ({"monitor": "val_accuracy", "epoch": 4, "value": 0.5}, "highest"),
    ({"monitor": "val_loss", "epoch": 4, "value": 0.5}, "lowest"),
])
def test_kfold_summary_says_which_way_the_best_epoch_was_picked(capsys, best, word):
    from nnlab.views import summaries

    result = SimpleNamespace(metrics={"status": "completed", "name": "x", "folds_completed": 2, "k": 2,
                                      "wall_time_s": 1.0, "params": 10},
                             summary={"best": best}, run=SimpleNamespace(path="runs/x_kfold"))
    summaries.kfold_summary(result)
    assert f"({word} mean {best['monitor']} over the folds: 0.5000)" in capsys.readouterr().out


# -- folders written by the previous release -------------------------------------------------------------

@pytest.fixture
def old_runs(tmp_path) -> Path:
    """A copy of the 0.1.0 folders (compare writes its index into the runs root)."""
    root = tmp_path / "runs"
    shutil.copytree(V0_1_0, root)
    return root


@needs_old_runs
def test_compare_lists_every_old_folder_with_its_status(cli, old_runs):
    result = cli("compare", old_runs)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line[:8].isdigit()}
    assert set(rows) == set(OLD_FOLDERS)
    for name, (kind, status) in OLD_FOLDERS.items():
        assert f" {kind} " in rows[name] and f" {status} " in rows[name], rows[name]
    assert "unreadable" not in result.stdout and "incomplete" not in result.stdout
    assert "warning" not in result.stderr
    assert (old_runs / runfile.INDEX).is_file() and not (V0_1_0 / runfile.INDEX).exists()

    listed = {r["run_id"]: r for r in json.loads(cli("compare", old_runs, "--format", "json",
                                                     "--columns", "all").stdout)}
    assert {name: (r["kind"], r["status"]) for name, r in listed.items()} == OLD_FOLDERS
    final = listed["20261201T082905Z_digits_kfold"]
    kfold = json.loads((old_runs / "20261201T082905Z_digits_kfold" / runfile.KFOLD).read_text())
    assert final["val_loss"] == kfold["mean"]["loss"] and final["val_loss_std"] == kfold["std"]["loss"]
    assert final["best_val_loss"] == kfold["best"]["value"] and final["k"] == 2
    assert final["test_accuracy"] == kfold["final"]["test"]["accuracy"]
    assert listed["20261201T082914Z_digits"]["trial_params"] == {"model.layers.0.Dense.units": 4}
    assert listed["20261201T082914Z_digits"]["params"] == 310
    assert listed["20261201T082914Z_digits_sweep"]["best_val_loss"] == pytest.approx(2.1708, abs=1e-4)
    assert listed["20261201T082852Z_digits"]["epochs"] == 23
    assert all(read_run(old_runs / name).directions == {} for name in OLD_FOLDERS)  # 0.1.0 recorded none


@needs_old_runs
@pytest.mark.parametrize("name", sorted(OLD_FOLDERS))
def test_show_reads_every_old_folder(cli, old_runs, name):
    folder = old_runs / name
    result = cli("show", folder)
    assert result.exit_code == 0, result.output
    out = result.stdout
    metrics = json.loads((folder / runfile.METRICS).read_text())
    assert out.splitlines()[1].startswith(OLD_FOLDERS[name][1]) and "warning" not in out
    assert "config (resolved)" in out and "name: digits" in out
    if metrics.get("message"):
        assert metrics["message"][:60] in out
    for part in ("train", "validation", "test"):
        for metric, value in (metrics.get(part) or {}).items():
            assert number(value) in out, (part, metric)
    for key, value in (metrics.get("baseline") or {}).items():
        if key != "name":
            assert f"{key} {number(value)}" in out
    if metrics["kind"] == "train":
        assert "Total params" in out
        assert f"{metrics['epochs_run']} of {metrics['epochs_planned']} epochs" in out
    if metrics["kind"] == "kfold":
        kfold = json.loads((folder / runfile.KFOLD).read_text())
        assert "k-fold validation (k=2)" in out
        for fold in kfold["folds"]:
            assert all(number(v) in out for v in fold["validation"].values())
        assert all(number(v) in out for v in [*kfold["mean"].values(), *kfold["std"].values()])
        assert f"best epoch by mean val_loss: {kfold['best']['epoch']} ({number(kfold['best']['value'])})" in out
    if metrics["kind"] == "sweep":
        assert "sweep trials" in out and "| 1 | 1 | 8 | 2.1708 | completed | 20261201T082916Z_digits |" in out
    if "trial_params" in metrics:
        assert "trial parameters: model.layers.0.Dense.units=" in out
    for plot in metrics.get("plots") or []:
        assert plot in out and "(missing)" not in out


@needs_old_runs
def test_predict_with_old_models(cli, old_runs):
    result = cli("predict", old_runs / "20261201T082845Z_digits", "--index", 0)
    assert result.exit_code == 0, result.output
    assert "predicted: 7 (20.2%)   true: 7  right" in result.stdout  # as 0.1.0 printed it
    assert [line.split() for line in result.stdout.splitlines()[3:5]] == [["7", "0.2022"], ["9", "0.1428"]]
    result = cli("predict", old_runs / "20261201T082905Z_digits_kfold", "--index", 0, "--json")
    assert result.exit_code == 0, result.output
    (prediction,) = json.loads(result.stdout)["predictions"]
    assert prediction["true"] == "7"
    result = cli("predict", old_runs / "20261201T082852Z_digits", "--index", 0)
    assert result.exit_code == 2 and "has no model.keras (status interrupted)" in result.stderr


# -- recorded metric directions ------------------------------------------------------------------------

def fake_run(root: Path, stamp: str, validation: dict, directions: dict | None) -> Path:
    """A run folder with just a metrics.json: a completed train run with these validation metrics."""
    folder = root / f"{stamp}_fake"
    folder.mkdir(parents=True)
    metrics = {"run_id": folder.name, "name": "fake", "kind": "train", "dataset": "diabetes", "task": "regression",
               "status": "completed", "validation": validation}
    if directions is not None:
        metrics["directions"] = directions
    (folder / runfile.METRICS).write_text(json.dumps(metrics))
    return folder


def sorted_by(cli, root: Path, key: str, *flags: str) -> list[str]:
    result = cli("compare", root, "--format", "csv", "--columns", "run_id", "--sort", key, *flags)
    assert result.exit_code == 0, result.output
    return [row["run_id"][:16] for row in csv.DictReader(io.StringIO(result.stdout))]


def test_recorded_directions_choose_the_default_sort(cli, tmp_path):
    root = tmp_path / "runs"
    for stamp, r2, calibration, custom in (("20250101T000001Z", 0.2, 0.3, 0.9), ("20250101T000002Z", 0.9, 0.7, 0.1),
                                           ("20250101T000003Z", 0.5, 0.5, 0.5)):
        fake_run(root, stamp, {"loss": 1 - r2, "r2_score": r2, "calibration": calibration, "custom_score": custom},
                 {"loss": "min", "r2_score": "max", "calibration": "max", "custom_score": "min"})
    high_first = ["20250101T000002Z", "20250101T000003Z", "20250101T000001Z"]
    assert sorted_by(cli, root, "val_r2_score") == high_first
    assert sorted_by(cli, root, "val_r2_score") == high_first  # the same from the index
    # A name nnlab cannot place sorts the way the runs recorded.
    assert sorted_by(cli, root, "val_calibration") == high_first
    # What the runs recorded wins over the name (a "score" that is better low).
    assert sorted_by(cli, root, "val_custom_score") == high_first
    assert sorted_by(cli, root, "val_loss") == high_first  # the loss: lowest first
    assert sorted_by(cli, root, "val_calibration", "--asc") == high_first[::-1]
    assert read_run(root / "20250101T000001Z_fake").directions["calibration"] == "max"


def test_without_directions_everywhere_the_name_decides(cli, tmp_path):
    root = tmp_path / "runs"
    fake_run(root, "20250101T000001Z", {"r2_score": 0.2, "calibration": 0.3}, {"r2_score": "max", "calibration": "max"})
    fake_run(root, "20250101T000002Z", {"r2_score": 0.9, "calibration": 0.7}, None)  # written before directions
    assert sorted_by(cli, root, "val_r2_score") == ["20250101T000002Z", "20250101T000001Z"]  # r2: higher is better
    assert sorted_by(cli, root, "val_calibration") == ["20250101T000001Z", "20250101T000002Z"]  # unknown: ascending
    # Runs without the key do not count (they go last either way): the others' directions decide.
    more = tmp_path / "more"
    fake_run(more, "20250101T000001Z", {"calibration": 0.3}, {"calibration": "max"})
    fake_run(more, "20250101T000002Z", {"calibration": 0.7}, {"calibration": "max"})
    fake_run(more, "20250101T000003Z", {"loss": 0.5}, None)
    assert sorted_by(cli, more, "val_calibration") == ["20250101T000002Z", "20250101T000001Z", "20250101T000003Z"]

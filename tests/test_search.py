"""``nnlab sweep --search tpe``: Optuna proposes trials from a seed, prunes them, keeps the study in the
sweep folder and continues it after a stop; bad input is refused before any folder exists.

Trials are the conftest's tiny spiral (150 points) with a validation split, so a trial trains in
well under a second; every test reads what the sweep wrote (sweep.json, each trial's run folder,
the study's own SQLite file through Optuna).
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SPIRAL

optuna = pytest.importorskip("optuna")

BASE = SPIRAL.replace("epochs: 5, batch_size: full", "epochs: 9, batch_size: 32, validation_split: 0.3")
SEARCH = ["--search", "tpe", "--param", "optimizer.learning_rate=loguniform(0.001, 3.0)",
          "--param", "model.layers.0.Dense.units=choice(2, 8, 32)"]


def record_of(folder: Path) -> dict:
    return json.loads((folder / "sweep.json").read_text())


def sweep_folder(runs: Path) -> Path:
    (folder,) = runs.glob("*_sweep")
    return folder


def proposals(record: dict) -> list:
    return [(t["index"], t["params"]) for t in sorted(record["trials"], key=lambda t: t["index"])]


def study_of(folder: Path):
    return optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")


def test_the_same_command_proposes_the_same_trials_and_another_seed_other_ones(tmp_path, write_config, cli):
    path = write_config(BASE)
    seen = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        result = cli("sweep", path, *SEARCH, "--trials", 5, "--set", f"seed={seed}", "--runs-dir", tmp_path / name,
                     "-q")
        assert result.exit_code == 0, result.output
        seen.append(proposals(record_of(sweep_folder(tmp_path / name))))
    assert seen[0] == seen[1] and len(seen[0]) == 5
    assert seen[0] != seen[2]
    folder = sweep_folder(tmp_path / "a")
    study = study_of(folder)
    # After the random start-up trials, TPE proposes from the ones before (startup_trials(5) == 2).
    assert len(study.trials) == 5 and all(t.state.name == "COMPLETE" for t in study.trials)
    for trial in study.trials:  # the study's value of each trial is its run's val_loss
        run = json.loads((Path(record_of(folder)["trials"][trial.number]["folder"]) / "metrics.json").read_text())
        assert trial.value == pytest.approx(run["validation"]["loss"])
        assert trial.params["model.layers.0.Dense.units"] == run["trial_params"]["model.layers.0.Dense.units"]


def test_a_pruner_stops_trials_early_and_a_pruned_trial_is_a_normal_run_folder(tmp_path, write_config, cli):
    path = write_config(BASE)
    runs = tmp_path / "runs"
    result = cli("sweep", path, *SEARCH, "--trials", 8, "--pruner", "asha", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    folder = sweep_folder(runs)
    record = record_of(folder)
    by_status: dict[str, list] = {}
    for trial in record["trials"]:
        by_status.setdefault(trial["status"], []).append(trial)
    assert set(by_status) == {"completed", "pruned"} and by_status["pruned"], by_status.keys()
    for trial in by_status["pruned"]:
        run = Path(trial["folder"])
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["status"] == "pruned" and "pruned by the search's pruner after epoch" in metrics["message"]
        epochs = metrics["epochs_run"]
        assert 1 <= epochs < 9 and trial["metrics"]["epochs_trained"] == epochs
        rows = (run / "history.csv").read_text().strip().splitlines()
        assert len(rows) == 1 + epochs, "the history holds the epochs it ran, no more"
        assert (run / "model.keras").is_file() and metrics["validation"] and metrics["test"]
        # ASHA's rungs of a 9-epoch trial are epochs 1, 3 and 9: a trial is stopped at one of them.
        assert epochs in (1, 3)
    study = study_of(folder)
    states = {t.number: t.state.name for t in study.trials}
    assert {t["index"] for t in by_status["pruned"]} == {n for n, s in states.items() if s == "PRUNED"}
    completed = {t["index"] for t in by_status["completed"]}
    assert set(record["ranking"][:len(completed)]) == completed, "the ranking counts the completed trials first"
    assert record["epochs_trained"] == sum(t["metrics"]["epochs_trained"] for t in record["trials"])
    assert record["epochs_trained"] < 8 * 9
    assert json.loads((folder / "metrics.json").read_text())["trial_statuses"]["pruned"] == len(by_status["pruned"])
    listing = cli("compare", runs, "--format", "json")
    assert sorted(r["status"] for r in json.loads(listing.stdout) if r["kind"] == "train") == \
        sorted(t["status"] for t in record["trials"])
    shown = cli("show", by_status["pruned"][0]["folder"])
    assert shown.exit_code == 0 and "pruned" in shown.stdout
    page = tmp_path / "report.html"
    assert cli("report", runs, "-o", page).exit_code == 0
    html = page.read_text()
    assert html.count('class="status-cyan"') >= len(by_status["pruned"]) and ".status-cyan td.status" in html


def test_k_fold_trials_report_the_mean_over_the_folds_so_far_at_each_step(tmp_path):
    """The reporter itself, on a real study: stage 2 (the second fold) reports the mean of both folds."""
    from nnlab.sweeps.pruning import PrunerSpec, PruningTarget, TrialReporter, open_storage

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    trial = study.ask()
    spec = PrunerSpec("median", steps=2 * 3)
    reporter = TrialReporter(PruningTarget(url, "s", trial._trial_id, "val_loss", spec, epochs=3))
    for stage, values in enumerate(([4.0, 3.0, 2.0], [2.0, 1.0, 0.0])):
        reporter.callback()
        for epoch, value in enumerate(values):
            reporter.epoch_ended(stage, epoch, {"val_loss": value})
    reported = study.trials[0].intermediate_values
    # median over 6 steps: warm-up 1 step, a decision every step after it, and the last step.
    assert reported == {2: 3.0, 3: 2.0, 4: 3.0, 5: 2.0, 6: 1.0}
    assert spec.as_dict()["n_warmup_steps"] == 1


def test_the_pruners_decide_at_their_rungs_and_build():
    from nnlab.sweeps.pruning import PrunerSpec

    asha = PrunerSpec("asha", 40)
    # Rungs at a ninth and a third of the trial, rounded up (never just before its end), and the end.
    assert [s for s in range(1, 41) if asha.decides_at(s)] == [5, 15, 40]
    assert [s for s in range(1, 28) if PrunerSpec("asha", 27).decides_at(s)] == [3, 9, 27]
    assert isinstance(asha.build(), optuna.pruners.SuccessiveHalvingPruner)
    band = PrunerSpec("hyperband", 40)
    assert isinstance(band.build(), optuna.pruners.HyperbandPruner)
    median = PrunerSpec("median", 40)
    assert [s for s in range(1, 41) if median.decides_at(s)] == [6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                                                                   32, 34, 36, 38, 40]
    assert isinstance(median.build(), optuna.pruners.MedianPruner)


def test_k_fold_search_prunes_inside_a_fold_and_writes_a_pruned_k_fold_run(tmp_path, write_config, cli):
    path = write_config(BASE.replace(", validation_split: 0.3", "") + "kfold: {k: 2}\n")
    runs = tmp_path / "runs"
    result = cli("sweep", path, *SEARCH, "--trials", 6, "--pruner", "asha", "--kfold", "--runs-dir", runs, "-q")
    assert result.exit_code == 0, result.output
    record = record_of(sweep_folder(runs))
    assert record["trial_kind"] == "kfold"
    pruned = [t for t in record["trials"] if t["status"] == "pruned"]
    assert pruned, [t["status"] for t in record["trials"]]
    for trial in pruned:
        metrics = json.loads((Path(trial["folder"]) / "metrics.json").read_text())
        assert metrics["kind"] == "kfold" and metrics["status"] == "pruned"
        assert metrics["message"].startswith("fold ")
        # 2 folds x 9 epochs = 18 steps; ASHA's rungs at steps 2 and 6 lie in the first fold.
        assert trial["metrics"]["epochs_trained"] in (2, 6)
    for trial in record["trials"]:
        if trial["status"] == "completed":
            assert trial["metrics"]["epochs_trained"] == 18


def test_with_seeds_each_proposal_is_repeated_and_the_sampler_sees_the_mean(tmp_path, write_config, cli):
    path = write_config(BASE)
    runs = tmp_path / "runs"
    result = cli("sweep", path, *SEARCH, "--trials", 3, "--seeds", "2", "--runs-dir", runs, "-q")
    assert result.exit_code == 0, result.output
    folder = sweep_folder(runs)
    record = record_of(folder)
    assert sorted((t["index"], t["repeat"]) for t in record["trials"]) == [(i, r) for i in range(3) for r in (0, 1)]
    for trial in study_of(folder).trials:
        losses = [t["metrics"]["validation"]["loss"] for t in record["trials"] if t["index"] == trial.number]
        assert trial.value == pytest.approx(sum(losses) / 2)
    assert len(record["trial_stats"]) == 3 and all(s["n"] == 2 for s in record["trial_stats"])


def test_the_budget_options_stop_starting_trials(tmp_path, write_config, cli):
    path = write_config(BASE)
    result = cli("sweep", path, *SEARCH, "--trials", 10, "--max-epochs-total", 10, "--runs-dir", tmp_path / "a",
                 "-q")
    assert result.exit_code == 0, result.output
    record = record_of(sweep_folder(tmp_path / "a"))
    assert len(record["trials"]) == 2 and record["epochs_trained"] == 18, "a second 9-epoch trial passes 10"
    result = cli("sweep", path, *SEARCH, "--trials", 10, "--timeout", "0.001", "--runs-dir", tmp_path / "b", "-q")
    assert result.exit_code == 0, result.output
    assert len(record_of(sweep_folder(tmp_path / "b"))["trials"]) == 1


def test_the_config_s_search_section_runs_without_options(tmp_path, write_config, cli):
    path = write_config(BASE + "sweep:\n  search:\n    method: tpe\n    trials: 2\n    pruner: median\n"
                               "    params: {optimizer.learning_rate: 'loguniform(0.01, 1.0)'}\n")
    result = cli("sweep", path, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    record = record_of(sweep_folder(tmp_path / "runs"))
    assert record["search"]["method"] == "tpe" and record["search"]["pruner"] == "median"
    assert len(record["trials"]) == 2
    assert all(0.01 <= t["params"]["optimizer.learning_rate"] <= 1.0 for t in record["trials"])


@pytest.mark.slow
def test_ctrl_c_then_resume_continues_the_same_study(tmp_path, write_config, cli):
    path = write_config(BASE.replace("epochs: 9", "epochs: 200"))
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "nnlab", "sweep", str(path), *SEARCH, "--trials", "4",
                                "--runs-dir", str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # Ctrl-C once the first trial has finished and the second is running
        records = list(runs.glob("*_sweep/sweep.json"))
        statuses = [t["status"] for t in record_of(records[0].parent)["trials"]] if records else []
        if "completed" in statuses and "running" in statuses:
            break
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    folder = records[0].parent
    stopped = record_of(folder)
    assert stopped["status"] == "interrupted"
    done = {t["index"]: t["folder"] for t in stopped["trials"] if t["status"] == "completed"}
    first = proposals(stopped)[:len(done)]

    result = cli("sweep", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert f"{len(done)} of its 4 trials done" in result.stdout
    record = record_of(folder)
    assert record["status"] == "completed" and record["sweep_id"] == stopped["sweep_id"]
    assert len(record["trials"]) == 4 and {t["status"] for t in record["trials"]} == {"completed"}
    assert proposals(record)[:len(done)] == first and all(
        next(t for t in record["trials"] if t["index"] == i)["folder"] == f for i, f in done.items())
    study = study_of(folder)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 4, states
    cut = [t for t in study.trials if t.state.name == "FAIL"]
    assert cut and all(t.user_attrs.get("nnlab_interrupted") for t in cut), "the trial the stop cut short"
    assert {t["index"] for t in record["cut_short"]} == {t.number for t in cut}
    again = cli("sweep", "--resume", folder)
    assert again.exit_code == 2 and "nothing to resume" in again.stderr and again.stderr.count("error:") == 1
    more = cli("sweep", "--resume", folder, "--trials", 5, "-q")
    assert more.exit_code == 0, more.output
    assert len(record_of(folder)["trials"]) == 5


def test_two_jobs_run_trials_concurrently_with_the_same_sampler_and_pruner(tmp_path, write_config, cli):
    path = write_config(BASE)
    runs = tmp_path / "runs"
    result = cli("sweep", path, *SEARCH, "--trials", 4, "--pruner", "asha", "--jobs", 2, "--runs-dir", runs, "-q")
    assert result.exit_code == 0, result.output
    folder = sweep_folder(runs)
    record = record_of(folder)
    assert record["executor"] == "process x2" and len(record["trials"]) == 4
    assert {t["status"] for t in record["trials"]} <= {"completed", "pruned"}
    for trial in record["trials"]:  # written by the driver from what the worker sent back
        metrics = json.loads((Path(trial["folder"]) / "metrics.json").read_text())
        assert metrics["status"] == trial["status"] and metrics["sweep_id"] == folder.name
    assert sorted(t.number for t in study_of(folder).trials) == list(range(4))


@pytest.mark.ray
def test_a_search_runs_on_a_local_ray_cluster(tmp_path, write_config, cli):
    pytest.importorskip("ray")
    path = write_config(BASE)
    runs = tmp_path / "runs"
    result = cli("sweep", path, *SEARCH, "--trials", 3, "--pruner", "median", "--executor", "ray", "--jobs", 2,
                 "--runs-dir", runs, "-q")
    assert result.exit_code == 0, result.output
    record = record_of(sweep_folder(runs))
    assert record["executor"] == "ray" and len(record["trials"]) == 3
    assert {t["status"] for t in record["trials"]} <= {"completed", "pruned"}
    assert all(math.isfinite(t["metrics"]["validation"]["loss"]) for t in record["trials"])


@pytest.mark.parametrize("options, says", [
    (["--search", "tpe", "--trials", "3", "--grid", "seed=1,2"], "a search needs something to sample"),
    (["--pruner", "asha", "--grid", "seed=1,2"], "--pruner belongs to a model-based search"),
    (["--trials", "3", "--grid", "seed=1,2"], "--trials belongs to a model-based search"),
    (["--search", "tpee", "--trials", "3", *SEARCH[2:]], "unknown search method 'tpee'; did you mean 'tpe'?"),
    ([*SEARCH, "--trials", "3", "--pruner", "ashaa"], "unknown pruner 'ashaa'; did you mean 'asha'?"),
    ([*SEARCH, "--trials", "0"], "--trials must be at least 1"),
    ([*SEARCH], "a search needs a budget: give --trials N"),
    ([*SEARCH, "--trials", "3", "--random", "4"], "--random draws its own trials"),
    ([*SEARCH, "--trials", "3", "--param", "optimizer.learning_rate=uniform(1, 0.1)"], "is given twice"),
    (["--search", "tpe", "--trials", "3", "--param", "optimizer.learning_rate=uniform(1, 0.1)"],
     "low bound 1 is above its high bound 0.1"),
    (["--search", "tpe", "--trials", "3", "--param", "optimizer.nosuch.key=uniform(0.1, 1)"], "is not a valid config"),
])
def test_bad_search_input_is_refused_with_one_message_and_no_folder(tmp_path, write_config, cli, options, says):
    path = write_config(BASE)
    runs = tmp_path / "runs"
    result = cli("sweep", path, *options, "--runs-dir", runs)
    assert result.exit_code == 2, result.output
    assert says in result.stderr and result.stderr.count("error:") == 1, result.stderr
    assert "Traceback" not in result.output and not runs.exists()


def test_a_pruner_without_validation_data_or_without_optuna_is_refused(tmp_path, write_config, cli, monkeypatch):
    path = write_config(BASE.replace(", validation_split: 0.3", ""))
    result = cli("sweep", path, *SEARCH, "--trials", 3, "--pruner", "median", "--runs-dir", tmp_path / "runs",
                 "--metric", "test_loss")
    assert result.exit_code == 2 and "hold out no validation rows" in result.stderr, result.stderr
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    result = cli("sweep", write_config(BASE, "other.yaml"), *SEARCH, "--trials", 3, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "pip install 'nnlab[search]'" in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()

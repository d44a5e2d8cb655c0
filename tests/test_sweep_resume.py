"""``nnlab sweep --resume``: a sweep stopped by Ctrl-C, or whose worker was killed, finishes as if
nothing had happened; a resume refuses another config or space.

Workers are killed for real (SIGKILL) by a hook that lives here: a ``sitecustomize`` module in
the test's folder, on the workers' PYTHONPATH, wraps ``nnlab.training.run.train`` so that the worker
training trial ``KILL_TRIAL`` kills itself, ``KILLS`` times in all (counted in a file).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnlab.config import config_from_text
from nnlab.executors import LocalExecutor
from nnlab.interrupts import Interrupted
from nnlab.sweeps import run as sweep, space as spaces

from conftest import SPIRAL

BASE = SPIRAL.replace("epochs: 5, batch_size: full", "epochs: 3, batch_size: 32, validation_split: 0.2")
GRID = {"optimizer.learning_rate": [0.1, 1.0], "model.layers.0.Dense.units": [4, 16]}
GRID_OPTIONS = ["--grid", "optimizer.learning_rate=0.1,1.0", "--grid", "model.layers.0.Dense.units=4,16"]

KILL_HOOK = '''
import os, signal, sys
import importlib.abc, importlib.util

class _KillTrial(importlib.abc.MetaPathFinder):
    """Wraps nnlab.training.run.train as it is imported: the trial named in the environment kills its worker."""

    def find_spec(self, name, path, target=None):
        if name != "nnlab.training.run":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            train = module.train

            def train_or_die(config, **kwargs):
                count = os.environ["NNLAB_TEST_KILL_COUNT"]
                if kwargs["tags"]["trial"] == int(os.environ["NNLAB_TEST_KILL_TRIAL"]):
                    done = int(open(count).read()) if os.path.exists(count) else 0
                    if done < int(os.environ["NNLAB_TEST_KILLS"]):
                        with open(count, "w") as f:
                            f.write(str(done + 1))
                        os.kill(os.getpid(), signal.SIGKILL)
                return train(config, **kwargs)

            module.train = train_or_die

        spec.loader.exec_module = exec_module
        return spec

if os.environ.get("NNLAB_TEST_KILL_TRIAL"):
    sys.meta_path.insert(0, _KillTrial())
'''


def trials_of(record: dict) -> dict:
    """What must not depend on how the sweep got there: each trial's parameters, status and metrics."""
    return {(t["index"], t["repeat"]): (t["params"], t["status"], t["metrics"]) for t in record["trials"]}


def read_record(folder) -> dict:
    return json.loads((Path(folder) / "sweep.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The same sweep, run here from start to end: what every resumed sweep must come to."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    base = config_from_text(BASE, str(tmp / "exp.yaml"))
    result = sweep.run_sweep(base, spaces.build_trials(base, spaces.expand(GRID)), LocalExecutor(),
                             runs_dir=tmp / "runs")
    assert result.status == "completed"
    return read_record(result.run.path)


@pytest.fixture
def kill_hook(tmp_path, monkeypatch):
    """Arm the hook for workers started from now on: ``arm(trial, kills)``; returns the kill counter's path."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_HOOK)
    count = tmp_path / "kills"

    def arm(trial: int, kills: int) -> Path:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])]))
        monkeypatch.setenv("NNLAB_TEST_KILL_TRIAL", str(trial))
        monkeypatch.setenv("NNLAB_TEST_KILLS", str(kills))
        monkeypatch.setenv("NNLAB_TEST_KILL_COUNT", str(count))
        return count

    return arm


def interrupted_sweep(tmp_path, write_config, after: int = 1) -> Path:
    """A sweep stopped (as by Ctrl-C) after ``after`` trials; its folder."""
    path = write_config(BASE)
    base = config_from_text(path.read_text(), str(path))
    done = []

    def stop(outcome, total):
        done.append(outcome)
        if len(done) == after:
            raise Interrupted(signal.SIGINT)

    result = sweep.run_sweep(base, spaces.build_trials(base, spaces.expand(GRID)), LocalExecutor(),
                             runs_dir=tmp_path / "runs", report=stop, space={"variants": [], "grid": GRID,
                                                                              "random": {}, "n_random": 0})
    assert result.status == "interrupted"
    return result.run.path


def test_ctrl_c_mid_sweep_then_resume_gives_the_uninterrupted_sweep(tmp_path, write_config, cli, uninterrupted):
    path = write_config(BASE)
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "nnlab", "sweep", str(path), *GRID_OPTIONS, "--runs-dir",
                                str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # Ctrl-C once the first trial has finished
        records = list(runs.glob("*_sweep/sweep.json"))
        if records and any(t["status"] == "completed" for t in read_record(records[0].parent)["trials"]):
            break
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    folder = records[0].parent
    stopped = read_record(folder)
    assert stopped["status"] == "interrupted"
    statuses = [t["status"] for t in stopped["trials"]]
    assert "completed" in statuses and set(statuses) - {"completed"} <= {"interrupted", "not run"}
    kept = {t["index"]: t["folder"] for t in stopped["trials"] if t["status"] == "completed"}

    result = cli("sweep", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "of its 4 runs to run again" in result.stdout
    record = read_record(folder)
    assert record["status"] == "completed" and trials_of(record) == trials_of(uninterrupted)
    assert record["sweep_id"] == stopped["sweep_id"] and len(record["resumed"]) == 1
    assert all(record["trials"][i]["folder"] == f for i, f in kept.items()), "finished trials keep their folders"
    assert json.loads((folder / "metrics.json").read_text())["trial_statuses"] == {"completed": 4}
    assert (folder / "summary.md").read_text().count("| completed |") == 4
    again = cli("sweep", "--resume", folder)
    assert again.exit_code == 2 and "nothing to resume" in again.stderr and again.stderr.count("error:") == 1


def test_a_killed_pool_worker_is_retried_once_then_failed_and_resume_finishes(
        tmp_path, write_config, cli, kill_hook, uninterrupted):
    count = kill_hook(trial=1, kills=2)  # the trial's worker dies on both tries
    path = write_config(BASE)
    result = cli("sweep", path, *GRID_OPTIONS, "--jobs", "2", "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 1, result.output
    assert count.read_text() == "2", "killed, then killed again on its one retry"
    folder = Path(result.stdout.strip())
    record = read_record(folder)
    statuses = {t["index"]: t["status"] for t in record["trials"]}
    assert statuses == {0: "completed", 1: "failed", 2: "completed", 3: "completed"}, "the others went on"
    assert "its worker process died on each of 2 tries" in record["trials"][1]["message"]
    assert record["executor"] == "process x2"

    resumed = cli("sweep", "--resume", folder)  # the recorded executor (a pool of 2); no kill left
    assert resumed.exit_code == 0, resumed.output
    assert "1 of its 4 runs to run again" in resumed.stdout
    assert trials_of(read_record(folder)) == trials_of(uninterrupted)


def test_a_pool_worker_killed_once_costs_nothing_but_the_retry(tmp_path, write_config, kill_hook, uninterrupted):
    from nnlab.executors import ProcessExecutor

    count = kill_hook(trial=2, kills=1)
    base = config_from_text(BASE, "exp.yaml")
    with ProcessExecutor(2) as pool:
        result = sweep.run_sweep(base, spaces.build_trials(base, spaces.expand(GRID)), pool,
                                 runs_dir=tmp_path / "runs")
    assert count.read_text() == "1"
    assert result.status == "completed", [(o.index, o.status, o.message) for o in result.outcomes]
    assert trials_of(read_record(result.run.path)) == trials_of(uninterrupted)


@pytest.mark.ray
def test_a_killed_ray_worker_is_retried_once_then_failed_and_resume_finishes(
        tmp_path, write_config, cli, kill_hook, uninterrupted):
    """A real local Ray instance (2 CPUs): the task's worker is killed on both tries; Ray runs it
    again once, then the trial is failed with the reason and the others complete."""
    pytest.importorskip("ray")
    from nnlab.executors import RayExecutor

    count = kill_hook(trial=0, kills=2)
    base = config_from_text(BASE, "exp.yaml")
    with RayExecutor(None, cpus=1, num_cpus=2) as executor:
        result = sweep.run_sweep(base, spaces.build_trials(base, spaces.expand(GRID)), executor,
                                 runs_dir=tmp_path / "runs", executor_name="ray",
                                 space={"variants": [], "grid": GRID, "random": {}, "n_random": 0},
                                 executor_options={"executor": "ray", "jobs": 2})
    assert count.read_text() == "2"
    statuses = {o.index: o.status for o in result.outcomes}
    assert statuses == {0: "failed", 1: "completed", 2: "completed", 3: "completed"}
    failed = next(o for o in result.outcomes if o.index == 0)
    assert "its Ray worker died on each of 2 tries" in failed.message, failed.message
    resumed = cli("sweep", "--resume", result.run.path, "--executor", "local")  # any executor: the same figures
    assert resumed.exit_code == 0, resumed.output
    assert trials_of(read_record(result.run.path)) == trials_of(uninterrupted)


def test_resume_refuses_another_config_or_space_with_one_message(tmp_path, write_config, cli):
    folder = interrupted_sweep(tmp_path, write_config)
    other = write_config(BASE.replace("learning_rate: 1.0", "learning_rate: 0.5"), "other.yaml")
    for options, says in [
        (["--set", "training.epochs=4"], "the config is not the sweep's (config.yaml): training.epochs changed"),
        ([other, "--resume"], "optimizer.learning_rate changed"),
        (["--grid", "seed=1,2"], "the parameter space changed ("),
        (["--seeds", "2"], "the seeds changed ("),
        (["--metric", "val_accuracy"], "the metric changed ("),
        (["--kfold"], "the kind of trial (--kfold) changed ("),
        (["--search", "tpe"], "--search belongs to a model-based search, not to a sweep that was not a search"),
        (["--trials", "4"], "--trials belongs to a model-based search"),
    ]:
        words = [*options, folder] if options[-1] == "--resume" else ["--resume", folder, *options]
        result = cli("sweep", *words)
        assert result.exit_code == 2, (options, result.output)
        assert result.stderr.count("error:") == 1 and says in result.stderr, (options, result.stderr)
        assert "Traceback" not in result.stderr
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 3", "epochs: 2"))
    edited = cli("sweep", "--resume", folder)
    assert edited.exit_code == 2 and "config.yaml was edited since the sweep started" in edited.stderr
    assert [t["status"] for t in read_record(folder)["trials"]] == ["completed", "not run", "not run", "not run"]
    assert len(list((tmp_path / "runs").iterdir())) == 2, "nothing ran"


def test_resume_refuses_what_is_not_a_sweep_it_can_finish(tmp_path, write_config, cli):
    nothing = cli("sweep", "--resume", tmp_path / "nowhere")
    assert nothing.exit_code == 2 and "does not exist" in nothing.stderr
    neither = cli("sweep")
    assert neither.exit_code == 2 and "give a CONFIG to sweep, or --resume SWEEP_FOLDER" in neither.stderr
    (tmp_path / "train_run").mkdir()
    not_a_sweep = cli("sweep", "--resume", tmp_path / "train_run")
    assert not_a_sweep.exit_code == 2 and "is not a sweep folder" in not_a_sweep.stderr
    folder = interrupted_sweep(tmp_path, write_config)
    record = read_record(folder)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a sweep whose process still runs on this machine
        from nnlab.store.liveness import host_name, process_start

        (folder / "sweep.json").write_text(json.dumps({**record, "status": "running", "pid": sleeper.pid,
                                                       "host": host_name(),
                                                       "process_start": process_start(sleeper.pid)}))
        running = cli("sweep", "--resume", folder)
        assert running.exit_code == 2 and f"still running (pid {sleeper.pid} on this host)" in running.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    (folder / "sweep.json").write_text(json.dumps({**record, "trials": record["trials"][:2]}))
    edited = cli("sweep", "--resume", folder)
    assert edited.exit_code == 2 and "sweep.json's 2 trials are not the 4" in edited.stderr
    (folder / "sweep.json").write_text("{\"trials\": ")
    damaged = cli("sweep", "--resume", folder)
    assert damaged.exit_code == 2 and "Traceback" not in damaged.stderr and damaged.stderr.count("error:") == 1


def test_a_killed_sweep_process_a_gone_folder_and_failed_trials_all_run_again(tmp_path, write_config, cli,
                                                                         uninterrupted):
    import shutil

    folder = interrupted_sweep(tmp_path, write_config, after=2)
    record = read_record(folder)
    shutil.rmtree(record["trials"][0]["folder"])
    record["trials"][1].update(status="failed", message="its worker process died on each of 2 tries")
    for trial in record["trials"][2:]:
        trial["status"] = "pending"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    # As the sweep's own process leaves it when it is killed outright: running, its process gone.
    record.update(status="running", pid=int(gone.stdout), host=socket.gethostname())
    (folder / "sweep.json").write_text(json.dumps(record))
    result = cli("sweep", "--resume", folder, "--quiet")
    assert result.exit_code == 0, result.output
    assert trials_of(read_record(folder)) == trials_of(uninterrupted)
    assert read_record(folder)["trials"][0]["folder"] != record["trials"][0]["folder"]


def test_a_sweep_with_seeds_resumes_its_repeats_with_the_recorded_seeds(tmp_path, write_config, cli):
    path = write_config(BASE.replace("epochs: 3", "epochs: 1"))
    base = config_from_text(path.read_text(), str(path))
    grid = {"optimizer.learning_rate": [0.1, 1.0]}
    space = {"variants": [], "grid": grid, "random": {}, "n_random": 0}

    def run(name, report=None):
        trials = spaces.build_trials(base, spaces.expand(grid), [3, 5])
        return sweep.run_sweep(base, trials, LocalExecutor(), runs_dir=tmp_path / name, report=report,
                               space=space, seeds=[3, 5])

    whole = run("whole")

    def stop(outcome, total):
        raise Interrupted(signal.SIGINT)

    stopped = run("stopped", stop)
    assert [t["status"] for t in read_record(stopped.run.path)["trials"]] == ["completed"] + ["not run"] * 3
    result = cli("sweep", "--resume", stopped.run.path, "--quiet")
    assert result.exit_code == 0, result.output
    record = read_record(stopped.run.path)
    assert record["seeds"] == [3, 5] and trials_of(record) == trials_of(read_record(whole.run.path))
    def stats(record):
        return [{k: v for k, v in t.items() if k != "folders"} for t in record["trial_stats"]]

    assert stats(record) == stats(read_record(whole.run.path)), "the same repeats, ranked alike"

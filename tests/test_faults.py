"""Faults: interruptions, resuming, failed writes, determinism, concurrency, plugins."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nnlab.config import config_from_text
from nnlab.errors import RunWriteError
from nnlab.interrupts import Interrupted
from nnlab.store.folder import atomic_write

from conftest import SPIRAL, only_run


def stop_at(epoch: int):
    """A progress report that stops training after ``epoch``, as Ctrl-C would."""

    def report(done, epochs, logs, seconds):
        if done == epoch:
            raise Interrupted(signal.SIGINT)

    return report


def test_interrupted_run_keeps_a_checkpoint_and_resumes_to_the_end(tmp_path, cli):
    from nnlab.training import run as training

    # One epoch per call, so the stop falls between epochs (a fused fit stops at its chunk's end: test_fused.py).
    config = config_from_text(SPIRAL.replace("epochs: 5", "epochs: 6, input_pipeline: tf_data"), "exp.yaml")
    result = training.train(config, runs_dir=tmp_path, report=stop_at(3))
    run = result.run.path
    assert result.exit_code == 130
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] == 3 and metrics["checkpoint_epoch"] == 3
    assert (run / "checkpoint.keras").is_file() and not (run / "model.keras").exists()
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 3

    resumed = cli("train", "--resume", run, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.strip() == str(run)  # the same folder
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 6
    lines = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3", "4", "5", "6"]
    assert (run / "model.keras").is_file() and not (run / "checkpoint.keras").exists()
    env = json.loads((run / "env.json").read_text())
    assert env["resumed"][0]["at_epoch"] == 3


def test_resume_refuses_a_changed_config_and_finished_runs(tmp_path, cli, write_config):
    from nnlab.training import run as training

    config = config_from_text(SPIRAL.replace("epochs: 5", "epochs: 1"), "exp.yaml")
    run = training.train(config, runs_dir=tmp_path).run.path
    result = cli("train", "--resume", run, "--set", "training.epochs=9")
    assert result.exit_code == 2 and "cannot be changed on resume" in result.stderr
    result = cli("train", "--resume", run)
    assert result.exit_code == 2 and "already completed" in result.stderr


def test_a_failed_write_marks_the_run_failed_with_a_clear_message(tmp_path, monkeypatch):
    from nnlab.training import run as training
    import keras

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", disk_full)
    config = config_from_text(SPIRAL.replace("epochs: 5", "epochs: 2"), "exp.yaml")
    with pytest.raises(RunWriteError, match="No space left on device") as info:
        training.train(config, runs_dir=tmp_path)
    assert info.value.exit_code == 1
    run = next(tmp_path.iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "No space left" in metrics["message"]


def test_atomic_write_never_leaves_half_a_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write(target, '{"status": "running"}')

    def crash(src, dst):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write(target, '{"status": "completed", "much": "more"}')
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    from nnlab.training import run as training

    config = config_from_text(SPIRAL.replace("batch_size: full", "batch_size: 16"), "exp.yaml")
    first = training.train(config, runs_dir=tmp_path / "a").metrics
    second = training.train(config, runs_dir=tmp_path / "b").metrics
    for part in ("train", "test"):
        assert first[part] == second[part]
    other = training.train(config_from_text(SPIRAL.replace("seed: 0", "seed: 1"), "exp.yaml"),
                           runs_dir=tmp_path / "c").metrics
    assert other["train"] != first["train"], "the seed matters"


def test_a_plugin_module_is_the_only_way_to_add_code(tmp_path, monkeypatch, cli, write_config):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_layers.py").write_text(textwrap.dedent("""
        import keras

        @keras.saving.register_keras_serializable(package="mine")
        class Doubling(keras.layers.Layer):
            def __init__(self, factor=2.0, **kwargs):
                super().__init__(**kwargs)
                self.factor = factor

            def call(self, x):
                return x * self.factor

            def get_config(self):
                return {**super().get_config(), "factor": self.factor}
        """))
    path = write_config(SPIRAL.replace("- Dense: {units: 32", "- Doubling: {factor: 3.0}\n    - Dense: {units: 32")
                        .replace("epochs: 5", "epochs: 1"))
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "--plugin", "my_layers", "-q")
    assert result.exit_code == 0, result.output
    missing = cli("train", path, "--runs-dir", tmp_path / "runs2", "--plugin", "no_such_module")
    assert missing.exit_code == 2 and "--plugin no_such_module" in missing.stderr


def test_a_config_cannot_import_a_module(tmp_path, cli, write_config):
    path = write_config(SPIRAL.replace("- Dense: {units: 32", "- os.system: {command: 'touch hacked'}\n    - Dense: {units: 32"))
    result = cli("validate", path)
    assert result.exit_code == 2 and "unknown layer 'os.system'" in result.stderr
    assert not (tmp_path / "hacked").exists() and not Path("hacked").exists()


#: Twenty processes claim a run folder of one name at one instant (what ``nnlab train`` does first).
CLAIM = """
import sys, time
from datetime import datetime, timezone
from nnlab.store.folder import RunFolder
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
print(RunFolder.create(sys.argv[1], "tiny_spiral", started=datetime(2026, 1, 1, tzinfo=timezone.utc)).path)
"""


def test_twenty_processes_claiming_folders_at_once_get_twenty_folders(tmp_path):
    import time

    runs = tmp_path / "runs"
    start = time.time() + 3  # all of them started and waiting: they claim in the same moment
    processes = [subprocess.Popen([sys.executable, "-c", CLAIM, str(runs), str(start)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(20)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 20, [o[1][-500:] for o in outputs]
    folders = {o[0].strip() for o in outputs}
    assert len(folders) == 20 and len(list(runs.iterdir())) == 20


@pytest.mark.slow
def test_concurrent_trainings_into_one_runs_folder_each_complete_their_own(tmp_path, write_config):
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 1"))
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    processes = [subprocess.Popen([sys.executable, "-m", "nnlab", "train", str(path), "--runs-dir", str(runs), "-q"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(4)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, [o[1][-500:] for o in outputs]
    folders = {o[0].strip() for o in outputs}
    assert len(folders) == 4 and len(list(runs.iterdir())) == 4
    for folder in folders:
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        assert metrics["status"] == "completed" and (Path(folder) / "model.keras").is_file()


def swallow_a_signal_at(epoch: int):
    """A progress report that gets SIGINT after ``epoch`` and drops the exception, as C code
    calling back into Python can (TensorFlow's fast path drops what TensorShape.__len__ raises)."""

    def report(done, epochs, logs, seconds):
        if done == epoch:
            try:
                signal.raise_signal(signal.SIGINT)  # the handler runs at once, in this (main) thread
            except Interrupted:
                pass

    return report


def test_a_stop_signal_whose_exception_was_swallowed_still_stops_the_run(tmp_path):
    from nnlab import interrupts
    from nnlab.training import run as training

    with interrupts.stop_signals():
        with pytest.raises(Interrupted):
            signal.raise_signal(signal.SIGTERM)
        with pytest.raises(Interrupted) as stop:
            interrupts.raise_pending()  # the one above, raised again
        assert stop.value.exit_code == 143
        interrupts.raise_pending()  # raised once: nothing pending now
    # One epoch per call, so the stop falls between epochs (a fused fit stops at its chunk's end: test_fused.py).
    config = config_from_text(SPIRAL.replace("epochs: 5", "epochs: 50, input_pipeline: tf_data"), "exp.yaml")
    result = training.train(config, runs_dir=tmp_path, report=swallow_a_signal_at(3))
    assert result.exit_code == 130
    metrics = json.loads((result.run.path / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] == 3 and metrics["checkpoint_epoch"] == 3
    interrupts.raise_pending()  # the block is over: nothing left pending for later code


def _injected(*args, **kwargs):
    raise RuntimeError("injected fault")


#: Every stage after the run folder exists, where a crash there lands, and what the run then says.
#: (module[:class], attribute, command, fatal): a fatal fault fails the run; the others cost it only that part.
STAGE_FAULTS = {
    "fit": ("nnlab.training.fit:Fit", "run", "train", True),
    "test evaluation": ("nnlab.training.feed:Feed", "evaluate", "train", True),
    "baseline": ("nnlab.training.results", "baseline", "train", True),
    "saving the model": ("nnlab.training.results", "save_model", "train", True),
    "history between stages": ("nnlab.training.run", "write_history_csv", "train", True),
    "recording what ran": ("nnlab.training.run", "_record_execution", "train", True),
    "diagnostics": ("nnlab.training.results", "prediction_diagnostics", "train", False),
    "plots": ("nnlab.training.results", "draw_plots", "train", False),
    "diagnostics figures": ("nnlab.training.results", "draw_diagnostics", "train", False),
    "a fold": ("nnlab.crossval.run", "train_fold", "kfold", True),
    "k-fold summary": ("nnlab.crossval.run", "summarize", "kfold", True),
    "k-fold mean history": ("nnlab.crossval.run", "history_mean_table", "kfold", True),
    "k-fold plots": ("nnlab.crossval.run", "_kfold_plots", "kfold", False),
    "k-fold final model": ("nnlab.training.results", "record_results", "kfold --final", True),
}


@pytest.mark.parametrize("stage", list(STAGE_FAULTS))
def test_a_crash_in_any_stage_after_the_folder_exists_ends_in_an_honest_status(stage, tmp_path, monkeypatch, cli,
                                                                                write_config):
    import importlib

    module, attribute, command, fatal = STAGE_FAULTS[stage]
    module, _, owner = module.partition(":")
    target = importlib.import_module(module)
    monkeypatch.setattr(getattr(target, owner) if owner else target, attribute, _injected)
    kfold = "kfold: {k: 2}\n" if command.startswith("kfold") else ""
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 2") + kfold)
    result = cli(*command.split(), path, "--runs-dir", tmp_path / "runs", "--quiet")
    assert "Traceback" not in result.output + result.stderr
    run = only_run(tmp_path / "runs")
    metrics = json.loads((run / "metrics.json").read_text())
    if fatal:
        assert result.exit_code == 1, result.output + result.stderr
        assert metrics["status"] == "failed" and "injected fault" in metrics["message"], metrics
        assert "injected fault" in (run / "error.txt").read_text()
        assert "injected fault" in result.output + result.stderr
        assert metrics["finished"]
    else:
        assert result.exit_code == 0, result.output + result.stderr
        assert metrics["status"] == "completed"
        assert "injected fault" in (metrics.get("plots_error") or metrics.get("diagnostics_error") or "")


def test_a_stop_between_stages_is_recorded_as_interrupted(tmp_path, monkeypatch, cli, write_config):
    import nnlab.training.run as train_run

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_run, "write_history_csv", ctrl_c)
    result = cli("train", write_config(SPIRAL.replace("epochs: 5", "epochs: 2")), "--runs-dir", tmp_path / "runs",
                 "--quiet")
    assert result.exit_code == 130
    metrics = json.loads((only_run(tmp_path / "runs") / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and "SIGINT" in metrics["message"]
    assert "before any run folder" not in result.stderr


def test_a_run_that_failed_after_training_resumes_without_training_again(tmp_path, monkeypatch, cli, write_config):
    import nnlab.training.results as results
    from nnlab.training.fit import Fit

    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 3"))
    clean = json.loads(cli("train", path, "--runs-dir", tmp_path / "clean", "--json").stdout)
    with monkeypatch.context() as patch:
        patch.setattr(results, "baseline", _injected)
        failed = cli("train", path, "--runs-dir", tmp_path / "runs")
    assert failed.exit_code == 1 and "nnlab train --resume" in failed.stdout
    run = only_run(tmp_path / "runs")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["checkpoint_trained"] is True and metrics["checkpoint_epoch"] == 3
    monkeypatch.setattr(Fit, "run", _injected)  # resuming must not train
    resumed = cli("train", "--resume", run, "--json")
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    metrics = json.loads(resumed.stdout)
    assert metrics["status"] == "completed" and "checkpoint_trained" not in metrics
    assert metrics["test"] == clean["test"] and metrics["baseline"] == clean["baseline"]
    assert not (run / "checkpoint.keras").exists() and (run / "model.keras").is_file()
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 3


def _running_metrics(**changes):
    from nnlab.store.liveness import this_process

    return {"status": "running", "kind": "train", **this_process(), "heartbeat": "2026-01-01T00:00:00+00:00",
            **changes}


def test_a_running_run_is_lost_when_its_process_is_gone_or_silent_elsewhere():
    from datetime import datetime, timedelta, timezone

    from nnlab.store.liveness import LOST_AFTER_SECONDS, lost_reason, still_running

    me = _running_metrics()
    assert lost_reason(me) is None and still_running(me) == f"pid {os.getpid()} on this host"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = _running_metrics(pid=int(dead.stdout), process_start=None)
    assert "on this host is gone" in lost_reason(gone) and still_running(gone) is None
    reused = _running_metrics(process_start=me["process_start"] + 1) if me["process_start"] is not None else gone
    assert lost_reason(reused) is not None  # the pid now names another process
    beat = datetime(2026, 1, 1, tzinfo=timezone.utc)
    elsewhere = _running_metrics(host="another-host", heartbeat=beat.isoformat())
    soon = beat + timedelta(seconds=LOST_AFTER_SECONDS - 1)
    late = beat + timedelta(seconds=LOST_AFTER_SECONDS + 60)
    assert lost_reason(elsewhere, soon) is None and "another-host" in still_running(elsewhere, soon)
    assert lost_reason(elsewhere, late) == "no heartbeat from another-host for 11 minutes"
    assert lost_reason({**gone, "status": "interrupted"}) is None  # only a running run can be lost
    assert lost_reason({"status": "running"}) is None  # written before nnlab recorded its process


def test_the_heartbeat_rewrites_metrics_json_while_the_block_runs(tmp_path, monkeypatch):
    import time

    from nnlab.store.folder import RunFolder
    from nnlab.store.format import RunMetrics
    from nnlab.store import liveness

    run = RunFolder.claim(tmp_path, "beating")
    metrics = RunMetrics(run_id=run.run_id, name="beating", kind="train", dataset="spiral", task="multiclass")
    monkeypatch.setattr(liveness, "HEARTBEAT_SECONDS", 0.05)
    with liveness.beating(run, metrics):
        time.sleep(0.3)
        written = json.loads((run.path / "metrics.json").read_text())  # only the heartbeat wrote it
    assert written["pid"] == os.getpid() and written["host"] == liveness.host_name()
    assert written["heartbeat"] and written["status"] == "running"


def test_a_sigkilled_run_shows_lost_and_resumes_to_the_end(tmp_path, cli, write_config):
    import time

    from conftest import run_nnlab

    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 3000").replace("batch_size: full", "batch_size: 16"))
    runs = tmp_path / "runs"
    process = subprocess.Popen([sys.executable, "-m", "nnlab", "train", str(path), "--runs-dir", str(runs), "-q"],
                               env={**os.environ, "NNLAB_CHECKPOINT_SECONDS": "0.2"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            folders = list(runs.glob("*/metrics.json")) if runs.exists() else []
            try:
                if folders and json.loads(folders[0].read_text()).get("checkpoint_epoch"):
                    break
            except ValueError:
                pass
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    run = only_run(runs)
    recorded = json.loads((run / "metrics.json").read_text())
    assert recorded["status"] == "running" and 0 < recorded["checkpoint_epoch"] < 3000, recorded
    listing = run_nnlab("compare", runs, "--format", "json")
    assert json.loads(listing.stdout)[0]["status"] == "lost", listing.stdout
    assert "on this host is gone" in listing.stderr and f"nnlab train --resume {run}" in listing.stderr
    shown = run_nnlab("show", run)
    assert shown.stdout.split("\n")[1].startswith("lost") and "pid" in shown.stdout
    resumed = cli("train", "--resume", run, "--json")
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    metrics = json.loads(resumed.stdout)
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 3000
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 3000 and [int(line.split(",")[0]) for line in history[1:]] == list(range(1, 3001))
    env = json.loads((run / "env.json").read_text())
    assert env["resumed"][0]["at_epoch"] == recorded["checkpoint_epoch"]


def test_resume_refuses_a_run_that_is_still_running(tmp_path, cli):
    from nnlab.training import run as training

    config = config_from_text(SPIRAL.replace("epochs: 5", "epochs: 2"), "exp.yaml")
    run = training.train(config, runs_dir=tmp_path, report=stop_at(1)).run.path
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, **_running_metrics()}))  # as if this process ran it
    result = cli("train", "--resume", run)
    assert result.exit_code == 2 and "still running (pid" in result.stderr

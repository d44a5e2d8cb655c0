"""MLflow tracking against a real MLflow server this module starts on 127.0.0.1 (SQLite backend
store, local artifact root): runs logged as they train and folders pushed afterwards read back
from MLflow exactly as their run folders hold them; no duplicates; credentials never written."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import SPIRAL, only_run

mlflow = pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The URI of an MLflow tracking server on 127.0.0.1, stopped after the module."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'store.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail("the MLflow server did not start:\n" + (root / "server.log").read_text()[-3000:])
        time.sleep(0.5)
    yield uri
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def runs_of(uri: str, experiment: str) -> dict[str, object]:
    """Every MLflow run of ``experiment`` by its run name (nnlab's run id)."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    return {r.info.run_name: r for r in client.search_runs([found.experiment_id], max_results=1000)}


def history_of(uri: str, run, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in MlflowClient(uri).get_metric_history(run.info.run_id, key))


def read_csv(path: Path) -> dict[str, list[float]]:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    columns = {name: [] for name in header}
    for line in lines[1:]:
        for name, cell in zip(header, line.split(",")):
            columns[name].append(float(cell))
    return columns


def assert_mirrors(uri: str, mlflow_run, folder: Path) -> None:
    """The MLflow run holds the folder's params, per-epoch histories, final figures, status and files."""
    from nnlab.store.reading import flatten

    config = yaml.safe_load((folder / "config.yaml").read_text())
    expected = {key: value if isinstance(value, str) else json.dumps(value) for key, value in flatten(config).items()}
    assert mlflow_run.data.params == expected
    metrics = json.loads((folder / "metrics.json").read_text())
    for part, prefix in (("train", "train_"), ("validation", "validation_"), ("test", "test_")):
        for name, value in (metrics.get(part) or {}).items():
            assert mlflow_run.data.metrics[prefix + name] == value, (part, name)
    for name, value in (metrics.get("baseline") or {}).items():
        if name != "name":
            assert mlflow_run.data.metrics["baseline_" + name] == value
    if (folder / "history.csv").is_file() and metrics["kind"] == "train":
        history = read_csv(folder / "history.csv")
        epochs = [int(e) for e in history.pop("epoch")]
        for key, values in history.items():
            assert history_of(uri, mlflow_run, key) == [(e, v) for e, v in zip(epochs, values) if math.isfinite(v)]
    assert mlflow_run.data.tags["nnlab.run_id"] == folder.name
    assert mlflow_run.data.tags["nnlab.status"] == metrics["status"]
    state = {"completed": "FINISHED", "failed": "FAILED", "diverged": "FAILED", "interrupted": "KILLED"}
    assert mlflow_run.info.status == state[metrics["status"]]
    uploaded = {a.path for a in MlflowClient(uri).list_artifacts(mlflow_run.info.run_id)}
    local = {p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name not in ("checkpoint.keras", "folds")}
    assert uploaded == local


def test_a_run_trained_with_mlflow_reads_back_exactly(server, tmp_path, cli, write_config):
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 12"))
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "--mlflow", server, "--mlflow-experiment", "live",
                 "--quiet")
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout.strip().endswith(only_run(tmp_path / "runs").name)  # MLflow's own links stay off stdout
    folder = only_run(tmp_path / "runs")
    runs = runs_of(server, "live")
    assert list(runs) == [folder.name]
    assert_mirrors(server, runs[folder.name], folder)
    plots = MlflowClient(server).list_artifacts(runs[folder.name].info.run_id, "plots")
    assert {Path(a.path).name for a in plots} == {p.name for p in (folder / "plots").iterdir()}


def test_a_digits_run_trained_with_mlflow_reads_back_exactly(server, tmp_path, cli):
    from conftest import REPO

    result = cli("train", REPO / "configs" / "digits.yaml", "--set", "training.epochs=3", "--runs-dir",
                 tmp_path / "runs", "--mlflow", server, "--mlflow-experiment", "digits", "--quiet")
    assert result.exit_code == 0, result.output + result.stderr
    folder = only_run(tmp_path / "runs")
    assert_mirrors(server, runs_of(server, "digits")[folder.name], folder)


def test_pushed_kfold_run_and_sweep_read_back_nested_and_pushing_again_adds_nothing(server, tmp_path, cli,
                                                                                      write_config):
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 3") + "kfold: {k: 2}\n")
    runs = tmp_path / "runs"
    assert cli("kfold", path, "--runs-dir", runs, "--final", "--quiet").exit_code == 0
    assert cli("sweep", path, "--grid", "optimizer.learning_rate=0.5,1.0", "--set", "training.validation_split=0.2",
               "--runs-dir", runs, "--quiet").exit_code == 0
    kfold = next(p for p in runs.iterdir() if p.name.endswith("_kfold"))
    assert cli("tag", kfold, "lesson=4").exit_code == 0 and cli("note", kfold, "first try").exit_code == 0
    pushed = cli("mlflow", "push", runs, "--uri", server, "--experiment", "pushed")
    assert pushed.exit_code == 0, pushed.output + pushed.stderr
    mirrored = runs_of(server, "pushed")
    assert mirrored[kfold.name].data.tags["tag.lesson"] == "4"
    assert mirrored[kfold.name].data.tags["mlflow.note.content"] == "first try"
    sweep = next(p for p in runs.iterdir() if p.name.endswith("_sweep"))
    trials = [Path(t["folder"]) for t in json.loads((sweep / "sweep.json").read_text())["trials"]]
    assert set(mirrored) == {kfold.name, f"{kfold.name}/fold_1", f"{kfold.name}/fold_2", sweep.name,
                             *(t.name for t in trials)}
    assert_mirrors(server, mirrored[kfold.name], kfold)
    summary = json.loads((kfold / "kfold.json").read_text())
    for name, value in summary["mean"].items():
        assert mirrored[kfold.name].data.metrics[f"validation_{name}"] == value
    for fold in (1, 2):
        child = mirrored[f"{kfold.name}/fold_{fold}"]
        assert child.data.tags["mlflow.parentRunId"] == mirrored[kfold.name].info.run_id
        history = read_csv(kfold / "folds" / f"fold_{fold}" / "history.csv")
        epochs = [int(e) for e in history.pop("epoch")]
        for key, values in history.items():
            assert history_of(server, child, key) == list(zip(epochs, values))
    for trial in trials:
        assert mirrored[trial.name].data.tags["mlflow.parentRunId"] == mirrored[sweep.name].info.run_id
        assert_mirrors(server, mirrored[trial.name], trial)

    def counts():
        client = MlflowClient(server)
        return {name: {key: len(client.get_metric_history(run.info.run_id, key)) for key in run.data.metrics}
                for name, run in runs_of(server, "pushed").items()}

    before = counts()
    again = cli("mlflow", "push", runs, "--uri", server, "--experiment", "pushed")
    assert again.exit_code == 0 and counts() == before


def test_a_run_pushed_while_running_is_updated_on_the_next_push(server, tmp_path, cli, write_config):
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 6"))
    assert cli("train", path, "--runs-dir", tmp_path / "done", "--quiet").exit_code == 0
    done = only_run(tmp_path / "done")
    running = tmp_path / "runs" / done.name
    running.mkdir(parents=True)
    for name in ("config.yaml", "env.json"):
        (running / name).write_bytes((done / name).read_bytes())
    metrics = json.loads((done / "metrics.json").read_text())
    from nnlab.store.liveness import this_process

    partial = {k: v for k, v in metrics.items() if k not in ("train", "validation", "test", "baseline")}
    # Running in a live process (this one), so no reader calls it lost.
    (running / "metrics.json").write_text(json.dumps({**partial, **this_process(), "status": "running"}))
    (running / "history.csv").write_text("\n".join((done / "history.csv").read_text().splitlines()[:4]) + "\n")
    assert cli("mlflow", "push", running, "--uri", server, "--experiment", "growing").exit_code == 0
    first = runs_of(server, "growing")[done.name]
    assert first.info.status == "RUNNING" and len(history_of(server, first, "loss")) == 3
    for entry in done.iterdir():  # the run goes on and completes
        target = running / entry.name
        if entry.is_file():
            target.write_bytes(entry.read_bytes())
    assert cli("mlflow", "push", running, "--uri", server, "--experiment", "growing").exit_code == 0
    mirrored = runs_of(server, "growing")
    assert list(mirrored) == [done.name]
    assert_mirrors(server, mirrored[done.name], running)


def test_an_unreachable_server_is_refused_before_training(tmp_path, cli, write_config):
    port = _free_port()  # nothing listens there
    started = time.perf_counter()
    result = cli("train", write_config(SPIRAL), "--runs-dir", tmp_path / "runs", "--mlflow", f"http://127.0.0.1:{port}")
    assert result.exit_code == 2 and "cannot reach the MLflow tracking server" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
    assert time.perf_counter() - started < 60  # seconds of retries, never minutes


def test_a_server_that_goes_away_mid_run_costs_only_its_metrics(server, tmp_path, cli, write_config, monkeypatch,
                                                               caplog):
    from nnlab import tracking

    calls = {"log": 0}
    original = tracking.MirroredRun.log

    def flaky(self, *args, **kwargs):
        calls["log"] += 1
        if calls["log"] > 2:  # params and tags arrived; then the server went away
            raise ConnectionError("Connection refused")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tracking, "SEND_SECONDS", 0.0)
    monkeypatch.setattr(tracking.MirroredRun, "log", flaky)
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 8"))
    result = cli("train", path, "--runs-dir", tmp_path / "runs", "--mlflow", server, "--mlflow-experiment", "flaky",
                 "--quiet")
    folder = only_run(tmp_path / "runs")
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads((folder / "metrics.json").read_text())["status"] == "completed"
    assert (folder / "model.keras").is_file()
    warned = caplog.text  # the warning goes through logging (stderr outside pytest)
    assert "stopped answering" in warned and "loss (7 epochs)" in warned
    assert f"nnlab mlflow push {folder}" in warned
    monkeypatch.setattr(tracking.MirroredRun, "log", original)
    assert cli("mlflow", "push", folder, "--uri", server, "--experiment", "flaky").exit_code == 0
    assert_mirrors(server, runs_of(server, "flaky")[folder.name], folder)


def test_without_mlflow_installed_the_option_says_how_to_install_it(tmp_path, cli, write_config, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    result = cli("train", write_config(SPIRAL), "--runs-dir", tmp_path / "runs", "--mlflow", "http://127.0.0.1:1")
    assert result.exit_code == 2 and "pip install 'nnlab[mlflow]'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_credentials_never_land_in_the_run_folder_or_the_output(server, tmp_path, cli, write_config, monkeypatch):
    token, password, secret = "tok-9f8e7d6c", "pw-a1b2c3d4", "hunter2-zz"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    uri = server.replace("http://", f"http://student:{password}@")
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 2") + f"tracking: {{mlflow: '{uri}'}}\n")
    result = cli("train", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output + result.stderr
    refused = cli("train", path, "--runs-dir", tmp_path / "runs", "--set", f"tracking.api_token={secret}")
    assert refused.exit_code == 2
    folder = only_run(tmp_path / "runs")
    written = "".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())
    output = result.output + result.stderr + refused.output + refused.stderr
    for value in (token, password, secret):
        assert value not in written and value not in output, value
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["tracking"]["mlflow"].startswith("http://student:***@127.0.0.1")
    report = cli("report", tmp_path / "runs", "-o", tmp_path / "report.html")
    assert report.exit_code == 0, report.output
    page = (tmp_path / "report.html").read_text()
    assert "student:***@" in page and all(value not in page for value in (token, password, secret))
    mirrored = runs_of(server, "nnlab")[folder.name]
    assert password not in json.dumps(mirrored.data.params)
    assert_mirrors(server, mirrored, folder)


def test_tracking_does_not_change_the_group_of_a_config():
    from nnlab.config import config_from_text

    plain = config_from_text(SPIRAL, "a.yaml")
    tracked = config_from_text(SPIRAL + "tracking: {mlflow: 'http://127.0.0.1:5000', experiment: x}\n", "a.yaml")
    assert plain.group_id() == tracked.group_id()


def test_a_sweep_tracked_live_nests_its_trials(server, tmp_path, cli, write_config):
    path = write_config(SPIRAL.replace("epochs: 5", "epochs: 3"))
    result = cli("sweep", path, "--grid", "optimizer.learning_rate=0.5,1.0", "--set", "training.validation_split=0.2",
                 "--runs-dir", tmp_path / "runs", "--mlflow", server, "--mlflow-experiment", "live-sweep", "--quiet")
    assert result.exit_code == 0, result.output + result.stderr
    sweep = next(p for p in (tmp_path / "runs").iterdir() if p.name.endswith("_sweep"))
    trials = [Path(t["folder"]) for t in json.loads((sweep / "sweep.json").read_text())["trials"]]
    mirrored = runs_of(server, "live-sweep")
    assert set(mirrored) == {sweep.name, *(t.name for t in trials)}
    assert mirrored[sweep.name].info.status == "FINISHED"
    for trial in trials:
        assert mirrored[trial.name].data.tags["mlflow.parentRunId"] == mirrored[sweep.name].info.run_id
        assert_mirrors(server, mirrored[trial.name], trial)


def test_an_interrupted_run_is_killed_in_mlflow_and_a_failed_one_failed(server, tmp_path, cli, write_config):
    import signal

    from nnlab.config import config_from_text
    from nnlab.interrupts import Interrupted
    from nnlab.training import run as training

    def stop_at_2(done, epochs, logs, seconds):
        if done == 2:
            raise Interrupted(signal.SIGINT)

    config = config_from_text(SPIRAL, str(tmp_path / "exp.yaml"))
    stopped = training.train(config, runs_dir=tmp_path / "runs", report=stop_at_2).run.path
    diverged = training.train(config.with_overrides(["optimizer.learning_rate=1.0e+30"]), runs_dir=tmp_path / "runs").run.path
    assert cli("mlflow", "push", tmp_path / "runs", "--uri", server, "--experiment", "ended").exit_code == 0
    mirrored = runs_of(server, "ended")
    assert mirrored[stopped.name].info.status == "KILLED"
    assert json.loads((diverged / "metrics.json").read_text())["status"] == "diverged"
    assert mirrored[diverged.name].info.status == "FAILED"
    assert_mirrors(server, mirrored[stopped.name], stopped)

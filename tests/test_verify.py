"""Re-run and verify (issue 17): env.json's provenance, data hashed without a second read,
``nnlab rerun`` and ``nnlab verify``."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, SPIRAL, only_run, run_nnlab

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test hashes into its own cache folder (nnlab.datasets.digests)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=folder,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def npz_config(folder: Path, data: Path, epochs: int = 3) -> Path:
    config = folder / "mine.yaml"
    config.write_text(f"""
name: mine
seed: 0
dataset: {{name: npz, path: {data}}}
model:
  layers:
    - Dense: {{units: 8, activation: relu}}
    - Dense: {{units: 3, activation: softmax}}
optimizer: {{name: adam, learning_rate: 0.01}}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {{epochs: {epochs}, batch_size: 16}}
""".lstrip())
    return config


def write_npz(path: Path, rows: int = 120, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 1)
    np.savez(path, x=x, y=y)


# -- env.json: git, packages, CPU ---------------------------------------------------------

@needs_git
def test_git_state_commit_branch_dirty_and_the_diff_under_the_configs_folder(tmp_path):
    from nnlab.environment import MAX_DIFF_BYTES, git_state

    repo = tmp_path / "repo"
    (repo / "exp").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "trunk")
    config = repo / "exp" / "a.yaml"
    config.write_text("name: a\n")
    (repo / "elsewhere.txt").write_text("x\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    state = git_state(config)
    assert state["commit"] == git(repo, "rev-parse", "HEAD") and state["branch"] == "trunk"
    assert state["dirty"] is False and state["diff"] == "" and state["config_tracked"] is True
    assert Path(state["root"]).resolve() == repo.resolve()

    config.write_text("name: a\nseed: 7\n")
    (repo / "elsewhere.txt").write_text("changed outside the config's folder\n")
    state = git_state(config)
    assert state["dirty"] is True and "+seed: 7" in state["diff"]
    assert "elsewhere" not in state["diff"]  # only the tracked files under the config's folder

    (repo / "exp" / "big.txt").write_text("a\n")
    git(repo, "add", "exp/big.txt")
    git(repo, "commit", "-q", "-m", "two")
    (repo / "exp" / "big.txt").write_text("line of a long change\n" * 10_000)
    state = git_state(config)
    assert state["diff_truncated"] is True and "[diff cut at" in state["diff"]
    assert len(state["diff"].encode()) < MAX_DIFF_BYTES + 200

    untracked = repo / "exp" / "new.yaml"
    untracked.write_text("name: new\n")
    assert git_state(untracked)["config_tracked"] is False


@needs_git
def test_git_state_is_null_outside_a_work_tree_or_without_git(tmp_path, monkeypatch):
    from nnlab.environment import environment, git_state

    config = tmp_path / "plain" / "a.yaml"
    config.parent.mkdir()
    config.write_text("name: a\n")
    assert git_state(config) is None
    assert environment(0, ["nnlab"], config)["git"] is None
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.yaml").write_text("name: a\n")
    assert git_state(repo / "a.yaml")["commit"] is None  # a repository without a commit yet
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert git_state(repo / "a.yaml") is None  # git missing: no git facts, and no failure


def test_a_git_that_does_not_answer_is_given_up_quickly(tmp_path, monkeypatch):
    import time

    from nnlab import environment

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nexec sleep 30\n")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.setattr(environment, "GIT_TIMEOUT_S", 0.5)
    config = tmp_path / "a.yaml"
    config.write_text("name: a\n")
    clock = time.monotonic()
    assert environment.git_state(config) is None
    assert time.monotonic() - clock < 5


def test_environment_records_packages_and_the_cpu():
    from nnlab.environment import environment

    env = environment(0, ["nnlab", "train"])
    packages = {name.lower(): version for name, version in env["packages"].items()}
    assert packages["keras"] == env["keras"] and packages["numpy"] == env["numpy"]
    assert list(env["packages"]) == sorted(env["packages"], key=str.lower)
    assert "cpu_model" in env and env["processor_count"] >= 1
    if Path("/proc/cpuinfo").is_file() and "model name" in Path("/proc/cpuinfo").read_text():
        assert env["cpu_model"]


@needs_git
def test_env_json_of_a_run_records_git_and_every_data_files_sha256(cli, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    data = repo / "data.npz"
    write_npz(data)
    config = npz_config(repo, data, epochs=1)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "experiment")
    runs = tmp_path / "runs"
    result = cli("train", config, "--runs-dir", runs, "-q")
    assert result.exit_code == 0, result.output
    env = json.loads((only_run(runs) / "env.json").read_text())
    assert env["git"]["commit"] == git(repo, "rev-parse", "HEAD") and env["git"]["dirty"] is False
    assert env["data"]["files"] == {str(data.resolve()): hashlib.sha256(data.read_bytes()).hexdigest()}
    assert {"packages", "cpu_model", "processor_count", "gpus", "gpu_names"} <= set(env)


def test_csv_and_npz_files_are_hashed_as_they_are_read(tmp_path):
    from nnlab import datasets

    csv_path = tmp_path / "table.csv"
    rows = ["a,b,label"] + [f"{i % 7},{i % 3}.5,{i % 2}" for i in range(50)]
    csv_path.write_text("\n".join(rows) + "\n")
    loaded = datasets.get("csv").load(path=str(csv_path), target="label")
    assert loaded.extras["files"] == {str(csv_path.resolve()): hashlib.sha256(csv_path.read_bytes()).hexdigest()}
    npz_path = tmp_path / "arrays.npz"
    np.savez_compressed(npz_path, x=np.arange(40, dtype="float32").reshape(20, 2), y=np.arange(20) % 2)
    loaded = datasets.get("npz").load(path=str(npz_path))
    assert loaded.extras["files"] == {str(npz_path.resolve()): hashlib.sha256(npz_path.read_bytes()).hexdigest()}


# -- no second read ----------------------------------------------------------------------------

def bytes_read_by(action) -> int:
    """Bytes this process read (Linux's rchar: every read call, cached or not) while ``action`` ran."""
    def rchar() -> int:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        raise AssertionError("no rchar")

    before = rchar()
    action()
    return rchar() - before


needs_proc_io = pytest.mark.skipif(not Path("/proc/self/io").is_file(), reason="needs Linux's /proc/self/io")


@needs_proc_io
@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_a_user_file_is_read_once_for_its_data_and_its_hash(tmp_path, kind):
    from nnlab import datasets

    if kind == "npz":
        path = tmp_path / "big.npz"
        rng = np.random.default_rng(0)
        np.savez(path, x=rng.normal(size=(100_000, 40)).astype("float32"), y=rng.integers(0, 2, 100_000))
        load = lambda: datasets.get("npz").load(path=str(path))  # noqa: E731
    else:
        path = tmp_path / "big.csv"
        rng = np.random.default_rng(0)
        np.savetxt(path, np.column_stack([rng.normal(size=(30_000, 6)), rng.integers(0, 2, 30_000)]),
                   delimiter=",", fmt="%.6f", header="a,b,c,d,e,f,label", comments="")
        load = lambda: datasets.get("csv").load(path=str(path), target="label")  # noqa: E731
    size = path.stat().st_size
    assert size > 1_500_000
    small = tmp_path / f"small.{kind}"  # imports whatever the loader imports first: those reads are not the file's
    if kind == "npz":
        np.savez(small, x=np.zeros((10, 2), "float32"), y=np.arange(10) % 2)
        datasets.get("npz").load(path=str(small))
    else:
        small.write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
        datasets.get("csv").load(path=str(small), target="label")
    loaded = {}
    read = bytes_read_by(lambda: loaded.update(data=load()))
    assert loaded["data"].extras["files"][str(path.resolve())] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert read < 1.2 * size, f"read {read:,} bytes of a {size:,}-byte file: it was read twice"


@needs_proc_io
def test_a_keras_file_is_hashed_once_then_only_read_by_keras(tmp_path):
    from nnlab.datasets.digests import cached_sha256
    from nnlab.datasets.keras_sets import load_arrays, _via_keras

    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.savez(folder / "mnist.npz", x_train=rng.integers(0, 256, (8000, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 8000, dtype=np.uint8),
             x_test=rng.integers(0, 256, (100, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 10, 100, dtype=np.uint8))
    file = folder / "mnist.npz"
    size = file.stat().st_size

    def load():
        return load_arrays("mnist", _via_keras("mnist", path="mnist.npz"), path=None, data_dir=str(folder))

    first = load()  # hashes the file once (and imports Keras's loader)
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    assert first[3] == {str(file): digest} and cached_sha256(file) == digest
    read = bytes_read_by(load)
    assert read < 1.3 * size, f"read {read:,} bytes of a {size:,}-byte file: it was hashed again"
    with open(file, "r+b") as handle:  # changed in place: hashed again, not taken from the cache
        handle.seek(size - 30)
        handle.write(b"\x00")
    assert cached_sha256(file) is None


# -- rerun -------------------------------------------------------------------------------------

def test_rerun_records_rerun_of_and_applies_set(cli, write_config, tmp_path):
    path = write_config(SPIRAL)
    runs = tmp_path / "runs"
    assert cli("train", path, "--runs-dir", runs, "-q", "--set", "training.epochs=2").exit_code == 0
    original = only_run(runs)
    result = cli("rerun", original, "--set", "training.epochs=3", "--set", "optimizer.learning_rate=0.5")
    assert result.exit_code == 0, result.output
    assert "run folder:" in result.output and "baseline" in result.output  # nnlab train's summary
    new = next(p for p in runs.iterdir() if p != original)
    metrics = json.loads((new / "metrics.json").read_text())
    assert metrics["rerun_of"] == original.name and metrics["epochs_run"] == 3 and metrics["kind"] == "train"
    config = yaml.safe_load((new / "config.yaml").read_text())
    assert config["training"]["epochs"] == 3 and config["optimizer"]["learning_rate"] == 0.5
    assert json.loads((new / "env.json").read_text())["overrides"] == ["training.epochs=3",
                                                                        "optimizer.learning_rate=0.5"]
    assert "rerun_of" not in json.loads((original / "metrics.json").read_text())
    refused = cli("rerun", original, "--set", "training.epoch=3")
    assert refused.exit_code == 2 and "did you mean 'epochs'" in refused.output


def test_rerun_of_a_kfold_run_is_a_kfold_run(cli, write_config, tmp_path):
    path = write_config(SPIRAL)
    runs = tmp_path / "runs"
    assert cli("kfold", path, "--runs-dir", runs, "-q", "--k", "2", "--epochs", "2").exit_code == 0
    original = only_run(runs)
    result = cli("rerun", original, "-q")
    assert result.exit_code == 0, result.output
    new = Path(result.stdout.strip())
    assert new.name.endswith("_kfold") and new.parent == runs
    metrics = json.loads((new / "metrics.json").read_text())
    assert metrics["kind"] == "kfold" and metrics["rerun_of"] == original.name and metrics["k"] == 2
    env = json.loads((new / "env.json").read_text())  # k-fold's env.json records the same provenance
    assert {"packages", "cpu_model", "git", "gpu_names"} <= set(env) and env["data"]["files"] == {}


# -- verify ------------------------------------------------------------------------------------

def test_verify_passes_at_tolerance_0_on_spiral(cli, tmp_path):
    runs = tmp_path / "runs"
    trained = cli("train", REPO / "configs" / "spiral_mlp.yaml", "--runs-dir", runs, "-q",
                  "--set", "training.epochs=30")
    assert trained.exit_code == 0, trained.output
    result = cli("verify", only_run(runs), "--tol", "0")
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "not verified" not in result.output
    for part in ("train", "test"):
        assert part in result.output
    assert len(list(runs.iterdir())) == 1, "without --keep the verification run is not kept"


def test_verify_passes_at_tolerance_0_on_digits_in_a_fresh_process(tmp_path):
    """The original and its verification in two processes, as a user runs them."""
    runs = tmp_path / "runs"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    trained = run_nnlab("train", REPO / "configs" / "digits.yaml", "--runs-dir", runs, "-q",
                        "--set", "training.epochs=4", env=env)
    assert trained.returncode == 0, trained.stderr
    done = run_nnlab("verify", trained.stdout.strip(), "--tol", "0", "--keep", "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is True and report["outside"] == []
    assert {(m["part"], m["metric"]) for m in report["metrics"]} == {
        (part, metric) for part in ("train", "validation", "test") for metric in ("loss", "accuracy")}
    assert all(m["difference"] == 0 for m in report["metrics"])
    kept = Path(report["kept"])
    assert kept.parent == runs and json.loads((kept / "metrics.json").read_text())["rerun_of"] == \
        Path(trained.stdout.strip()).name


def test_verify_fails_naming_the_metric_when_the_data_file_changed(cli, tmp_path):
    data = tmp_path / "data.npz"
    write_npz(data)
    runs = tmp_path / "runs"
    assert cli("train", npz_config(tmp_path, data), "--runs-dir", runs, "-q").exit_code == 0
    original = only_run(runs)
    with np.load(data) as arrays:
        x, y = arrays["x"].copy(), arrays["y"]
    x[:10] *= 3.0  # some values changed, the same shape
    np.savez(data, x=x, y=y)
    result = cli("verify", original, "--tol", "0")
    assert result.exit_code == 1, result.output
    assert "changed since the run" in result.stderr and str(data.resolve()) in result.stderr
    assert "not verified" in result.stdout and "outside the tolerance 0" in result.stdout
    assert "loss" in result.stdout.split("outside the tolerance")[1]
    as_json = cli("verify", original, "--tol", "0", "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["verified"] is False and "train loss" in report["outside"]


def test_verify_warns_about_other_versions_and_changed_or_missing_data(tmp_path):
    from nnlab import rerun
    from nnlab.config import config_from_text

    kept, changed = tmp_path / "kept.npz", tmp_path / "changed.npz"
    write_npz(kept)
    write_npz(changed)
    env = {"nnlab": "0.0.1", "keras": "2.0.0", "backend": "tensorflow", "backend_version": "1.0",
           "data": {"data_dir": None, "files": {str(kept): hashlib.sha256(kept.read_bytes()).hexdigest(),
                                                str(changed): "0" * 64, str(tmp_path / "gone.npz"): "1" * 64}}}
    original = rerun.Original(path=tmp_path, kind="train", config=config_from_text(SPIRAL), metrics={}, env=env)
    lines = rerun.provenance_warnings(original)
    assert any(line.startswith("nnlab ") and "the run used nnlab 0.0.1" in line for line in lines)
    assert any("the run used Keras 2.0.0" in line for line in lines)
    assert any("the run used tensorflow 1.0" in line for line in lines)
    assert [line for line in lines if "changed since the run" in line] == [
        f"{changed}: the data file changed since the run: its SHA-256 is "
        f"{hashlib.sha256(changed.read_bytes()).hexdigest()[:12]}..., the run read {'0' * 12}..."]
    assert any("gone.npz: the data file the run read is not there any more" in line for line in lines)
    assert not any(str(kept) in line for line in lines)


def test_verify_refuses_a_folder_it_cannot_verify(cli, tmp_path):
    runs = tmp_path / "runs"
    config = (REPO / "configs" / "digits.yaml").read_text()

    def folder(name: str, metrics: str | None, with_config: bool = True) -> Path:
        path = runs / name
        path.mkdir(parents=True)
        if metrics is not None:
            (path / "metrics.json").write_text(metrics)
        if with_config:
            (path / "config.yaml").write_text(config)
        return path

    cases = {
        folder("20250101T000000Z_running", json.dumps({"kind": "train", "status": "running"})): "still running",
        folder("20250101T000001Z_damaged", '{"kind": "train", "stat'): "metrics.json is not valid JSON",
        folder("20250101T000002Z_noconfig", json.dumps({"kind": "train", "status": "completed",
                                                        "test": {"loss": 1.0}}), with_config=False): "no config.yaml",
        folder("20250101T000003Z_failed", json.dumps({"kind": "train", "status": "failed"})): "ended failed",
        folder("20250101T000004Z_x_sweep", json.dumps({"kind": "sweep", "status": "completed"})): "sweep folder",
        folder("20250101T000005Z_empty", json.dumps({"kind": "train", "status": "completed"})): "no final metrics",
    }
    for path, words in cases.items():
        result = cli("verify", path)
        assert result.exit_code == 2, (path.name, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], (path.name, lines)
    plain = tmp_path / "plain"
    plain.mkdir()
    result = cli("verify", plain)
    assert result.exit_code == 2 and "not a run folder" in result.stderr
    result = cli("rerun", runs / "20250101T000002Z_noconfig")
    assert result.exit_code == 2 and "no config.yaml" in result.stderr
    assert not list(tmp_path.glob("nnlab-verify-*"))

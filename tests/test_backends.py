"""Keras backends: the config's ``backend`` and ``--backend``, refusals, and what env.json records.

TensorFlow is required and always tested. JAX and PyTorch are tested where their
package is installed (each in a subprocess, since a process cannot switch
backends once Keras is imported) and skipped by name elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from nnlab import backend
from nnlab.config import config_from_text
from nnlab.errors import ConfigError, NnlabError

from conftest import SPIRAL, only_run, run_nnlab

BACKENDS = ["tensorflow", "jax", "torch"]


def test_the_default_backend_is_tensorflow_and_the_others_are_accepted():
    assert config_from_text(SPIRAL).backend == "tensorflow"
    for name in BACKENDS:
        assert config_from_text(SPIRAL, overrides=[f"backend={name}"]).backend == name
    with pytest.raises(ConfigError) as err:
        config_from_text(SPIRAL, overrides=["backend=mxnet"])
    assert err.value.key == "backend" and "'tensorflow', 'jax' or 'torch'" in err.value.message


def test_torch_refuses_more_than_one_step_per_execution():
    with pytest.raises(ConfigError) as err:
        config_from_text(SPIRAL, overrides=["backend=torch", "training.steps_per_execution=8"])
    assert err.value.key == "training.steps_per_execution" and "torch" in err.value.message
    assert config_from_text(SPIRAL, overrides=["backend=torch", "training.steps_per_execution=1"])


def test_use_backend_refuses_unknown_names_and_missing_packages(monkeypatch):
    with pytest.raises(NnlabError, match="unknown Keras backend 'theano'"):
        backend.use_backend("theano", source="--backend", key=None)
    monkeypatch.setattr(backend, "active_backend", lambda: None)  # as before Keras is imported
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jax" else real_find_spec(name, *a))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(NnlabError) as err:
        backend.use_backend("jax", source="--backend", key=None)
    assert "needs the jax package" in str(err.value) and "pip install jax" in str(err.value)
    assert str(err.value).startswith("--backend: ")
    assert backend.os.environ["KERAS_BACKEND"] == "tensorflow", "a refused backend is not set"


def test_use_backend_sets_keras_backend_before_the_import(monkeypatch):
    monkeypatch.setattr(backend, "active_backend", lambda: None)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    backend.use_backend("tensorflow")
    assert backend.os.environ["KERAS_BACKEND"] == "tensorflow"


def test_keras_already_imported_with_another_backend_is_refused(monkeypatch):
    backend.keras()  # this process's Keras runs on TensorFlow
    assert backend.active_backend() == "tensorflow"
    backend.use_backend("tensorflow")  # the same one is fine
    for other in ("jax", "torch"):
        if importlib.util.find_spec(other) is None:
            monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())  # as if installed
        with pytest.raises(NnlabError, match="already imported in this process with the tensorflow backend"):
            backend.use_backend(other, source="experiment.yaml")


def test_cli_backend_option_refuses_a_missing_package_with_exit_2(cli, write_config, tmp_path):
    missing = next((name for name in ("jax", "torch") if importlib.util.find_spec(name) is None), None)
    if missing is None:
        pytest.skip("jax and torch are both installed: no missing backend package to refuse")
    path = write_config(SPIRAL)
    for command in (("train", path), ("kfold", path), ("sweep", path, "--grid", "training.epochs=1,2")):
        result = cli(*command, "--backend", missing, "--runs-dir", tmp_path / "runs")
        assert result.exit_code == 2, result.output
        assert f"needs the {missing} package" in result.output and "pip install" in result.output
    assert not (tmp_path / "runs").exists(), "nothing is written for a refused backend"


def test_backend_cannot_change_on_resume(cli, tmp_path):
    result = cli("train", "--resume", tmp_path, "--backend", "tensorflow")
    assert result.exit_code == 2 and "--backend" in result.output


@pytest.mark.parametrize("name", BACKENDS)
def test_train_on_each_installed_backend_records_it_in_env_json(name, cli, write_config, tmp_path):
    """TensorFlow in this process; JAX and PyTorch in a subprocess (a process keeps its first backend)."""
    package = backend.BACKEND_PACKAGES[name][0]
    pytest.importorskip(package, reason=f"the {name} backend needs the {package} package")
    path = write_config(SPIRAL)
    runs = tmp_path / "runs"
    args = ("train", path, "--backend", name, "--runs-dir", runs, "--set", "training.epochs=2", "--quiet")
    if name == "tensorflow":
        result = cli(*args)
        assert result.exit_code == 0, result.output
    else:
        done = run_nnlab(*args, env={"KERAS_BACKEND": ""}, timeout=600)
        assert done.returncode == 0, done.stderr
    run = only_run(runs)
    env = json.loads((run / "env.json").read_text())
    assert env["backend"] == name and env["backend_version"] == env[package]
    assert env["devices"] and isinstance(env["gpus"], list)
    assert set(env["gpus"]) <= set(env["devices"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 2
    assert metrics["input_pipeline"] == {"tensorflow": "fused", "jax": "fused", "torch": "arrays"}[name]
    assert "backend: " + name in (run / "config.yaml").read_text()


def test_visible_gpus_are_recorded_and_nothing_pins_the_cpu():
    """env.json lists every device TensorFlow sees, GPUs among them, and nnlab hides none."""
    import tensorflow as tf

    from nnlab.environment import environment

    backend.keras()
    env = environment(0, ["nnlab"])
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    assert len(env["gpus"]) == len(gpus) and all(any(g in d for d in env["gpus"]) for g in gpus)
    assert any("CPU" in d for d in env["devices"])
    sources = "\n".join(p.read_text() for p in (Path(backend.__file__).parent).rglob("*.py"))
    for pin in ("CUDA_VISIBLE_DEVICES", "set_visible_devices", "JAX_PLATFORMS"):
        assert pin not in sources, f"nnlab must not hide GPUs ({pin})"


def test_importing_nnlab_and_the_cli_does_not_import_keras():
    probe = ("import sys, nnlab, nnlab.cli, nnlab.training.feed, nnlab.training.run, nnlab.backend; "
             "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="the jax backend needs the jax package")
def test_jax_keeps_its_compiled_programs_and_a_second_run_loads_them(tmp_path):
    """The second run of a config on JAX finds its programs in the cache instead of compiling them."""
    import os
    import subprocess

    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_") and k != "KERAS_BACKEND"}
    env["XDG_CACHE_HOME"] = str(cache)
    # Every program is kept, however fast it compiled: nnlab keeps only those over 0.1 s, and on a loaded
    # machine a program can cross that line in one run and not in the other.
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    config = Path(__file__).resolve().parent.parent / "configs" / "spiral_mlp.yaml"
    programs = []
    for runs in ("first", "second"):
        done = subprocess.run([sys.executable, "-m", "nnlab", "train", str(config), "--backend", "jax", "--runs-dir",
                               str(tmp_path / runs), "--quiet", "--set", "training.epochs=3"],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        programs.append(sorted(p.name for p in (cache / "nnlab" / "jax").iterdir()))
    assert programs[0], "the first run stored its compiled programs"
    assert programs[1] == programs[0], "the second run compiled nothing new: it loaded them"

"""Shared fixtures: run the CLI in-process, and configs written to temporary files."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# A developer's own tracking server must not receive the tests' runs (tests/test_tracking.py starts its own).
for _variable in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_TOKEN"):
    os.environ.pop(_variable, None)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli():
    """Invoke ``nnlab ARGS...`` in this process; returns typer's Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from nnlab.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def write_config(tmp_path):
    """Write YAML text (dedented) to a file in tmp_path and return its path."""

    def write(text: str, name: str = "experiment.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


def only_run(runs: Path) -> Path:
    """The one run folder under ``runs`` (fails the test if there is not exactly one)."""
    folders = [p for p in runs.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def run_nnlab(*args, cwd=None, env=None, **kwargs):
    """Run ``python -m nnlab ARGS`` in a subprocess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "nnlab", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, **kwargs)


def assert_imports_nothing_heavy(code: str) -> None:
    """Run ``code`` in a fresh interpreter and assert it imported none of TensorFlow, Keras,
    matplotlib, scikit-learn or NumPy."""
    import subprocess

    probe = code + ("heavy = sorted({m.split('.')[0] for m in sys.modules} & "
                    "{'tensorflow', 'keras', 'matplotlib', 'sklearn', 'numpy'})\nprint('heavy:', heavy)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout


SPIRAL = """
name: tiny_spiral
seed: 0
dataset: {name: spiral, points_per_class: 50, classes: 3}
model:
  layers:
    - Dense: {units: 32, activation: relu, kernel_regularizer: {L2: {l2: 0.0005}}}
    - Dense: {units: 3, activation: softmax}
optimizer: {name: sgd, learning_rate: 1.0}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 5, batch_size: full}
""".lstrip()


#: The start of a probe script (see :func:`run_probe`): 70 rows of 5 features in 3 classes, a small
#: seeded classifier ``make()``, and ``weights(model)`` as JSON-ready lists. 70 rows in batches of 16:
#: the last batch holds 6.
PROBE_MODELS = """
import json
import numpy as np
import keras

rng = np.random.default_rng(0)
x = rng.normal(size=(70, 5)).astype("float32")
y = ((x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1)).astype("int64")

def make(dropout=0.0, learning_rate=0.1):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(dropout), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

def weights(model):
    return [w.tolist() for w in model.get_weights()]
"""


def run_probe(script: str, backend: str, tmp_path) -> dict:
    """Run ``script`` in a subprocess on ``backend`` (this process's Keras is fixed to one); it prints
    one JSON line, returned here."""
    import json
    import subprocess
    import textwrap

    path = tmp_path / f"probe_{backend}.py"
    path.write_text(textwrap.dedent(script))
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": backend})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``--dist loadgroup``, see pyproject.toml), each test module runs on one
    worker (its module-scoped fixtures, such as the MLflow server, start once), and every test that
    starts a local Ray cluster runs on the same worker, one at a time."""
    for item in items:
        group = "ray" if item.get_closest_marker("ray") else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))

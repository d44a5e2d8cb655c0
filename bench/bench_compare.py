"""How long ``nnlab compare DIR`` takes on 10,000 run folders (target: under 2 s on 2 cores).

Writes N synthetic run folders (metrics.json, config.yaml, history.csv, as
``nnlab train`` writes them; a mix of classifiers, regressors and sweep trials,
plus a few broken folders) into a temporary directory, then times, each as a
subprocess:

- a hand-written reference: a bare Python loop that only opens and parses every
  metrics.json (the floor for any listing that reads the folders);
- ``nnlab compare DIR`` cold (no index yet: it reads every folder and writes
  DIR/.nnlab-index.json) and warm (index up to date), output to a pipe;
- the same after 100 folders changed (the index refreshes just those);
- ``--format csv --sort test_accuracy --filter status=completed``, and a filter on a
  config key (cold: every config.yaml is read once; warm: from the index);
- ``nnlab --help`` start-up.

The files are in the page cache when timed (they were just written); "cold" means
without an index. Usage: python bench/bench_compare.py [--runs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NNLAB = [sys.executable, "-m", "nnlab"]
REFERENCE = """
import json, os, sys
root = sys.argv[1]
rows = []
for entry in os.scandir(root):
    if entry.is_dir() and not entry.name.startswith("."):
        try:
            with open(os.path.join(entry.path, "metrics.json"), encoding="utf-8") as f:
                rows.append(json.load(f))
        except (OSError, ValueError):
            pass
print(len(rows))
"""


#: Which heavy modules ``nnlab compare ARGS`` imports, in one process.
IMPORTS = """
import sys
from nnlab.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
heavy = {"tensorflow", "keras", "jax", "torch", "scipy"}
print(", ".join(sorted({m.split(".")[0] for m in sys.modules} & heavy)) or "none of TensorFlow, Keras, JAX, "
      "PyTorch, SciPy", file=sys.stderr)
"""


def write_runs(root: Path, count: int, seed: int = 0) -> None:
    """``count`` synthetic run folders under ``root`` (about 1 in 1,000 broken)."""
    rng = random.Random(seed)
    for i in range(count):
        day, second = divmod(i, 86_400)
        stamp = f"2025{1 + day // 28:02d}{1 + day % 28:02d}T{second // 3600:02d}{second // 60 % 60:02d}{second % 60:02d}Z"
        regression = i % 5 == 4
        name = "boston" if regression else ("digits" if i % 2 else "spiral_mlp")
        folder = root / f"{stamp}_{name}"
        (folder / "plots").mkdir(parents=True)
        if i % 1000 == 999:  # a truncated metrics.json
            (folder / "metrics.json").write_text('{"run_id": "x", "status": "comp')
            continue
        epochs = rng.randint(5, 40)
        if regression:
            part = lambda: {"loss": rng.uniform(5, 30), "mae": rng.uniform(2, 4)}  # noqa: E731
            baseline = {"name": "linear_regression", "linear_regression_mae": 3.4, "linear_regression_mse": 22.1}
        else:
            part = lambda: {"loss": rng.uniform(0.05, 1), "accuracy": rng.uniform(0.5, 1)}  # noqa: E731
            baseline = {"name": "majority_class", "majority_class_accuracy": 0.1, "shuffled_labels_accuracy": 0.1}
        metrics = {
            "run_id": folder.name, "name": name, "kind": "train",
            "dataset": {"boston": "boston_housing", "digits": "digits", "spiral_mlp": "spiral"}[name],
            "task": "regression" if regression else "multiclass",
            "status": "completed" if i % 50 else "failed", "message": None,
            "started": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}+00:00",
            "finished": None, "wall_time_s": rng.uniform(1, 300), "epochs_planned": 40, "epochs_run": epochs,
            "params": rng.randint(500, 50_000), "train_rows": 1000, "validation_rows": 200, "test_rows": 300,
            "train": part(), "validation": part(), "test": part(),
            "best": {"monitor": "val_loss", "epoch": rng.randint(1, epochs), "value": rng.uniform(0.05, 1)},
            "baseline": baseline, "plots": ["plots/loss.png"],
        }
        if i % 7 == 0:
            metrics.update(sweep_id="20250101T000000Z_grid_sweep", trial=i, params={"optimizer.learning_rate": 0.01})
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (folder / "config.yaml").write_text(
            f"name: {name}\nseed: {i}\ndataset:\n  name: {metrics['dataset']}\nmodel:\n  layers:\n"
            f"  - Dense:\n      units: {rng.choice([16, 32, 64])}\n      activation: relu\n"
            f"  - Dense:\n      units: 10\noptimizer:\n  name: adam\n  learning_rate: {rng.choice([0.001, 0.01])}\n"
            f"loss: mse\nmetrics:\n- mae\ntraining:\n  epochs: 40\n  batch_size: 32\n")
        lines = ["epoch,loss,accuracy,val_loss,val_accuracy"]
        lines += [f"{e},{rng.random()},{rng.random()},{rng.random()},{rng.random()}" for e in range(1, epochs + 1)]
        (folder / "history.csv").write_text("\n".join(lines) + "\n")
    (root / "notes").mkdir()  # a stray directory


def timed(args: list[str], repeat: int = 1) -> tuple[float, subprocess.CompletedProcess]:
    """Best wall time of ``repeat`` runs of a command (stdout to a pipe)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(args, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the warm timings")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nnlab-bench-compare-"))
    root = tmp / "runs"
    try:
        start = time.perf_counter()
        write_runs(root, args.runs)
        print(f"wrote {args.runs:,} run folders in {time.perf_counter() - start:.1f} s ({root})")
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        reference, _ = timed([sys.executable, "-c", REFERENCE, str(root)], args.repeat)
        cold, result = timed([*NNLAB, "compare", str(root)])
        rows = sum(1 for line in result.stdout.splitlines() if line[:8].isdigit())
        warm, _ = timed([*NNLAB, "compare", str(root)], args.repeat)
        # 100 folders change (a metrics.json rewritten): only they are read again.
        for folder in sorted(p for p in root.iterdir() if p.is_dir())[:300:3]:
            path = folder / "metrics.json"
            if path.exists():
                os.utime(path, ns=(time.time_ns(), time.time_ns() + 1))
        changed, _ = timed([*NNLAB, "compare", str(root)])
        csv_sorted, _ = timed([*NNLAB, "compare", str(root), "--format", "csv", "--sort", "test_accuracy",
                               "--filter", "status=completed"], args.repeat)
        config_cold, _ = timed([*NNLAB, "compare", str(root), "--filter", "optimizer.learning_rate=0.01",
                                "--format", "csv"])
        config_warm, _ = timed([*NNLAB, "compare", str(root), "--filter", "optimizer.learning_rate=0.01",
                                "--format", "csv"], args.repeat)
        group = [*NNLAB, "compare", str(root), "--group-by", "model.layers.0.Dense.units"]
        grouped, result = timed(group, args.repeat)
        groups = sum(1 for line in result.stdout.splitlines() if line.strip()[:2].isdigit())
        versus, _ = timed([*group, "--versus", "16"], args.repeat)
        pivot, _ = timed([*NNLAB, "compare", str(root), "--rows", "model.layers.0.Dense.units", "--cols", "dataset"],
                         args.repeat)
        imported = subprocess.run([sys.executable, "-c", IMPORTS, *group[3:]], capture_output=True, text=True)
        help_time, _ = timed([*NNLAB, "--help"], args.repeat)
        print(f"rows listed: {rows:,}; index: {(root / '.nnlab-index.json').stat().st_size / 1e6:.1f} MB")
        print()
        print(f"{'what':58} {'seconds':>8} {'x reference':>12}")
        for label, seconds in [
            ("reference: bare loop parsing every metrics.json", reference),
            ("nnlab compare DIR, cold (no index yet)", cold),
            ("nnlab compare DIR, warm (index up to date)", warm),
            ("nnlab compare DIR, 100 folders changed", changed),
            ("nnlab compare --format csv --sort ... --filter ... (warm)", csv_sorted),
            ("--filter on a config key, cold (reads config.yaml)", config_cold),
            ("--filter on a config key, warm", config_warm),
            (f"--group-by a config key ({groups} rows, warm)", grouped),
            ("--group-by ... --versus 16 (warm; SciPy's tests)", versus),
            ("--rows units --cols dataset (warm)", pivot),
            ("nnlab --help", help_time),
        ]:
            print(f"{label:58} {seconds:8.3f} {seconds / reference:12.2f}")
        print()
        verdict = "PASS" if max(cold, warm) < 2.0 else "FAIL"
        print(f"target: nnlab compare on {args.runs:,} folders under 2 s: {verdict} "
              f"(cold {cold:.2f} s, warm {warm:.2f} s)")
        verdict = "PASS" if max(grouped, versus, pivot) < 2.0 else "FAIL"
        print(f"target: --group-by, --versus and the pivot under 2 s (warm): {verdict}")
        print(f"modules --group-by imported: {(imported.stderr.strip().splitlines() or ['?'])[-1]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""k-fold on Boston housing: the lesson's loop against ``nnlab kfold``, and ``--jobs 2`` against ``--jobs 1``.

Each figure is the end-to-end wall time of a fresh process (interpreter start,
TensorFlow import and all), measured side by side in this one invocation:

(a) the lesson's sequential k-fold loop, written as the lesson writes it (4 folds,
    Dense 64-64-1, rmsprop, mse/mae, batch 16, normalized with the statistics of
    the whole training part before splitting), in its two listings: ``evaluate``
    once per fold (100 epochs), and ``validation_data`` every epoch to record the
    per-epoch validation MAE (what the averaged curve needs); against
    ``nnlab kfold boston`` with its default settings (configs/boston.yaml: 130
    epochs) and with ``--epochs 100``. Target: at most half the lesson's wall time,
    the same mean validation MAE within noise.
(b) ``nnlab kfold boston --epochs 100 --jobs 2`` against ``--jobs 1`` (target:
    at most 0.6), end to end and inside the run (metrics.json's wall_time_s,
    which leaves out interpreter start and the checks before the folder exists).
    One process imports TensorFlow (about 3 s here) whatever --jobs says, so the
    end-to-end ratio cannot go below (start-up + half the folds) / (start-up + folds).
(c) with ``--leak``: the lesson's normalization with whole-training-part
    statistics against statistics of each fold's training rows, same seeds, to
    show what the leak does to the mean validation MAE.

Data: ``--data-dir`` (or NNLAB_DATA_DIR) holding boston_housing.npz (build the
real one with bench/make_boston_npz.py); without one a Boston-shaped synthetic
set (506 x 13) is generated: the timings hold, the MAEs are not Boston's.

(d) with ``--long``: the lesson's 500-epoch listing that validates every epoch (the one
    its smoothed MAE plot comes from) against ``nnlab kfold boston --epochs 500``
    (target: at most 0.1).
Every part also prints the floor (bench/floor.py): the folds' arithmetic at this
machine's measured matmul rate.

Usage: python bench/bench_kfold.py [--data-dir DIR] [--repeat N] [--leak] [--long]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import floor

NNLAB = [sys.executable, "-m", "nnlab"]
REPO = Path(__file__).resolve().parent.parent

LESSON = r'''
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
from keras import layers

path, epochs, per_epoch, normalize, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]

# keras.datasets.boston_housing.load_data, on a local file: shuffle with seed 113, first 80% train.
with np.load(path) as f:
    x, y = f["x"], f["y"]
order = np.arange(len(x))
np.random.RandomState(113).shuffle(order)
cut = int(len(x) * 0.8)
train_data, train_targets = x[order][:cut].copy(), y[order][:cut].copy()

def build_model():
    model = keras.Sequential([
        layers.Dense(64, activation="relu"),
        layers.Dense(64, activation="relu"),
        layers.Dense(1),
    ])
    model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
    return model

def kfold(train_data, train_targets):
    if normalize == "whole":  # the lesson: statistics of the whole training part, before splitting
        mean = train_data.mean(axis=0)
        train_data = train_data - mean
        std = train_data.std(axis=0)
        train_data = train_data / std
    k = 4
    num_val_samples = len(train_data) // k
    all_scores = []
    for i in range(k):
        val_data = train_data[i * num_val_samples: (i + 1) * num_val_samples]
        val_targets = train_targets[i * num_val_samples: (i + 1) * num_val_samples]
        partial_train_data = np.concatenate(
            [train_data[:i * num_val_samples], train_data[(i + 1) * num_val_samples:]], axis=0)
        partial_train_targets = np.concatenate(
            [train_targets[:i * num_val_samples], train_targets[(i + 1) * num_val_samples:]], axis=0)
        if normalize == "fold":  # statistics of this fold's training rows only
            mean, std = partial_train_data.mean(axis=0), partial_train_data.std(axis=0)
            partial_train_data = (partial_train_data - mean) / std
            val_data = (val_data - mean) / std
        model = build_model()
        if per_epoch:
            model.fit(partial_train_data, partial_train_targets, validation_data=(val_data, val_targets),
                      epochs=epochs, batch_size=16, verbose=0)
        else:
            model.fit(partial_train_data, partial_train_targets, epochs=epochs, batch_size=16, verbose=0)
        val_mse, val_mae = model.evaluate(val_data, val_targets, verbose=0)
        all_scores.append(val_mae)
    return all_scores

results = []
for seed in seeds.split(","):
    if seed != "none":
        keras.utils.set_random_seed(int(seed))
    scores = kfold(train_data, train_targets)
    results.append({"seed": seed, "scores": [float(s) for s in scores], "mean_val_mae": float(np.mean(scores))})
print(json.dumps(results))
'''


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a command; its end-to-end wall time and stdout."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def lesson(data: Path, epochs: int, per_epoch: bool, normalize: str = "whole", seeds: str = "none"):
    """The lesson's loop in a fresh process: (wall seconds, [per-seed results])."""
    seconds, out = timed([sys.executable, "-c", LESSON, str(data / "boston_housing.npz"), str(epochs),
                          "1" if per_epoch else "0", normalize, seeds])
    return seconds, json.loads(out.strip().splitlines()[-1])


def nnlab_kfold(data: Path, runs: Path, *args: str) -> tuple[float, dict]:
    """``nnlab kfold boston ARGS`` in a fresh process: (wall seconds, its metrics.json)."""
    seconds, out = timed([*NNLAB, "kfold", "boston", "--data-dir", str(data), "--runs-dir", str(runs),
                          "--quiet", *args])
    folder = Path(out.strip().splitlines()[-1])
    return seconds, json.loads((folder / "metrics.json").read_text())


def synthetic_boston(folder: Path) -> None:
    """A Boston-shaped regression set (506 x 13, targets 5..50) in Keras's npz format."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(506, 13)) * rng.uniform(0.5, 100, size=13)
    y = np.clip(22 + (x / x.std(axis=0)) @ rng.normal(size=13) * 2 + rng.normal(size=506) * 3, 5, 50)
    np.savez(folder / "boston_housing.npz", x=x, y=y)


def best_of(runs: list[tuple[float, dict]]) -> tuple[float, dict]:
    """The fastest of repeated runs (the least disturbed by other load on the machine)."""
    return min(runs, key=lambda r: r[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("NNLAB_DATA_DIR"))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command; the fastest counts")
    parser.add_argument("--leak", action="store_true", help="also measure the normalization leak (c)")
    parser.add_argument("--leak-seeds", default="0,1,2")
    parser.add_argument("--long", action="store_true",
                        help="also the lesson's 500-epoch listing that validates every epoch (d), about 4 minutes")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nnlab-bench-kfold-") as tmp:
        tmp = Path(tmp)
        data = options.data_dir
        if data is None or not (Path(data) / "boston_housing.npz").is_file():
            data = tmp / "data"
            data.mkdir()
            synthetic_boston(data)
            print("data: synthetic Boston-shaped set (no --data-dir with boston_housing.npz): MAEs are not Boston's")
        else:
            print(f"data: {Path(data) / 'boston_housing.npz'}")
        data = Path(data)
        runs = tmp / "runs"
        print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; each figure: fastest of "
              f"{options.repeat}, end to end in a fresh process\n")

        rows = []
        plain = best_of([lesson(data, 100, per_epoch=False) for _ in range(options.repeat)])
        curve = best_of([lesson(data, 100, per_epoch=True) for _ in range(options.repeat)])
        default = best_of([nnlab_kfold(data, runs) for _ in range(options.repeat)])
        hundred = best_of([nnlab_kfold(data, runs, "--epochs", "100") for _ in range(options.repeat)])
        two = best_of([nnlab_kfold(data, runs, "--epochs", "100", "--jobs", "2") for _ in range(options.repeat)])
        final = best_of([nnlab_kfold(data, runs, "--epochs", "100", "--final") for _ in range(options.repeat)])
        # 4 folds of 303 training and 101 validation rows, then the final model on all 404.
        bound = floor.measure(str(REPO / "configs" / "boston.yaml"), (13,), 303, 101)
        final_bound = floor.measure(str(REPO / "configs" / "boston.yaml"), (13,), 404, 0)
        floor_100 = 100 * (4 * bound["floor_s"] + final_bound["floor_s"])

        print("(a) the lesson's loop against nnlab kfold boston")
        rows.append(("lesson loop, 100 epochs, evaluate once per fold", plain[0], plain[1][0]["mean_val_mae"]))
        rows.append(("lesson loop, 100 epochs, validation_data every epoch", curve[0], curve[1][0]["mean_val_mae"]))
        rows.append((f"nnlab kfold boston (default: {default[1]['epochs_planned']} epochs)", default[0],
                     default[1]["validation"]["mae"]))
        rows.append(("nnlab kfold boston --epochs 100", hundred[0], hundred[1]["validation"]["mae"]))
        for label, seconds, mae in rows:
            print(f"  {label:<55} {seconds:7.2f} s   mean val MAE {mae:.3f}")
        for label, reference in (("evaluate once", plain[0]), ("validation every epoch", curve[0])):
            print(f"  ratio nnlab default / lesson ({label}): {default[0] / reference:.2f}   "
                  f"--epochs 100 / lesson ({label}): {hundred[0] / reference:.2f}   (target <= 0.5)")

        print(f"  nnlab kfold boston --epochs 100 --final: {final[0]:.2f} s end to end ({final[1]['wall_time_s']:.2f} s "
              f"in the run, {final[1]['input_pipeline']}), mean val MAE {final[1]['validation']['mae']:.3f}; "
              f"/ lesson (evaluate once): {final[0] / plain[0]:.2f}   (target <= 0.2)")
        print(f"  {floor.describe({**bound, 'epoch_gflop': floor_100 * bound['matmul_gflops'], 'floor_s': floor_100})}"
              f" for the 4 x 100 epochs and the final model's 100; in the run / floor = "
              f"{final[1]['wall_time_s'] / floor_100:,.0f}")

        print("\n(b) nnlab kfold boston --epochs 100: --jobs 2 against --jobs 1")
        print(f"  --jobs 1: {hundred[0]:6.2f} s end to end, {hundred[1]['wall_time_s']:6.2f} s in the run")
        print(f"  --jobs 2: {two[0]:6.2f} s end to end, {two[1]['wall_time_s']:6.2f} s in the run")
        print(f"  ratio jobs 2 / jobs 1: {two[0] / hundred[0]:.2f} end to end, "
              f"{two[1]['wall_time_s'] / hundred[1]['wall_time_s']:.2f} in the run   (target <= 0.6)")
        print(f"  outside the run (interpreter, TensorFlow import, model check, exit): "
              f"{hundred[0] - hundred[1]['wall_time_s']:.2f} s / {two[0] - two[1]['wall_time_s']:.2f} s; "
              f"one process imports TensorFlow whatever --jobs says, so this part bounds the end-to-end ratio")
        same = two[1]["validation"] == hundred[1]["validation"]
        print(f"  same mean validation metrics: {same} ({two[1]['validation']} / {hundred[1]['validation']})")

        if options.long:
            print("\n(d) the lesson's 500-epoch listing, validation_data every epoch (its smoothed MAE curve)")
            long_lesson = lesson(data, 500, per_epoch=True)
            long_nnlab = nnlab_kfold(data, runs, "--epochs", "500")
            print(f"  lesson: {long_lesson[0]:.2f} s, mean val MAE {long_lesson[1][0]['mean_val_mae']:.3f}")
            print(f"  nnlab kfold boston --epochs 500: {long_nnlab[0]:.2f} s ({long_nnlab[1]['wall_time_s']:.2f} s in "
                  f"the run), mean val MAE {long_nnlab[1]['validation']['mae']:.3f}; / lesson: "
                  f"{long_nnlab[0] / long_lesson[0]:.2f}   (target <= 0.1)")
            print(f"  floor of the 4 x 500 epochs: {500 * 4 * bound['floor_s']:.4f} s; in the run / floor = "
                  f"{long_nnlab[1]['wall_time_s'] / (500 * 4 * bound['floor_s']):,.0f}")

        if options.leak:
            print(f"\n(c) the lesson's normalization leak: mean val MAE per seed ({options.leak_seeds}), 100 epochs")
            _, whole = lesson(data, 100, per_epoch=False, normalize="whole", seeds=options.leak_seeds)
            _, fold = lesson(data, 100, per_epoch=False, normalize="fold", seeds=options.leak_seeds)
            for w, f in zip(whole, fold):
                print(f"  seed {w['seed']}: whole-training-part statistics {w['mean_val_mae']:.3f}, "
                      f"each fold's own {f['mean_val_mae']:.3f} (difference {w['mean_val_mae'] - f['mean_val_mae']:+.3f})")
            mw = statistics.mean(w["mean_val_mae"] for w in whole)
            mf = statistics.mean(f["mean_val_mae"] for f in fold)
            print(f"  mean over seeds: whole {mw:.3f}, per fold {mf:.3f} (difference {mw - mf:+.3f})")


if __name__ == "__main__":
    main()

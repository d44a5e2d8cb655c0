"""IMDB end to end: the lesson script against ``nnlab train configs/imdb.yaml`` on the same data.

    python bench/bench_imdb.py [--data-dir DIR] [--repeat 1] [--epochs 20]

Data (no network): an imdb.npz in the format Keras downloads, written into
``--data-dir`` when it has none (default: a temporary folder): 25,000 training and
25,000 test reviews as object arrays of Python lists of word ranks (1 = the most
frequent word; ``keras.datasets.imdb.load_data`` adds the start marker 1, shifts the
ranks by 3 and turns ranks beyond num_words into 2, as it does for the real file).
Review lengths are log-normal like IMDB's (median about 180 words, mean about 230,
at most 2,494); ranks are Zipf-distributed (exponent 1.2 over 88,584 words: about 95%
of the words fall below 10,000, as in the real reviews). Each review is positive or
negative, and a few per cent of its words come from a set of 300 words of its own
sentiment, fewer from the other's, so the label depends on the words and the
validation accuracy means something (this model reaches about 0.85 at its best
epoch and, overfitting, about 0.80 after 20; on the real reviews about 0.89 and 0.87).

Measured, each in a fresh process, one after the other (interleaved when repeated):

- the lesson script as the lesson writes it (``load_data(num_words=10000)``, the
  per-element loop multi-hot into float64, Dense 16-16-1 relu/sigmoid, rmsprop,
  binary_crossentropy, the first 10,000 training reviews held out, batch 512, 20
  epochs, ``fit`` with ``validation_data``); the one line added points Keras's
  download at the local file;
- ``nnlab train configs/imdb.yaml --data-dir DIR --runs-dir TMP`` (which also
  evaluates train, validation and test, computes the baseline, saves the model and
  draws the plots).

Each: end-to-end wall time (start to exit, interpreter and TensorFlow import
included), peak resident memory of that process (``os.wait4``'s ru_maxrss), and
the validation accuracy after the last epoch. Targets (issue 8): nnlab at least 2x
faster, at most 1/3 of the peak memory, the same validation accuracy within noise
(here: within 0.01).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

import floor
from common import NNLAB, REPO, machine_line, mib, run_child

#: Published imdb.npz: ranks 1..88,584 (the word index has 88,584 words).
VOCABULARY = 88_584
ROWS = 25_000
ACCURACY_NOISE = 0.01

LESSON = r'''
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
from keras import layers
from keras.datasets import imdb

import keras.src.datasets.imdb as _imdb_module  # the one added line: Keras reads the local file
_imdb_module.get_file = lambda *args, **kwargs: sys.argv[1]
epochs = int(sys.argv[2])

(train_data, train_labels), (test_data, test_labels) = imdb.load_data(num_words=10000)

def vectorize_sequences(sequences, dimension=10000):
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        for j in sequence:
            results[i, j] = 1.
    return results

x_train = vectorize_sequences(train_data)
x_test = vectorize_sequences(test_data)
y_train = np.asarray(train_labels).astype("float32")
y_test = np.asarray(test_labels).astype("float32")

model = keras.Sequential([
    layers.Dense(16, activation="relu"),
    layers.Dense(16, activation="relu"),
    layers.Dense(1, activation="sigmoid")
])
model.compile(optimizer="rmsprop",
              loss="binary_crossentropy",
              metrics=["accuracy"])

x_val = x_train[:10000]
partial_x_train = x_train[10000:]
y_val = y_train[:10000]
partial_y_train = y_train[10000:]

history = model.fit(partial_x_train,
                    partial_y_train,
                    epochs=epochs,
                    batch_size=512,
                    validation_data=(x_val, y_val))
print(json.dumps({"val_accuracy": history.history["val_accuracy"], "val_loss": history.history["val_loss"]}))
'''


def write_imdb_like(path: Path, seed: int = 0, rows: int = ROWS, exponent: float = 1.2, sentiment_words: int = 300,
                    own_rate: float = 0.05, other_rate: float = 0.025) -> None:
    """An imdb.npz in Keras's published format, with word-dependent labels (see the module docstring).

    Args:
        path: the file to write.
        seed: the generator's seed.
        rows: reviews in each of the training and the test part.
        exponent: the Zipf exponent of the word ranks.
        sentiment_words: words in each of the positive and the negative set.
        own_rate, other_rate: chance that a word is drawn from the review's own
            sentiment set, or from the other set.
    """
    rng = np.random.default_rng(seed)
    weights = np.arange(1, VOCABULARY + 1, dtype=np.float64) ** -exponent
    weights /= weights.sum()
    # Sentiment words among the frequent-but-not-stop words, as "great" and "worst" are.
    chosen = rng.choice(np.arange(20, 5000), size=2 * sentiment_words, replace=False).reshape(2, sentiment_words)
    arrays = {}
    for part in ("train", "test"):
        labels = rng.integers(0, 2, size=rows)
        lengths = np.clip(rng.lognormal(mean=5.2, sigma=0.7, size=rows).astype(np.int64), 10, 2494) - 1
        total = int(lengths.sum())
        words = rng.choice(VOCABULARY, size=total, p=weights) + 1
        word_label = np.repeat(labels, lengths)
        draw = rng.random(total)
        own = draw < own_rate
        other = (draw >= own_rate) & (draw < own_rate + other_rate)
        pick = rng.integers(0, sentiment_words, size=total)
        words[own] = chosen[word_label[own], pick[own]]
        words[other] = chosen[1 - word_label[other], pick[other]]
        sequences = np.empty(rows, dtype=object)
        for i, sequence in enumerate(np.split(words, np.cumsum(lengths)[:-1])):
            sequences[i] = sequence.tolist()
        arrays[f"x_{part}"], arrays[f"y_{part}"] = sequences, labels.astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def lesson(data: Path, epochs: int) -> dict:
    """The lesson script in a fresh process."""
    child = run_child([sys.executable, "-c", LESSON, str(data / "imdb.npz"), str(epochs)]).check("the lesson script")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return {"seconds": child.seconds, "rss": child.max_rss_bytes, "val_accuracy": result["val_accuracy"][-1],
            "best_val_accuracy": max(result["val_accuracy"])}


def nnlab(data: Path, runs: Path, epochs: int, extra: list[str]) -> dict:
    """``nnlab train configs/imdb.yaml`` in a fresh process."""
    before = set(runs.iterdir()) if runs.is_dir() else set()
    command = [*NNLAB, "train", "configs/imdb.yaml", "--data-dir", str(data), "--runs-dir", str(runs),
               "--set", f"training.epochs={epochs}", *extra]
    child = run_child(command).check("nnlab train")
    folder, = set(runs.iterdir()) - before
    metrics = json.loads((folder / "metrics.json").read_text())
    from nnlab.store.folder import read_history_csv

    curve = read_history_csv(folder / "history.csv")["val_accuracy"]
    return {"seconds": child.seconds, "rss": child.max_rss_bytes, "val_accuracy": metrics["validation"]["accuracy"],
            "best_val_accuracy": max(curve), "inside_s": metrics["wall_time_s"], "fit_s": metrics.get("fit_time_s"),
            "train_rows": metrics["train_rows"], "validation_rows": metrics["validation_rows"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="folder with (or to receive) the generated imdb.npz")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the median time counts")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--nnlab-only", action="store_true", help="skip the lesson script (for trying levers)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra --set for nnlab train (levers), repeatable")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="nnlab-bench-imdb-") as tmp:
        data = args.data_dir or Path(tmp) / "data"
        if not (data / "imdb.npz").is_file():
            write_imdb_like(data / "imdb.npz")
        runs = Path(tmp) / "runs"
        print(f"machine: {machine_line()}")
        print(f"data: {data / 'imdb.npz'}; {args.epochs} epochs; {args.repeat} run(s) of each, median time, "
              "max memory; every figure from a fresh process, end to end\n")
        extra = [item for kv in args.overrides for item in ("--set", kv)]
        results: dict[str, list[dict]] = {"lesson script": [], "nnlab train": []}
        for _ in range(args.repeat):  # interleaved, so that neither gets the quieter minutes
            if not args.nnlab_only:
                results["lesson script"].append(lesson(data, args.epochs))
            results["nnlab train"].append(nnlab(data, runs, args.epochs, extra))

    summary = {label: {"seconds": statistics.median(r["seconds"] for r in runs_),
                       "rss": max(r["rss"] for r in runs_),
                       "val_accuracy": statistics.mean(r["val_accuracy"] for r in runs_),
                       "best_val_accuracy": statistics.mean(r["best_val_accuracy"] for r in runs_)}
               for label, runs_ in results.items() if runs_}
    print(f"{'':<15} {'wall s':>8} {'peak RSS MiB':>13} {'val acc (last)':>15} {'val acc (best)':>15}")
    for label, s in summary.items():
        print(f"{label:<15} {s['seconds']:>8.1f} {mib(s['rss']):>13} {s['val_accuracy']:>15.4f} "
              f"{s['best_val_accuracy']:>15.4f}")
    inside = statistics.median(r["inside_s"] for r in results["nnlab train"])
    first = results["nnlab train"][0]
    print(f"(nnlab's metrics.json wall_time_s, the fit and the results: {inside:.1f} s)")
    if first["fit_s"] is not None:
        fit_s = statistics.median(r["fit_s"] for r in results["nnlab train"])
        bound = floor.measure(str(REPO / "configs" / "imdb.yaml"), (10000,), first["train_rows"],
                              first["validation_rows"])
        print(f"(the fit alone, fit_time_s: {fit_s:.1f} s; {floor.describe(bound, args.epochs)} for the "
              f"{args.epochs} epochs; fit / floor = {fit_s / (bound['floor_s'] * args.epochs):.1f})")
    if "lesson script" not in summary:
        return 0
    ref, ours = summary["lesson script"], summary["nnlab train"]
    speed = ref["seconds"] / ours["seconds"]
    memory = ours["rss"] / ref["rss"]
    gap = ours["val_accuracy"] - ref["val_accuracy"]
    print(f"\nspeed-up lesson / nnlab: {speed:.2f}x (target >= 2x: {'met' if speed >= 2 else 'NOT met'})")
    print(f"peak memory nnlab / lesson: {memory:.3f} = 1/{1 / memory:.1f} "
          f"(target <= 1/3: {'met' if memory <= 1 / 3 else 'NOT met'})")
    print(f"validation accuracy nnlab - lesson: {gap:+.4f} (target within {ACCURACY_NOISE}: "
          f"{'met' if abs(gap) <= ACCURACY_NOISE else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())

"""multi_hot against the lesson's loop: time and peak memory on 25,000 IMDB-length reviews.

    python bench/bench_multi_hot.py [--rows 25000] [--num-words 10000] [--processes 3]

The data is generated, no network: review lengths drawn like IMDB's (log-normal,
median about 180 words, mean about 230, at most 2,494), word ranks Zipf-distributed,
encoded as ``keras.datasets.imdb.load_data(num_words=10000)`` returns them (an
object array of Python lists, start character 1, out-of-vocabulary 2, ranks + 3).

Each approach runs in ``--processes`` fresh processes, one after the other. In
each, the first call is what a script pays (it vectorizes once, into memory the
process has never touched: the page faults of 2 GB of fresh float64 are most of
the lesson's "about 6 s"); a second call in the same process shows the cost on
memory already touched. Both are timed without tracemalloc; a third, untimed call
measures the peak of memory allocated during a call (tracemalloc, which numpy
reports to). Printed: the median of each, that peak, the growth of resident
memory in the first call, and nnlab's figures as fractions of the loop's. The
issue's target: at most 1/20 of the loop's time and 1/4 of its memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

APPROACHES = {
    "lesson loop (float64)": "lesson",
    "nnlab multi_hot (uint8, as nnlab trains)": "nnlab",
    "nnlab multi_hot (float32)": "nnlab_float32",
}


def imdb_like(rows: int, num_words: int, seed: int = 0) -> np.ndarray:
    """Word-index sequences shaped like IMDB's, as Keras's loader returns them."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=5.2, sigma=0.7, size=rows).astype(int), 10, 2494)
    out = np.empty(rows, dtype=object)
    for i, n in enumerate(lengths):
        words = rng.zipf(1.07, size=n) + 3  # rank 1 is the most frequent word; Keras adds index_from = 3
        words[words >= num_words] = 2  # out of vocabulary
        out[i] = [1] + words.tolist()
    return out


def lesson_vectorize(sequences, dimension=10000):
    """The lesson's listing, verbatim."""
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        for j in sequence:
            results[i, j] = 1.
    return results


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(approach: str, rows: int, num_words: int) -> dict:
    """Time and memory of one approach in this fresh process: a first call, then a second."""
    from nnlab.preprocessing import multi_hot

    sequences = imdb_like(rows, num_words)
    run = {"lesson": lambda: lesson_vectorize(sequences, num_words),
           "nnlab": lambda: multi_hot(sequences, num_words, dtype="uint8"),
           "nnlab_float32": lambda: multi_hot(sequences, num_words, dtype="float32")}[approach]
    times = []
    before = rss_bytes()
    for call in range(2):  # timed without tracemalloc, whose bookkeeping of every allocation would be timed too
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
        if call == 0:  # the high-water mark of resident memory is only fresh in the first call
            growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
            checksum = [list(result.shape), int(result.sum())]
        del result
    tracemalloc.start()  # a third call, untimed, for the peak of memory allocated during a call
    result = run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return {"first": times[0], "second": times[1], "peak": peak, "rss_growth": growth, "checksum": checksum,
            "words": int(sum(len(s) for s in sequences))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=25000)
    parser.add_argument("--num-words", type=int, default=10000)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per approach")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.num_words)))
        return 0

    print(f"{args.rows:,} IMDB-length sequences, num_words {args.num_words:,}, {args.processes} fresh processes "
          f"per approach; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    results: dict[str, list[dict]] = {label: [] for label in APPROACHES}
    for _ in range(args.processes):
        for label, approach in APPROACHES.items():  # interleaved, so that no approach gets a quieter machine
            done = subprocess.run([sys.executable, __file__, "--worker", approach, "--rows", str(args.rows),
                                   "--num-words", str(args.num_words)], capture_output=True, text=True, check=True)
            results[label].append(json.loads(done.stdout.strip().splitlines()[-1]))

    def summary(runs: list[dict]) -> dict:
        return {"first": statistics.median(r["first"] for r in runs),
                "second": statistics.median(r["second"] for r in runs),
                "peak": max(r["peak"] for r in runs), "rss": max(r["rss_growth"] for r in runs)}

    figures = {label: summary(runs) for label, runs in results.items()}
    ref = figures["lesson loop (float64)"]
    words = results["lesson loop (float64)"][0]["words"]
    print(f"{words:,} words in all (mean {words / args.rows:.0f} per sequence); median seconds; "
          "ratio = approach / lesson loop")
    print(f"{'approach':<42} {'1st call s':>10} {'ratio':>7} {'2nd call s':>10} {'ratio':>7} {'peak MiB':>9} "
          f"{'ratio':>7} {'RSS +MiB':>9}")
    for label, f in figures.items():
        print(f"{label:<42} {f['first']:>10.3f} {'1/' + format(ref['first'] / f['first'], '.1f'):>7} "
              f"{f['second']:>10.3f} {'1/' + format(ref['second'] / f['second'], '.1f'):>7} "
              f"{f['peak'] / 2**20:>9.0f} {'1/' + format(ref['peak'] / f['peak'], '.1f'):>7} {f['rss'] / 2**20:>9.0f}")
        assert all(r["checksum"] == results["lesson loop (float64)"][0]["checksum"] for r in results[label]), \
            "every approach sets the same ones"
    nnlab = figures["nnlab multi_hot (uint8, as nnlab trains)"]
    print(f"target for nnlab as it trains: time <= 1/20 of the loop's: "
          f"{'met' if nnlab['first'] <= ref['first'] / 20 else 'NOT met'} on the first call, "
          f"{'met' if nnlab['second'] <= ref['second'] / 20 else 'NOT met'} on the second; "
          f"memory <= 1/4: {'met' if nnlab['peak'] <= ref['peak'] / 4 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

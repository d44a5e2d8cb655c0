"""How long ``nnlab report`` takes, and how big its file is, for 100 and 1,000 runs (targets:
100 runs under 5 s and at most 5 MB; 1,000 runs under 30 s).

Writes synthetic run folders as bench_compare.py does (metrics.json, config.yaml,
history.csv), each with one picture (plots/test_predictions.png: a real matplotlib figure of
the size nnlab draws, about 40 KB), then times, each as a subprocess:

- the floor: a bare Python loop that reads every metrics.json and history.csv and
  base64-encodes every picture (what any single-file report must at least do);
- ``nnlab report DIR -o FILE`` (the JavaScript bundle already cached, as after a first report);
- the same with ``--group-by model.layers.0.Dense.units``.

Usage: python bench/bench_report.py [--runs 100,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_compare import write_runs  # noqa: E402

NNLAB = [sys.executable, "-m", "nnlab"]
FLOOR = """
import base64, json, os, sys
root = sys.argv[1]
total = 0
for entry in os.scandir(root):
    if not entry.is_dir() or entry.name.startswith("."):
        continue
    for name in ("metrics.json", "history.csv"):
        try:
            with open(os.path.join(entry.path, name), encoding="utf-8") as f:
                total += len(f.read())
        except OSError:
            pass
    picture = os.path.join(entry.path, "plots", "test_predictions.png")
    if os.path.exists(picture):
        with open(picture, "rb") as f:
            total += len(base64.b64encode(f.read()))
print(total)
"""


def picture(path: Path) -> None:
    """A figure like nnlab's test_predictions.png (a grid of images with bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(3, 10, figsize=(15, 5))
    for i, ax in enumerate(axes.flat):
        if i % 2:
            ax.bar(range(10), rng.random(10))
        else:
            ax.imshow(rng.random((28, 28)) ** 3, cmap="binary")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(path, dpi=100)
    plt.close(fig)


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="100,1000", help="comma-separated counts")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nnlab-bench-report-"))
    try:
        figure = tmp / "figure.png"
        picture(figure)
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; picture {figure.stat().st_size / 1e3:.0f} KB")
        # The first report makes and caches the JavaScript bundle; it is not what is timed.
        warm = tmp / "warm"
        write_runs(warm, 3)
        subprocess.run([*NNLAB, "report", str(warm), "-o", str(tmp / "warm.html")], capture_output=True, check=True)
        print(f"\n{'runs':>6} {'floor s':>8} {'report s':>9} {'x floor':>8} {'grouped s':>10} {'MB':>6}  target")
        for count in [int(c) for c in args.runs.split(",")]:
            root = tmp / f"runs{count}"
            write_runs(root, count)
            for folder in root.iterdir():
                path = folder / "metrics.json"
                try:
                    metrics = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue  # the few damaged folders bench_compare writes
                (folder / "plots").mkdir(exist_ok=True)
                shutil.copy(figure, folder / "plots" / "test_predictions.png")
                metrics["plots"] = ["plots/test_predictions.png"]
                path.write_text(json.dumps(metrics))
            floor = timed([sys.executable, "-c", FLOOR, str(root)])
            out = tmp / f"report{count}.html"
            seconds = timed([*NNLAB, "report", str(root), "-o", str(out)])
            size = out.stat().st_size / 1e6
            grouped = timed([*NNLAB, "report", str(root), "-o", str(tmp / "g.html"), "--group-by",
                             "model.layers.0.Dense.units"])
            limit = 5.0 if count <= 100 else 30.0
            verdict = "PASS" if max(seconds, grouped) < limit and (count > 100 or size <= 5) else "FAIL"
            print(f"{count:>6} {floor:8.2f} {seconds:9.2f} {seconds / floor:8.1f} {grouped:10.2f} {size:6.2f}  "
                  f"{'< 5 s, <= 5 MB' if count <= 100 else '< 30 s'}: {verdict}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

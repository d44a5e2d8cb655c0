"""Re-measure every figure of the README's "Results of the example configs" table.

Each row of that table names a command and states figures in words ("training
accuracy 0.4933 (test 0.5233)", "test MAE 2.53 (LinearRegression 3.46)"). This
script runs each command in a fresh process, reads the run's metrics.json, and
prints the stated figure beside the measured one, rounded as the README rounds it.
tests/test_readme.py runs the rows that need no data files and no minutes.

    python bench/readme_figures.py                    # the rows that run offline in seconds
    python bench/readme_figures.py --data-dir DIR     # and the rows that need DIR (Boston: bench/make_boston_npz.py DIR)
    python bench/readme_figures.py --all --data-dir DIR   # spiral_mlp's 10,000 epochs too
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: How the README words a figure, and where metrics.json keeps it.
STATED = [
    (r"training accuracy (\d+\.\d+)", ("train", "accuracy")),
    (r"\(test (\d+\.\d+)\)", ("test", "accuracy")),
    (r"test accuracy (\d+\.\d+)", ("test", "accuracy")),
    (r"majority class (\d+\.\d+)", ("baseline", "majority_class_accuracy")),
    (r"test MAE (\d+\.\d+)", ("test", "mae")),
    (r"LinearRegression (\d+\.\d+)", ("baseline", "linear_regression_mae")),
]
#: Rows that take minutes (run with --all).
SLOW = ("spiral_mlp",)


def results_rows(readme: Path = REPO / "README.md") -> list[tuple[str, str]]:
    """``(command, measured cell)`` of each row of the README's results table."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Results of the example configs", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`nnlab "):
            rows.append((re.match(r"`([^`]*)`", cells[0]).group(1), cells[2]))
    return rows


def stated_figures(cell: str) -> dict[tuple[str, str], str]:
    """The figures a measured cell states, as written (``0.9694``), by their place in metrics.json.

    Only the cell's first sentence counts: what follows a ';' is about another backend or setting.
    """
    first = cell.split(";")[0]
    found: dict[tuple[str, str], str] = {}
    for pattern, place in STATED:
        match = re.search(pattern, first)
        if match and place not in found:
            found[place] = match.group(1)
    return found


def run_command(command: str, runs_dir: Path, data_dir: Path | None) -> dict:
    """Run one README command (``nnlab ...``) in a fresh process; returns the run's metrics.json."""
    words = shlex.split(command)
    if "DIR" in words:
        if data_dir is None:
            raise LookupError(f"{command}: needs --data-dir")
        words[words.index("DIR")] = str(data_dir)
    done = subprocess.run([sys.executable, "-m", "nnlab", *words[1:], "--runs-dir", str(runs_dir), "--json"],
                          capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def measured(metrics: dict, place: tuple[str, str], written: str) -> str:
    """The metrics.json figure at ``place``, rounded to as many decimals as ``written`` has."""
    value = (metrics.get(place[0]) or {}).get(place[1])
    if value is None:
        return "-"
    decimals = len(written.split(".")[1]) if "." in written else 0
    return f"{value:.{decimals}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="folder of Keras dataset files (boston_housing.npz)")
    parser.add_argument("--all", action="store_true", help="also the rows that take minutes")
    args = parser.parse_args()
    mismatches = 0
    with tempfile.TemporaryDirectory(prefix="nnlab-readme-") as tmp:
        print("| command | figure | README | measured |\n|---|---|---|---|")
        for i, (command, cell) in enumerate(results_rows()):
            if any(name in command for name in SLOW) and not args.all:
                print(f"| `{command}` | (takes minutes: --all) | | |")
                continue
            try:
                metrics = run_command(command, Path(tmp) / str(i), args.data_dir)
            except LookupError as err:
                print(f"| `{command}` | ({err}) | | |")
                continue
            for place, written in stated_figures(cell).items():
                got = measured(metrics, place, written)
                mismatches += got != written
                mark = "" if got == written else "  **differs**"
                print(f"| `{command}` | {'.'.join(place)} | {written} | {got}{mark} |")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

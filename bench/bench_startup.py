"""Start-up time of ``nnlab --help`` and ``nnlab compare``, and proof that neither imports TensorFlow.

    python bench/bench_startup.py [--repeat 9]

Each command runs ``--repeat`` times in a fresh process (the installed ``nnlab``
script, output to a pipe); the median wall time is printed, beside the floor of
any Python command-line tool: a bare ``python -c pass``. ``nnlab compare`` runs on
an empty runs folder and on one of 100 synthetic run folders (as ``nnlab train``
writes them; bench/bench_compare.py's generator), the first call of each
building its index and not counted. Then, in one process, ``--help`` and both
``compare`` calls run through the CLI and the process's modules are checked:
TensorFlow, Keras, JAX and PyTorch must not be among them.

Target (issue 8): ``nnlab --help`` under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import machine_line, run_child

from bench_compare import write_runs

TARGET_S = 0.5

IN_PROCESS = r'''
import json, sys
from typer.testing import CliRunner
from nnlab.cli import app

runner = CliRunner()
codes = [runner.invoke(app, args).exit_code for args in (["--help"], ["compare", "--runs-dir", sys.argv[1]],
                                                         ["compare", "--runs-dir", sys.argv[2]])]
heavy = [m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules]
print(json.dumps({"exit_codes": codes, "heavy_modules": heavy}))
'''


def nnlab_command() -> list[str]:
    """The installed ``nnlab`` script beside this interpreter, else ``python -m nnlab``."""
    script = Path(sys.executable).with_name("nnlab")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "nnlab"]


def median_seconds(command: list[str], repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        times.append(run_child(command).check(" ".join(command)).seconds)
    return statistics.median(times), times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)

    nnlab = nnlab_command()
    with tempfile.TemporaryDirectory(prefix="nnlab-bench-startup-") as tmp:
        empty, hundred = Path(tmp) / "empty", Path(tmp) / "hundred"
        empty.mkdir()
        write_runs(hundred, 100)
        for folder in (empty, hundred):  # the first listing writes the index; later ones read it
            run_child([*nnlab, "compare", "--runs-dir", str(folder)]).check("nnlab compare")
        rows = [
            ("python -c pass (the floor)", [sys.executable, "-c", "pass"]),
            ("nnlab --help", [*nnlab, "--help"]),
            ("nnlab compare (empty runs folder)", [*nnlab, "compare", "--runs-dir", str(empty)]),
            ("nnlab compare (100 runs)", [*nnlab, "compare", "--runs-dir", str(hundred)]),
        ]
        print(f"machine: {machine_line()}")
        print(f"command: {' '.join(nnlab)}; median of {args.repeat} fresh processes each\n")
        results = {label: median_seconds(command, args.repeat) for label, command in rows}
        probe = run_child([sys.executable, "-c", IN_PROCESS, str(empty), str(hundred)]).check("in-process probe")
        modules = json.loads(probe.stdout.strip().splitlines()[-1])

    print(f"{'command':<36} {'median s':>9} {'min s':>7} {'max s':>7}")
    for label, (median, times) in results.items():
        print(f"{label:<36} {median:>9.3f} {min(times):>7.3f} {max(times):>7.3f}")
    help_s = results["nnlab --help"][0]
    print(f"\nnnlab --help: {help_s:.3f} s (target < {TARGET_S} s: {'met' if help_s < TARGET_S else 'NOT met'})")
    print(f"in one process, --help and both compare calls (exit codes {modules['exit_codes']}) imported: "
          f"{modules['heavy_modules'] or 'no TensorFlow, Keras, JAX or PyTorch'}")
    assert not modules["heavy_modules"], f"nnlab --help / compare imported {modules['heavy_modules']}"
    assert modules["exit_codes"] == [0, 0, 0], modules
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

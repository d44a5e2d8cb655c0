"""What the benchmarks share: running a child process with its own wall time and peak
memory, and one line about the machine and the versions.

The benchmarks import it as ``common`` (Python puts the script's folder, bench/,
first on the path).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NNLAB = [sys.executable, "-m", "nnlab"]


@dataclass
class Child:
    """One finished child process: its exit code, wall seconds, peak resident memory and output."""

    returncode: int
    seconds: float
    max_rss_bytes: int
    stdout: str
    stderr: str

    def check(self, what: str) -> "Child":
        """self, or exit with the child's last words when it failed."""
        if self.returncode != 0:
            raise SystemExit(f"{what} failed (exit {self.returncode}):\n{self.stderr[-3000:]}\n{self.stdout[-2000:]}")
        return self


def run_child(command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO) -> Child:
    """Run ``command`` to its end; measure it alone.

    The peak resident memory is this child's own (``os.wait4`` returns the rusage of
    the one process waited for), unlike ``RUSAGE_CHILDREN``, which is the largest of
    every child waited for so far.

    Args:
        command: the argv.
        env: variables added to this process's environment.
        cwd: working directory (the repository root).

    Returns:
        Its exit code, wall seconds (from start to exit), peak RSS in bytes, stdout and stderr.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Child(process.returncode, seconds, usage.ru_maxrss * 1024, out.read(), err.read())


def version(package: str) -> str:
    """The installed version of ``package``, or 'not installed'."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Total RAM in GiB (Linux), or None."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def machine_line() -> str:
    """One line: cores, CPU, RAM, Python and the package versions that matter to the timings."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ram = memory_gib()
    return (f"{cores} cores ({cpu_model()}), {ram:.0f} GiB RAM; Python {platform.python_version()}, "
            f"TensorFlow {version('tensorflow')}, Keras {version('keras')}, numpy {version('numpy')}"
            if ram else f"{cores} cores ({cpu_model()}); Python {platform.python_version()}")


def mib(n_bytes: float) -> str:
    """Bytes as MiB, no decimals."""
    return f"{n_bytes / 2**20:,.0f}"

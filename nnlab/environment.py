"""env.json: what a run ran on, so that it can be understood and repeated.

Besides the versions, devices and command line: the installed packages, the CPU
model, the GPUs' names and, when the config file lies in a git work tree, the
commit, branch, whether the tree is dirty and the diff under the config's folder
(:func:`git_state`). Nothing here can fail a run: what cannot be found is left out
or null.
"""

from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nnlab

#: Seconds git's answers may take in all before the git facts are given up (a slow network file system).
GIT_TIMEOUT_S = 3.0
#: Bytes of ``git diff`` kept in env.json; a longer diff is cut there, and ``diff_truncated`` says so.
MAX_DIFF_BYTES = 64 * 1024


def environment(seed: int, argv: list[str] | None = None, config_path: str | os.PathLike | None = None
                ) -> dict[str, Any]:
    """Versions, backend, devices, seed, platform, the command line, the packages and the git state.

    Call it after Keras is imported (it reports Keras's backend and devices):
    ``backend`` (tensorflow, jax or torch), ``backend_version`` (that package's
    version), ``devices`` (every device the backend sees), ``gpus`` (the GPUs
    among them; Keras computes on the first one when there is one) and ``gpu_names``
    (their models, e.g. ``NVIDIA H200``, as the backend reports them).

    Args:
        seed: the config's seed.
        argv: the command line (default: ``sys.argv``).
        config_path: the config file; when it lies in a git work tree, ``git`` records
            its state (:func:`git_state`); otherwise ``git`` is null.

    Returns:
        A JSON-friendly dict; ``packages`` maps every installed distribution to its version,
        ``cpu_model`` is the processor's name (None when the system does not say).
    """
    info: dict[str, Any] = {
        "nnlab": nnlab.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "processor_count": _cpu_count(),
        "seed": seed,
        "command": shlex.join(argv if argv is not None else sys.argv),
    }
    for package in ("numpy", "keras", "tensorflow", "jax", "torch", "scikit-learn"):
        info[package] = _version(package)
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        info["backend"] = keras.backend.backend()
        info["backend_version"] = _version(info["backend"])
        info["devices"] = _devices(info["backend"])
        info["gpus"] = [d for d in info["devices"] if _is_gpu(d)]
        info["gpu_names"] = _gpu_names(info["backend"])
    info["git"] = git_state(config_path) if config_path is not None else None
    info["packages"] = installed_packages()
    return info


def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version (``importlib.metadata``), sorted by name.

    A distribution found twice on the path counts as the one Python imports (the first).
    Read once per process (about 0.1 s for a hundred packages): a sweep's trials share it.
    """
    return dict(_installed_packages())


@functools.lru_cache(maxsize=1)
def _installed_packages() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    found: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, version)
    for dist in metadata.distributions():
        try:
            name, version = dist.metadata["Name"], dist.version
        except Exception:  # a damaged distribution's metadata: left out
            continue
        if isinstance(name, str) and name and name.lower() not in found:
            found[name.lower()] = (name, str(version))
    return tuple(sorted(found.values(), key=lambda item: item[0].lower()))


def cpu_model() -> str | None:
    """The processor's model name: ``model name`` of /proc/cpuinfo on Linux, ``sysctl`` on macOS,
    else :func:`platform.processor`; None when none of them says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        name = _run(["sysctl", "-n", "machdep.cpu.brand_string"], cwd=None)
        if name:
            return name.strip()
    return platform.processor() or None


def git_state(config_path: str | os.PathLike) -> dict[str, Any] | None:
    """The git state of the work tree a config file lies in.

    Args:
        config_path: the config file.

    Returns:
        ``{"root", "commit", "branch", "dirty", "config_tracked", "diff", "diff_truncated"}``:
        ``commit`` is HEAD (None before the first commit), ``branch`` None when HEAD is
        detached, ``dirty`` whether any tracked file differs from HEAD (staged or not),
        ``config_tracked`` whether git knows the config file, ``diff`` the ``git diff HEAD``
        of the tracked files under the config's folder (at most :data:`MAX_DIFF_BYTES`;
        ``diff_truncated`` says when it was cut). None when the file is not in a work tree,
        git is not installed, or git's answers take more than :data:`GIT_TIMEOUT_S` seconds in all.
    """
    path = Path(config_path)
    if not path.is_file():
        return None
    folder = path.resolve().parent
    deadline = time.monotonic() + GIT_TIMEOUT_S  # for all the commands together

    def git(*args: str, strip: bool = True) -> str | None:
        out = _run(["git", *args], cwd=folder, timeout=max(0.01, deadline - time.monotonic()),
                   timeout_expires=True)
        return out if out is None or not strip else out.strip()

    try:
        root = git("rev-parse", "--show-toplevel")
        if root is None:
            return None
        commit = git("rev-parse", "--verify", "-q", "HEAD")
        branch = git("symbolic-ref", "--short", "-q", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
        tracked = git("ls-files", "--", path.name)
        diff = git("diff", "--no-color", "--no-ext-diff", "HEAD", "--", ".", strip=False) if commit else None
    except subprocess.TimeoutExpired:
        return None
    state: dict[str, Any] = {"root": root.strip(), "commit": (commit or "").strip() or None,
                             "branch": (branch or "").strip() or None, "dirty": bool((status or "").strip()),
                             "config_tracked": bool((tracked or "").strip()), "diff": None, "diff_truncated": False}
    if diff is not None:
        data = diff.encode("utf-8", errors="replace")
        if len(data) > MAX_DIFF_BYTES:
            state["diff"] = data[:MAX_DIFF_BYTES].decode("utf-8", errors="ignore") + \
                f"\n[diff cut at {MAX_DIFF_BYTES:,} of {len(data):,} bytes]\n"
            state["diff_truncated"] = True
        else:
            state["diff"] = diff
    return state


def _run(command: list[str], cwd: Path | None, *, timeout: float = GIT_TIMEOUT_S,
         timeout_expires: bool = False) -> str | None:
    """stdout of a short command, or None when it cannot run or fails.

    Raises:
        subprocess.TimeoutExpired: when it takes longer than ``timeout`` and ``timeout_expires`` says so
            (otherwise that is None too).
    """
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take the index lock of the user's own git session;
    # literal pathspecs: a config named ":x.yaml" is a file name, not pathspec magic.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_LITERAL_PATHSPECS": "1", "LC_ALL": "C"}
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        if timeout_expires:
            raise
        return None
    except OSError:
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")


def _is_gpu(device: str) -> bool:
    lowered = device.lower()
    return any(word in lowered for word in ("gpu", "cuda", "rocm"))


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_count() -> int | None:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def _gpu_names(backend: str) -> list[str]:
    """The GPUs' model names as the backend reports them (no extra tool is run); [] when none or unknown."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [str(tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name)
                    for gpu in tf.config.list_physical_devices("GPU")]
        if backend == "jax":
            import jax

            return [str(d.device_kind) for d in jax.devices() if d.platform == "gpu"]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # informative only
        return []
    return []


def _devices(backend: str) -> list[str]:
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]
        if backend == "jax":
            import jax

            return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]
        if backend == "torch":
            import torch

            gpus = [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
            return ["cpu", *gpus]
    except Exception as err:  # device listing is informative only
        return [f"unknown ({err})"]
    return []

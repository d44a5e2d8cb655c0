"""env.json: what a run ran on, so that it can be understood and repeated."""

from __future__ import annotations

import platform
import shlex
import sys
from typing import Any

import nnlab


def environment(seed: int, argv: list[str] | None = None) -> dict[str, Any]:
    """Versions, backend, devices, seed, platform and the command line.

    Call it after Keras is imported (it reports Keras's backend and devices).

    Returns:
        A JSON-friendly dict.
    """
    info: dict[str, Any] = {
        "nnlab": nnlab.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor_count": _cpu_count(),
        "seed": seed,
        "command": shlex.join(argv if argv is not None else sys.argv),
    }
    for package in ("numpy", "keras", "tensorflow", "jax", "torch", "scikit-learn"):
        info[package] = _version(package)
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        info["backend"] = keras.backend.backend()
        info["devices"] = _devices(info["backend"])
    return info


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


def _devices(backend: str) -> list[str]:
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices()]
        if backend == "torch":
            import torch

            return ["cuda"] * torch.cuda.device_count() or ["cpu"]
    except Exception as err:  # device listing is informative only
        return [f"unknown ({err})"]
    return []

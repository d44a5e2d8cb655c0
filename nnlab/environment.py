"""env.json: what a run ran on, so that it can be understood and repeated."""

from __future__ import annotations

import platform
import shlex
import sys
from typing import Any

import nnlab


def environment(seed: int, argv: list[str] | None = None) -> dict[str, Any]:
    """Versions, backend, devices, seed, platform and the command line.

    Call it after Keras is imported (it reports Keras's backend and devices):
    ``backend`` (tensorflow, jax or torch), ``backend_version`` (that package's
    version), ``devices`` (every device the backend sees) and ``gpus`` (the GPUs
    among them; Keras computes on the first one when there is one).

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
        info["backend_version"] = _version(info["backend"])
        info["devices"] = _devices(info["backend"])
        info["gpus"] = [d for d in info["devices"] if _is_gpu(d)]
    return info


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

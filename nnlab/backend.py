"""Importing Keras, only where a model is built or trained.

``import nnlab`` never imports TensorFlow (it takes seconds); the code paths that
need Keras call :func:`keras` instead.
"""

from __future__ import annotations

import contextlib
import os
import sys

DEFAULT_BACKEND = "tensorflow"


def keras():
    """Import and return Keras, quietly, on the configured backend.

    The backend is KERAS_BACKEND when set, else TensorFlow. TensorFlow's C++ info
    logs are silenced unless TF_CPP_MIN_LOG_LEVEL is set.

    Returns:
        The ``keras`` module.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("KERAS_BACKEND", DEFAULT_BACKEND)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) are written before its
    # log settings are read, so they are kept off the terminal while it imports.
    with _quiet_stderr():
        import keras as _keras
    return _keras


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for the block (C-level logs included)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops.

    Args:
        seed: the config's seed.
    """
    keras_module = keras()
    keras_module.utils.set_random_seed(seed)
    if keras_module.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

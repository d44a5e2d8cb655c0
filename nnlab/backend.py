"""Importing Keras, only where a model is built or trained, on the chosen backend.

``import nnlab`` never imports TensorFlow (it takes seconds); the code paths that
need Keras call :func:`keras` instead. Keras 3 runs on TensorFlow, JAX or PyTorch;
:func:`use_backend` picks one (the config's ``backend``, or ``--backend``) before
Keras is imported, because Keras reads ``KERAS_BACKEND`` once, on import.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from typing import Any, Iterator

DEFAULT_BACKEND = "tensorflow"

#: Keras backend -> (the Python package it needs, what to install for it).
BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow", "pip install tensorflow (or 'tensorflow[and-cuda]' for NVIDIA GPUs)"),
    "jax": ("jax", "pip install jax (or 'jax[cuda12]' for NVIDIA GPUs)"),
    "torch": ("torch", "pip install torch (see pytorch.org for the build that matches your GPU)"),
}


def use_backend(name: str, *, source: str | None = None, key: str | None = "backend") -> None:
    """Make ``name`` the Keras backend of this process (and of the workers it starts).

    Cheap: it imports nothing; it sets ``KERAS_BACKEND`` for the coming import of Keras.

    Args:
        name: tensorflow, jax or torch.
        source, key: where the choice came from, for the error message (a config file and its
            key, or ``--backend`` and no key).

    Raises:
        NnlabError: an unknown name; the backend's package is not installed (naming
            what to install); or Keras was already imported in this process with another backend.
    """
    from nnlab.errors import NnlabError

    if name not in BACKEND_PACKAGES:
        raise NnlabError(f"unknown Keras backend '{name}'; use one of {', '.join(BACKEND_PACKAGES)}",
                         source=source, key=key)
    package, install = BACKEND_PACKAGES[name]
    if importlib.util.find_spec(package) is None:
        raise NnlabError(f"the {name} backend needs the {package} package, which is not installed: {install}",
                         source=source, key=key)
    loaded = active_backend()
    if loaded is not None and loaded != name:
        raise NnlabError(f"Keras was already imported in this process with the {loaded} backend, and a process "
                         f"cannot switch; run the {name} experiment in a new process", source=source, key=key)
    os.environ["KERAS_BACKEND"] = name
    if name == "jax":
        _jax_compilation_cache()


def backend_override(backend: str | None, overrides: list[str]) -> list[str]:
    """``--backend NAME`` (or ``backend=`` of the Python API) as the override ``backend=NAME``, checked
    first (installed? Keras not yet imported with another?) and made this process's backend, so worker
    processes started from here inherit it.

    Returns:
        ``overrides``, with ``backend=NAME`` last when a backend is given.
    """
    if backend is None:
        return list(overrides)
    use_backend(backend, source="--backend", key=None)
    return [*overrides, f"backend={backend}"]


#: Compilations at least this long (seconds) are kept in JAX's persistent cache.
JAX_CACHE_MIN_COMPILE_SECONDS = 0.1


def _jax_compilation_cache() -> None:
    """Keep JAX's compiled programs on disk, so the next run of a config loads them instead of
    compiling again (the spiral's first chunk: 1 s of XLA compilation on a 2-core CPU).

    Set through JAX's own environment variables, read when JAX is imported (here and in the
    workers nnlab starts); a user's own settings of them win. The folder is
    ``$XDG_CACHE_HOME/nnlab/jax`` (``~/.cache/nnlab/jax``); JAX keys each program by its code,
    the device and the versions, so a stale entry is never used.
    """
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(root, "nnlab", "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(JAX_CACHE_MIN_COMPILE_SECONDS))


def active_backend() -> str | None:
    """The backend of the Keras imported in this process, or None when Keras is not imported yet."""
    if "keras" not in sys.modules:
        return None
    config = sys.modules.get("keras.src.backend.config")
    if config is not None and hasattr(config, "backend"):
        return config.backend()
    return sys.modules["keras"].backend.backend()


#: Set beside TF_CPP_MIN_LOG_LEVEL when nnlab set that level (not the user).
_QUIET_MARK = "NNLAB_QUIET_TENSORFLOW"


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
    # Quiet unless the user set the level; the mark tells worker processes (which inherit the level nnlab
    # set) that it was nnlab's, so they are quiet too.
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ or os.environ.get(_QUIET_MARK) == "1"
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"], os.environ[_QUIET_MARK] = "3", "1"
    # TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) are written before its
    # log settings are read, so they are kept off the terminal while it imports.
    with _quiet_stderr():
        import keras as _keras
    if quiet:
        # Its Python warnings too: "N out of the last N calls ... triggered tf.function retracing" is what
        # every new model of a sweep, repeat or fold does by design, not something a user can act on.
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
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


@contextlib.contextmanager
def tensorflow_hidden() -> Iterator[None]:
    """On JAX and PyTorch, Keras's optional uses of TensorFlow see it as not installed, within the block.

    ``keras.utils.set_random_seed`` seeds TensorFlow whenever it is installed, and saving a
    model checks its values against TensorFlow's types; asking whether it is installed imports
    it, 3 s of a short run on those backends, which use no TensorFlow. (Keras's own layers
    that need it still import it; outside the block nothing changes.)
    """
    lazy = None
    if keras().backend.backend() != "tensorflow" and "tensorflow" not in sys.modules:
        try:
            from keras.src.utils import module_utils

            lazy = getattr(module_utils, "tensorflow", None)
        except ImportError:
            lazy = None
    if lazy is None or not hasattr(lazy, "_available"):
        yield
        return
    saved, lazy._available = lazy._available, False
    try:
        yield
    finally:
        lazy._available = saved


def save_model(model: Any, path: Any) -> None:
    """``model.save(path)``, without importing TensorFlow on the other backends."""
    with tensorflow_hidden():
        model.save(path)


def save_model_atomically(model: Any, path: Any) -> None:
    """:func:`save_model` into a temporary file beside ``path``, then renamed onto it: a process
    killed while saving leaves the previous file whole."""
    import os
    from pathlib import Path

    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # Keras wants the .keras suffix
    try:
        save_model(model, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops.

    Args:
        seed: the config's seed.
        deterministic: TensorFlow's op determinism (the same numbers on every run). On a
            CPU it costs nothing measurable (bench/bench_imdb.py); on a GPU it costs speed,
            and Keras turns XLA (jit_compile) off while it is on. Once on, it stays on
            for the process.
    """
    keras_module = keras()
    with tensorflow_hidden():
        keras_module.utils.set_random_seed(seed)
    if deterministic and keras_module.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

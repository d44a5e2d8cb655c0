"""How the prepared arrays reach ``model.fit`` and ``model.evaluate``, and how steps are executed.

Keras's own path for NumPy arrays copies each array into a tensor at every call
(fit, each evaluate), makes a new input iterator each epoch with an autotuning
thread pool, and runs one step per call from Python. On a CPU those costs are a
good part of a small model's training time (bench/bench_imdb.py and
bench/bench_fashion_mnist.py measure them). With ``training.input_pipeline: tf_data``
(the default on the TensorFlow backend) the arrays become tensors once, and each
pass is a small tf.data pipeline over them: row indices, shuffled anew every epoch
as fit's own shuffle does, batched, gathered, prefetched, with autotuning off.
``training.steps_per_execution`` runs many steps per call into the backend. On
JAX, ``device`` (:mod:`nnlab.training.device_loop`) puts the arrays on the device once and
runs each epoch as one compiled call. ``fused`` (:mod:`nnlab.training.fused`, the default on
TensorFlow and JAX) makes them device tensors once and runs many epochs, with their
validation, per compiled call.

The batches hold the same rows as Keras's (every row once per epoch, the last
batch partial); only the order of the shuffled rows differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnlab.config import AUTO_STEPS_PER_EXECUTION, Config


def pipeline(config: Config, backend: str) -> str:
    """``tf_data``, ``device``, ``fused`` or ``arrays``: the config's ``training.input_pipeline`` on this backend.

    Raises:
        ConfigError: tf_data asked of a backend other than TensorFlow, device of one
            other than JAX or with jit_compile off, fused of PyTorch or of JAX with jit_compile off.
    """
    chosen = config.training.input_pipeline
    jit_off = config.training.jit_compile is False
    if chosen == "auto":
        # fused was never slower than tf_data or device in bench/ (BENCHMARKS.md), and much faster for many short epochs.
        return {"tensorflow": "fused", "jax": "arrays" if jit_off else "fused"}.get(backend, "arrays")
    if chosen == "fused" and (backend not in ("tensorflow", "jax") or (backend == "jax" and jit_off)):
        reason = f"this run uses {backend}" if backend != "jax" else "training.jit_compile is false"
        raise config.error(("training", "input_pipeline"),
                           f"fused runs many epochs per compiled call on TensorFlow or JAX ({reason}); "
                           "use auto or arrays")
    if chosen == "tf_data" and backend != "tensorflow":
        raise config.error(("training", "input_pipeline"),
                           f"tf_data feeds the TensorFlow backend only (this run uses {backend}); use auto or arrays")
    if chosen == "device" and (backend != "jax" or jit_off):
        reason = f"this run uses {backend}" if backend != "jax" else "training.jit_compile is false"
        raise config.error(("training", "input_pipeline"),
                           f"device runs compiled epochs on the JAX backend only ({reason}); use auto or arrays")
    return chosen


def feed_kind(kind: str, *arrays: np.ndarray) -> str:
    """The kind a feed of ``arrays`` uses: ``kind``, except that a device feed whose
    arrays would not fit the accelerator's memory becomes an arrays feed."""
    if kind == "device" or (kind == "fused" and _backend() == "jax"):
        from nnlab.training.device_loop import fits_on_device

        if not fits_on_device(*arrays):
            return "arrays"
    return kind


def _backend() -> str:
    from nnlab.backend import keras

    return keras().backend.backend()


def steps_per_execution(config: Config, backend: str) -> int:
    """Training steps per call into the backend: the config's, or for ``auto``
    :data:`~nnlab.config.AUTO_STEPS_PER_EXECUTION` (1 on PyTorch)."""
    steps = config.training.steps_per_execution
    if steps == "auto":
        return 1 if backend == "torch" else AUTO_STEPS_PER_EXECUTION
    return int(steps)


def configure_execution(model: Any, config: Config) -> None:
    """Apply ``steps_per_execution`` and ``jit_compile`` to a compiled model.

    Both are read when Keras builds its train and test functions (at the first fit or
    evaluate), so setting them after ``compile`` is the same as passing them to it.
    Every call of fit and evaluate on a finite input ends its last execution early
    at the end of the data, so epochs stay whole whatever the number.
    """
    from nnlab.backend import keras

    backend = keras().backend.backend()
    model.steps_per_execution = steps_per_execution(config, backend)
    if config.training.jit_compile != "auto":
        model.jit_compile = config.training.jit_compile  # Keras warns and keeps it off where it cannot be on


#: A repeating feed's validation rows up to this many are measured as one batch after each epoch.
ONE_BATCH_ROWS = 4096


@dataclass
class Feed:
    """The arrays of one fit in the form the chosen pipeline feeds, and how they are fed.

    Args:
        kind: ``tf_data``, ``device``, ``fused`` or ``arrays``.
        size: the batch size.
        parts: name (train, validation) -> ``(x, y)``: tensors for tf_data (and fused on TensorFlow),
            arrays otherwise.
        repeat: many short epochs (k-fold's folds): one tf.data pipeline for every epoch instead of a
            new iterator per epoch (tf_data), with steps per execution the largest divisor of an
            epoch's steps up to the model's, so every epoch ends on a call's end; and validation
            rows (up to :data:`ONE_BATCH_ROWS`) measured as one batch after each epoch instead of a
            whole ``evaluate`` (tf_data and arrays). The updates are the same; only the order of the
            shuffled batches and the rounding of the validation means may differ.
    """

    kind: str
    size: int
    parts: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    repeat: bool = False
    #: A fused fit's seconds per epoch in its last chunk, and the most epochs it ran in one call.
    epoch_seconds: float | None = None
    epochs_per_call: int | None = None

    @classmethod
    def of(cls, kind: str, size: int, train: tuple[np.ndarray, np.ndarray],
           validation: tuple[np.ndarray, np.ndarray] | None, *, repeat: bool = False) -> "Feed":
        """A feed of the training and (optional) validation arrays.

        For tf_data each array is copied into a tensor here, once; Keras's array path
        would copy it again at every fit and evaluate call. A device feed whose arrays
        would not fit the accelerator's memory becomes an arrays feed (``kind`` tells
        which was used).
        """
        feed = cls(feed_kind(kind, *train, *(validation or ())), size, repeat=repeat)
        for name, pair in (("train", train), ("validation", validation)):
            if pair is not None:
                feed.parts[name] = tuple(_tensor(a) for a in pair) if feed.holds_tensors else pair
        return feed

    @property
    def holds_tensors(self) -> bool:
        """Whether the parts are TensorFlow tensors made once (tf_data, and fused on TensorFlow)."""
        return self.kind == "tf_data" or (self.kind == "fused" and _backend() == "tensorflow")

    @property
    def steps(self) -> int:
        """Training steps in one epoch (the last batch partial)."""
        return -(-int(self.parts["train"][0].shape[0]) // self.size)

    @property
    def validates_as_one_batch(self) -> bool:
        """Whether validation is measured by :meth:`measure_validation` after each epoch (a callback)
        rather than by Keras's validation_data or the device loop."""
        return self.repeat and self.kind not in ("device", "fused") and "validation" in self.parts

    def fit(self, model: Any, *, epochs: int, callbacks: list[Any], shuffle: bool, seed: int,
            initial_epoch: int = 0, chunk_callbacks: list[Any] = (), stopper: Any = None) -> Any:
        """Train ``model`` on this feed: ``model.fit``, for a device feed one compiled call per epoch,
        for a fused feed many epochs per call.

        Args:
            chunk_callbacks: callbacks that read the weights; a fused fit calls them at the end of each
                chunk of epochs, the other fits every epoch, with the rest.
            stopper: the ``keras.callbacks.EarlyStopping`` among ``callbacks`` (a fused fit applies its
                rule inside the compiled loop), or None.

        Returns:
            The fit's ``keras.callbacks.History``.
        """
        x, y = self.parts["train"]
        validation = self.parts.get("validation")
        if self.kind == "fused":
            from nnlab.training import fused

            return fused.fit(model, x, y, batch_size=self.size, epochs=epochs, validation_data=validation,
                             shuffle=shuffle, seed=seed, callbacks=callbacks, chunk_callbacks=chunk_callbacks,
                             stopper=stopper, initial_epoch=initial_epoch, timing=self)
        callbacks = [*chunk_callbacks, *callbacks]  # before the ones that may stop training at this epoch
        if self.kind == "device":
            from nnlab.training import device_loop

            return device_loop.fit(model, x, y, batch_size=self.size, epochs=epochs, validation_data=validation,
                                   shuffle=shuffle, seed=seed, callbacks=callbacks, initial_epoch=initial_epoch)
        if self.validates_as_one_batch:
            # First: the callbacks after it see its val_* entries in the epoch's logs.
            callbacks = [_validation_log(self), *callbacks]
            validation = None
        arguments: dict[str, Any] = {"epochs": epochs, "verbose": 0, "callbacks": callbacks,
                                     "initial_epoch": initial_epoch}
        if self.kind != "tf_data":
            return model.fit(x, y, batch_size=self.size, shuffle=shuffle, validation_data=validation, **arguments)
        data = batches(x, y, self.size, shuffle=shuffle, seed=seed)
        if self.repeat:
            # A plain attribute of Keras's trainer, read when fit builds its train function.
            model.steps_per_execution = largest_divisor(self.steps, int(getattr(model, "steps_per_execution", 1)))
            data, arguments["steps_per_epoch"] = data.repeat(), self.steps
        return model.fit(data, shuffle=False, validation_data=None if validation is None else
                         batches(*validation, self.size), **arguments)

    def measure_validation(self, model: Any) -> dict[str, float]:
        """The model's metrics on the validation rows: one batch up to :data:`ONE_BATCH_ROWS` rows."""
        x, y = self.parts["validation"]
        if int(x.shape[0]) <= ONE_BATCH_ROWS:
            result = model.test_on_batch(x, y, return_dict=True)
            return {name: float(value) for name, value in result.items()}
        return self.evaluate(model, x, y)

    def evaluate(self, model: Any, x: Any, y: Any, size: int | None = None) -> dict[str, float]:
        """The compiled metrics of ``model`` on ``(x, y)``: arrays, or tensors of this feed."""
        size = size or max(self.size, 256)
        if self.holds_tensors:
            import tensorflow as tf

            # Arrays seen once (the test rows) are fed slice by slice rather than copied whole into a tensor.
            data = batches(x, y, size) if tf.is_tensor(x) else slices(x, y, size)
            result = model.evaluate(data, verbose=0, return_dict=True)
        else:
            result = model.evaluate(x, y, batch_size=size, verbose=0, return_dict=True)
        return {name: float(value) for name, value in result.items()}

    def predict(self, model: Any, x: np.ndarray, size: int | None = None) -> np.ndarray:
        """The model's outputs on rows seen once (the test rows), one batch at a time.

        Neither ``model.predict`` on the whole array (a tensor copy of it: +1.3 GB on IMDB's
        multi-hot test rows) nor on a tf.data pipeline (Keras gathers ``steps_per_execution``
        batches before each call: +0.75 GB) keeps to one batch of memory; ``predict_on_batch``
        over slices, which are views, does.
        """
        size = size or max(self.size, 256)
        return np.concatenate([np.asarray(model.predict_on_batch(x[start:start + size]))
                               for start in range(0, len(x), size)])

    def release(self) -> None:
        """Drop the tensors (their memory goes back before the test rows are copied in)."""
        self.parts.clear()


def largest_divisor(steps: int, cap: int) -> int:
    """The largest divisor of an epoch's ``steps`` up to ``cap``, so that epochs end on a call's end."""
    return max(d for d in range(1, max(1, min(steps, cap)) + 1) if steps % d == 0)


def _validation_log(feed: Feed):
    from nnlab.backend import keras

    class ValidationLog(keras().callbacks.Callback):
        """Adds the validation metrics to each epoch's logs as ``val_*``, as fit's validation_data does."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if logs is not None:
                logs.update({f"val_{name}": value for name, value in feed.measure_validation(self.model).items()})

    return ValidationLog()


def batches(x: Any, y: Any, size: int, *, shuffle: bool = False, seed: int | None = None):
    """One pass over ``(x, y)`` in ``size``-row batches, as a tf.data pipeline.

    A new iterator (each epoch) reshuffles when ``shuffle``. The rows are gathered
    from the tensors as each batch is needed, so no second copy of the data is made;
    two batches are prefetched. tf.data's autotuning is off: its thread pool
    contends with training for a small machine's cores and can hold the end of a fit
    for seconds while it winds down.

    Args:
        x, y: tensors (or arrays, copied into tensors).
        size: rows per batch; the last batch holds the rest.
        shuffle: a new order of the rows every pass.
        seed: the shuffle's seed (None: drawn from the global seed).

    Returns:
        A finite ``tf.data.Dataset`` of ``(x_batch, y_batch)``.
    """
    import tensorflow as tf

    x, y = _tensor(x), _tensor(y)
    rows = tf.data.Dataset.range(int(x.shape[0]))
    if shuffle:
        rows = rows.shuffle(int(x.shape[0]), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    return (rows.batch(size)
            .map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
            .prefetch(2)
            .with_options(options))


def slices(x: np.ndarray, y: np.ndarray, size: int):
    """Consecutive ``size``-row slices of two arrays as a tf.data pipeline, in order.

    Unlike :func:`batches` it makes no tensor of the whole arrays: each slice is a
    view until TensorFlow copies it in, so feeding a large array once costs one
    batch of memory rather than a second copy of the array.

    Returns:
        A finite ``tf.data.Dataset`` of ``(x_batch, y_batch)``.
    """
    import tensorflow as tf

    x, y = np.asarray(x), np.asarray(y)

    def pairs():
        for start in range(0, len(x), size):
            yield x[start:start + size], y[start:start + size]

    spec = (tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)),
            tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)))
    count = -(-len(x) // size)  # told to Keras, which otherwise warns when the generator ends
    data = tf.data.Dataset.from_generator(pairs, output_signature=spec)
    return data.apply(tf.data.experimental.assert_cardinality(count)).prefetch(2)


def _tensor(array: Any) -> Any:
    import tensorflow as tf

    return array if tf.is_tensor(array) else tf.constant(array)

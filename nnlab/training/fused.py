"""Many epochs per compiled call (``training.input_pipeline: fused``), on TensorFlow and JAX.

The lessons' models are small, so an epoch of them is mostly overhead: Keras's
per-epoch work in Python (a new input iterator, callbacks, a separate evaluate for
validation) costs about 13 ms on TensorFlow, next to well under a millisecond of
arithmetic for the spiral's full batch. Here the training and validation arrays
become device tensors once, and one compiled call runs a *chunk* of epochs: every
epoch's batches through Keras's own ``train_step``, then its validation through
``test_step``, gathering each epoch's metrics on the device. Python then replays
the chunk's per-epoch logs to the callbacks (history.csv, progress, early stopping,
divergence), so they see what ``model.fit`` shows them. A chunk is sized to take
about :data:`CHUNK_SECONDS`, which bounds how late a stop signal or a checkpoint is.

What the replay cannot give a callback is the weights of an epoch inside a chunk
(the variables hold the chunk's last epoch). So the two rules that need them run
inside the compiled loop as well: a loss that becomes NaN or infinite ends the
chunk after that epoch, and ``training.early_stopping`` is decided on the device by
Keras's own rule (:class:`StopRule`), ending the chunk at the stopping epoch and
keeping a copy of the best epoch's weights for ``restore_best_weights``. Callbacks
that keep weights (:class:`nnlab.training.callbacks.LastEpochWeights`) are called at
the end of each chunk only; a stop signal during the replay takes effect at the
chunk's end, so the history, the checkpoint and the weights always agree.

Without shuffling the updates, logs and optimizer iterations are those of
``model.fit`` epoch by epoch (tests/test_fused.py); with shuffling each epoch's
order is drawn from ``(seed, epoch)`` alone, so the same seed gives the same run
however the epochs fall into chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

#: A chunk of epochs is sized to take about this long (seconds): the longest a stop
#: signal, a progress update or a checkpoint waits.
CHUNK_SECONDS = 1.0

#: Most epochs one compiled call runs (the size of its buffer of per-epoch metrics).
MAX_CHUNK_EPOCHS = 65_536


@dataclass
class StopRule:
    """Keras's ``EarlyStopping`` decision as numbers the compiled loop can apply.

    Keras's rule (``keras.callbacks.EarlyStopping.on_epoch_end``): each epoch ``wait``
    grows by one; an epoch whose monitor ``v`` improves on ``best`` (``v - min_delta``
    below it in min mode, ``v - min_delta`` above it in max mode, with Keras's signed
    ``min_delta``, compared in float32) becomes the best and sets ``wait`` to 0;
    otherwise, once ``wait`` reaches ``patience`` after the first epoch, training stops.

    Args:
        index: the monitored value's position in the chunk's log row.
        lower_is_better: the monitor's direction (Keras asks the metric).
        min_delta: Keras's signed min_delta (negative in min mode).
        patience: epochs without improvement before stopping.
        keep_best: keep the best epoch's weights (``restore_best_weights``).
    """

    index: int
    lower_is_better: bool
    min_delta: float
    patience: int
    keep_best: bool

    @classmethod
    def of(cls, stopper: Any, names: Sequence[str]) -> "StopRule | None":
        """The rule of a Keras ``EarlyStopping`` callback, or None when its monitor is not logged."""
        if stopper is None or stopper.monitor not in names:
            return None
        from nnlab.backend import keras

        if stopper.monitor_op is None:
            stopper._set_monitor_op()  # what its first on_epoch_end would do: the metric says its direction
        lower = stopper.monitor_op is keras().ops.less
        return cls(index=list(names).index(stopper.monitor), lower_is_better=lower,
                   min_delta=float(stopper.min_delta), patience=int(stopper.patience),
                   keep_best=bool(stopper.restore_best_weights))


def next_chunk(epochs: int, seconds: float) -> int:
    """Epochs in the next chunk: as many as take :data:`CHUNK_SECONDS` at the last chunk's pace.

    The first chunk (one epoch) includes the tracing, so the second is short too; from
    the third on the pace is the steady one.
    """
    return max(1, min(MAX_CHUNK_EPOCHS, int(CHUNK_SECONDS * epochs / max(seconds, 1e-6))))


def fit(model: Any, x: Any, y: Any, *, batch_size: int, epochs: int,
        validation_data: tuple[Any, Any] | None = None, shuffle: bool = True, seed: int = 0,
        callbacks: Sequence[Any] = (), chunk_callbacks: Sequence[Any] = (), stopper: Any = None,
        initial_epoch: int = 0, timing: Any = None) -> Any:
    """``model.fit`` with many epochs per compiled call.

    Args:
        model: a compiled Keras model (TensorFlow or JAX backend).
        x, y: the training rows (arrays, or tensors on TensorFlow).
        batch_size: rows per step; the last step of an epoch takes the rest.
        epochs: index of the last epoch, as fit's ``epochs``.
        validation_data: ``(x_val, y_val)``, measured after every epoch inside the call, or None.
        shuffle: a new order of the rows every epoch, drawn from ``(seed, epoch)``.
        seed: seed of the shuffle.
        callbacks: Keras callbacks, called per epoch with that epoch's logs.
        chunk_callbacks: callbacks that read the weights, called at the end of each chunk only.
        stopper: the ``keras.callbacks.EarlyStopping`` among ``callbacks``, or None.
        initial_epoch: the epoch to start at (resuming).
        timing: an object whose ``epoch_seconds`` is set to each chunk's seconds per epoch
            (what a progress display shows) and ``epochs_per_call`` to the longest chunk, or None.

    Returns:
        The fit's ``keras.callbacks.History``.
    """
    from nnlab.backend import keras
    from nnlab.interrupts import Interrupted, signals_deferred

    k = keras()
    rows = int(x.shape[0])
    size = max(1, min(int(batch_size), rows))
    backend = k.backend.backend()
    runner_type = {"tensorflow": _TensorFlowChunks, "jax": _JaxChunks}[backend]
    runner = runner_type(model, x, y, validation_data, size=size, shuffle=shuffle, seed=seed,
                         capacity=max(1, min(epochs - initial_epoch, MAX_CHUNK_EPOCHS)), stopper=stopper)
    steps = -(-rows // size)
    callback_list = k.callbacks.CallbackList(list(callbacks), add_history=True, add_progbar=False, model=model,
                                             verbose=0, epochs=epochs, steps=steps)
    chunk_list = k.callbacks.CallbackList(list(chunk_callbacks), model=model, verbose=0, epochs=epochs, steps=steps)
    # The replay calls each callback itself: CallbackList converts the logs anew at every hook (typing
    # checks of every value), which took 0.1 ms an epoch, more than the spiral's epoch.
    each = callback_list.callbacks
    train_names = [name for name in runner.names if not name.startswith("val_")]
    model.stop_training = False
    logs: dict[str, float] = {}
    callback_list.on_train_begin()
    chunk_list.on_train_begin()
    epoch, chunk = initial_epoch, 1  # the first chunk, one epoch, includes the tracing
    # A callback that decides at some epochs only (a search's pruner) has the chunk end there.
    deciders = [c for c in each if hasattr(c, "epochs_until_decision")]
    while epoch < epochs and not model.stop_training:
        count = min(chunk, epochs - epoch)
        for decider in deciders:
            until = decider.epochs_until_decision(epoch)
            if until is not None:
                count = max(1, min(count, until))
        started = time.perf_counter()
        rows_of_logs, best_weights = runner.run(epoch, count, stopper)
        seconds = time.perf_counter() - started
        if timing is not None:
            timing.epoch_seconds = seconds / len(rows_of_logs)
            timing.epochs_per_call = max(timing.epochs_per_call or 0, count)
        stop: Interrupted | None = None
        with signals_deferred():  # a stop takes effect at the chunk's end, where the weights are
            for row in rows_of_logs:
                # In sorted order, as Keras's fit hands them to callbacks (history.csv's columns).
                logs = dict(sorted(zip(runner.names, row.tolist())))
                train_logs = {name: logs[name] for name in train_names}
                try:
                    for callback in each:
                        callback.on_epoch_begin(epoch)
                    for callback in each:
                        callback.on_train_batch_begin(0)
                    for callback in each:
                        callback.on_train_batch_end(steps - 1, train_logs)
                    for callback in each:
                        callback.on_epoch_end(epoch, logs)
                except Interrupted as err:  # raised by a callback: held to the chunk's end, as a signal is
                    stop = stop or err
                epoch += 1
                if model.stop_training:
                    break
            if best_weights is not None:
                # The replay kept the chunk's last weights as "best"; the loop kept the best epoch's.
                stopper.best_weights = best_weights
            chunk_list.on_epoch_end(epoch - 1, logs)
        if stop is not None:
            raise stop
        chunk = next_chunk(len(rows_of_logs), seconds)
    runner.finish()
    chunk_list.on_train_end(logs)
    callback_list.on_train_end(logs)
    return model.history


def _log_names(model: Any, validation: bool) -> list[str]:
    names = list(model.get_metrics_result())
    return names + [f"val_{name}" for name in names] if validation else names


class _TensorFlowChunks:
    """A ``tf.function`` running ``count`` epochs (and their validation) from ``first_epoch``."""

    def __init__(self, model: Any, x: Any, y: Any, validation: tuple[Any, Any] | None, *, size: int,
                 shuffle: bool, seed: int, capacity: int, stopper: Any):
        import tensorflow as tf

        from nnlab.training.device_loop import _build

        self.model = model
        x, y = (a if tf.is_tensor(a) else tf.constant(a) for a in (x, y))
        _build(model, x[:size], y[:size])
        self.names = _log_names(model, validation is not None)
        self.rule = StopRule.of(stopper, self.names)
        # Where the loop keeps the best epoch's weights (restore_best_weights only).
        keep = self.rule is not None and self.rule.keep_best
        self.best = [tf.Variable(w, trainable=False) for w in model.weights] if keep else []
        rows, seed = int(x.shape[0]), int(seed)
        val = None if validation is None else tuple(a if tf.is_tensor(a) else tf.constant(a) for a in validation)

        def batches(data, count_rows, order):
            """``(whole batches, rows left, batch(start, length))`` over the rows in ``order`` (None: as they are)."""
            whole, rest = count_rows // size, count_rows % size
            every_row = tf.range(count_rows) if order is None else order

            def batch(start, length):
                if order is None and length == count_rows:
                    return data
                index = tf.slice(every_row, [start], [length])  # a static length: XLA compiles it as well
                return tuple(tf.gather(a, index) for a in data)

            return whole, rest, batch

        def run_steps(step, data, count_rows, order):
            whole, rest, batch = batches(data, count_rows, order)
            if whole == 1:  # a full batch: no loop around one step
                step(batch(0, size))
            elif whole:
                def body(i):
                    step(batch(i * size, size))
                    return (i + 1,)
                tf.while_loop(lambda i: i < whole, body, (tf.constant(0),))
            if rest:
                step(batch(whole * size, rest))

        train_step = tf.autograph.experimental.do_not_convert(model.train_step)
        test_step = tf.autograph.experimental.do_not_convert(model.test_step)

        def epoch_logs(epoch):
            model.reset_metrics()
            # A shuffle XLA can compile too (it has no StatelessShuffle kernel): rank random keys.
            order = (tf.argsort(tf.random.stateless_uniform((rows,), seed=tf.stack([seed, epoch])))
                     if shuffle else None)
            run_steps(train_step, (x, y), rows, order)
            values = list(model.get_metrics_result().values())
            if val is not None:
                model.reset_metrics()
                run_steps(test_step, val, int(val[0].shape[0]), None)
                values += list(model.get_metrics_result().values())
            return tf.stack([tf.cast(v, tf.float32) for v in values])

        def chunk(first_epoch, count, best, has_best, wait):
            rule = self.rule  # fixed for the fit: traced in, so a fit without one runs none of its ops

            def body(e, ran, logs, best, has_best, wait, improved_at):
                epoch = first_epoch + e
                row = epoch_logs(epoch)
                logs = logs.write(e, row)
                stop = tf.logical_not(tf.reduce_all(tf.math.is_finite(row[:1])))  # the loss comes first
                if rule is not None:
                    value = row[rule.index]
                    shifted = tf.cast(tf.cast(value, tf.float64) - rule.min_delta, tf.float32)
                    better = shifted < best if rule.lower_is_better else shifted > best
                    improved = tf.logical_or(tf.logical_not(has_best), better)
                    wait = tf.where(improved, 0, wait + 1)
                    best = tf.where(improved, value, best)
                    has_best = tf.logical_or(has_best, improved)
                    if rule.keep_best:
                        with tf.control_dependencies([row]):
                            tf.cond(improved, lambda: tf.group(*[b.assign(w) for b, w in zip(self.best, model.weights)]),
                                    tf.no_op)
                    improved_at = tf.where(improved, e, improved_at)
                    patience_over = tf.logical_and(wait >= rule.patience, epoch > 0)
                    stop = tf.logical_or(stop, tf.logical_and(tf.logical_not(improved), patience_over))
                return tf.where(stop, count, e + 1), e + 1, logs, best, has_best, wait, improved_at

            # A fixed size, which XLA needs; the rows past the epochs run are left out by the caller.
            logs = tf.TensorArray(tf.float32, size=capacity, element_shape=(len(self.names),))
            _, ran, logs, _, _, _, improved_at = tf.while_loop(
                lambda e, *_: e < count, body,
                (tf.constant(0), tf.constant(0), logs, best, has_best, wait, tf.constant(-1)))
            return logs.stack(), ran, improved_at

        # XLA when the config asks for it (on this CPU it is slower: bench/bench_kfold.py).
        self.chunk = tf.function(chunk, autograph=False, reduce_retracing=True, jit_compile=model.jit_compile is True)

    def run(self, first_epoch: int, count: int, stopper: Any):
        """Run the chunk; returns ``(per-epoch log rows, best weights or None)``."""
        import tensorflow as tf

        best = getattr(stopper, "best", None)
        logs, ran, improved_at = self.chunk(tf.constant(first_epoch), tf.constant(count),
                                       tf.constant(0.0 if best is None else best, tf.float32),
                                       tf.constant(best is not None), tf.constant(int(getattr(stopper, "wait", 0) or 0)))
        best_weights = None
        rule = self.rule
        if rule is not None and rule.keep_best and int(improved_at) >= 0:
            best_weights = [b.numpy() for b in self.best]
        return logs.numpy()[:int(ran)], best_weights

    def finish(self) -> None:
        """Nothing to write back: the loop trained the model's own variables."""


class _JaxChunks:
    """A jitted ``lax.while_loop`` running ``count`` epochs (and their validation) over Keras's stateless steps."""

    def __init__(self, model: Any, x: Any, y: Any, validation: tuple[Any, Any] | None, *, size: int,
                 shuffle: bool, seed: int, capacity: int, stopper: Any):
        import jax
        import jax.numpy as jnp

        from nnlab.training.device_loop import _build

        self.model = model
        _build(model, x[:size], y[:size])
        model.reset_metrics()
        self.names = _log_names(model, validation is not None)
        self.rule = StopRule.of(stopper, self.names)
        self.metrics_reset = [v.value for v in model.metrics_variables]
        groups = {id(v): (0, i) for i, v in enumerate(model.trainable_variables)}
        groups.update({id(v): (1, i) for i, v in enumerate(model.non_trainable_variables)})
        self.weight_places = [groups[id(w)] for w in model.weights]
        rows = int(x.shape[0])
        data = (jax.device_put(x), jax.device_put(y))
        val = None if validation is None else tuple(jax.device_put(a) for a in validation)
        key = jax.random.key(int(seed))
        width = len(self.names)

        def run_steps(step, state, arrays, count_rows, order):
            """``state`` after ``step`` over every batch, and the logs of the last one."""
            whole, rest = count_rows // size, count_rows % size
            index = jnp.arange(count_rows) if order is None else order

            def batch(rows_of):
                if order is None and rows_of.shape[0] == count_rows:
                    return arrays
                return tuple(a[rows_of] for a in arrays)

            blocks = index[:whole * size].reshape(whole, size)
            if whole and rest == 0:
                last, blocks = blocks[-1], blocks[:-1]
            else:
                last = index[whole * size:]
            if blocks.shape[0]:
                state = jax.lax.scan(lambda s, r: (step(s, batch(r))[1], None), state, blocks)[0]
            logs, state = step(state, batch(last))
            return logs, state

        def epoch_logs(state, epoch, data, val, metrics_reset):
            trainable, non_trainable, optimizer, _ = state
            order = jax.random.permutation(jax.random.fold_in(key, epoch), rows) if shuffle else None
            logs, state = run_steps(model.train_step, (trainable, non_trainable, optimizer, metrics_reset),
                                    data, rows, order)
            values = list(logs.values())
            if val is not None:
                trainable, non_trainable, optimizer, _ = state
                val_logs, (_, _, metrics) = run_steps(model.test_step, (trainable, non_trainable, metrics_reset),
                                                      val, int(val[0].shape[0]), None)
                state = (trainable, non_trainable, optimizer, metrics)
                values += list(val_logs.values())
            return state, jnp.stack([jnp.asarray(v, jnp.float32) for v in values])

        # The arrays are arguments, not constants of the compiled code (which would copy them into it).
        def chunk(state, data, val, metrics_reset, first_epoch, count, best, has_best, wait):
            rule = self.rule  # fixed for the fit: traced in, so a fit without one runs none of its ops
            weights = [state[g][i] for g, i in self.weight_places] if rule is not None and rule.keep_best else []

            def body(carry):
                e, ran, state, logs, best, has_best, wait, best_weights, improved_at = carry
                epoch = first_epoch + e
                state, row = epoch_logs(state, epoch, data, val, metrics_reset)
                logs = logs.at[e].set(row)
                stop = ~jnp.all(jnp.isfinite(row[:1]))  # the loss comes first
                if rule is not None:
                    value = row[rule.index]
                    shifted = value - rule.min_delta  # float32: Keras rounds float64(v) - min_delta to float32
                    better = shifted < best if rule.lower_is_better else shifted > best
                    improved = jnp.logical_or(~has_best, better)
                    wait = jnp.where(improved, 0, wait + 1)
                    best = jnp.where(improved, value, best)
                    has_best = jnp.logical_or(has_best, improved)
                    best_weights = [jnp.where(improved, state[g][i], b)
                                    for (g, i), b in zip(self.weight_places, best_weights)]
                    improved_at = jnp.where(improved, e, improved_at)
                    patience_over = jnp.logical_and(wait >= rule.patience, epoch > 0)
                    stop = jnp.logical_or(stop, jnp.logical_and(~improved, patience_over))
                return (jnp.where(stop, count, e + 1), e + 1, state, logs, best, has_best, wait, best_weights,
                        improved_at)

            logs = jnp.zeros((capacity, width), jnp.float32)
            carry = (jnp.int32(0), jnp.int32(0), state, logs, best, has_best, wait, weights, jnp.int32(-1))
            _, ran, state, logs, _, _, _, best_weights, improved_at = jax.lax.while_loop(
                lambda carry: carry[0] < count, body, carry)
            return state, logs, ran, best_weights, improved_at

        self.chunk = jax.jit(chunk)
        self.arrays = (data, val, self.metrics_reset)

    def run(self, first_epoch: int, count: int, stopper: Any):
        """Run the chunk; returns ``(per-epoch log rows, best weights or None)``."""
        import jax.numpy as jnp

        best = getattr(stopper, "best", None)
        rule = self.rule
        from nnlab.training.device_loop import _state

        state = _state(self.model, optimizer=True)  # read anew: a callback may have set the weights
        state, logs, ran, best_weights, improved_at = self.chunk(
            state, *self.arrays, jnp.int32(first_epoch), jnp.int32(count),
            jnp.float32(0.0 if best is None else best), jnp.bool_(best is not None),
            jnp.int32(int(getattr(stopper, "wait", 0) or 0)))
        from nnlab.training.device_loop import _assign

        _assign(self.model, state, optimizer=True)
        kept = None
        if rule is not None and rule.keep_best and int(improved_at) >= 0:
            kept = [np.asarray(w) for w in best_weights]
        return np.asarray(logs)[:int(ran)], kept

    def finish(self) -> None:
        """Apply the optimizer's final step to the variables, as fit does at its end."""
        self.model.optimizer.finalize_variable_values(self.model.trainable_weights)

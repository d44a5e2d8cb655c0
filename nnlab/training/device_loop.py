"""Training with the data and the loop on the device: each epoch one compiled call (JAX backend).

Keras's JAX trainer runs one jitted step per batch from Python, and every batch
is cut from host memory and copied to the accelerator; with ``steps_per_execution``
it still calls the jitted step once per batch, from a Python loop. At the lessons'
batch size of 32 that per-step overhead, not the arithmetic, is most of an epoch
(Fashion-MNIST: 1,688 steps an epoch). Here the training and validation arrays
are put on the device once, each epoch's shuffled order is one small index array,
and the epoch's steps run as one ``jax.lax.scan`` over Keras's own stateless
``model.train_step``; validation is one scan over ``model.test_step``. The updates
are the same as fit's on the same batches (every row once per epoch, the last
batch partial); only the order of the shuffled rows differs.

Callbacks see what they see from fit with ``steps_per_execution`` as large as an
epoch: ``on_train_batch_begin`` and ``on_train_batch_end`` once per epoch (the
latter with the epoch's logs), and the model's variables up to date at every
epoch's end.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

#: Arrays up to this fraction of the device's free memory are put on it (GPUs report
#: their memory; on the CPU the arrays stay where they are).
DEVICE_MEMORY_SHARE = 0.5


def fits_on_device(*arrays: np.ndarray | None) -> bool:
    """Whether ``arrays`` together fit in the default JAX device's memory with room to train.

    Returns:
        True when the device does not report its memory (the CPU), or the arrays take
        at most :data:`DEVICE_MEMORY_SHARE` of what is free on it.
    """
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    if not limit:
        return True
    free = limit - stats.get("bytes_in_use", 0)
    return sum(a.nbytes for a in arrays if a is not None) <= DEVICE_MEMORY_SHARE * free


def fit(model: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int, epochs: int,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None, shuffle: bool = True, seed: int = 0,
        callbacks: Sequence[Any] = (), initial_epoch: int = 0) -> Any:
    """``model.fit`` on the JAX backend with the data on the device and one compiled call per epoch.

    Args:
        model: a compiled Keras model (JAX backend).
        x, y: the training arrays.
        batch_size: rows per step; the last step of an epoch takes the rest.
        epochs: index of the last epoch, as fit's ``epochs``.
        validation_data: ``(x_val, y_val)``, measured after every epoch, or None.
        shuffle: a new order of the rows every epoch.
        seed: seed of the shuffle (numpy's generator, so a run repeats exactly).
        callbacks: Keras callbacks, called as fit calls them (per epoch).
        initial_epoch: the epoch to start at (resuming).

    Returns:
        The ``keras.callbacks.History`` of the fit, as ``model.fit`` returns it.
    """
    import jax
    import jax.numpy as jnp

    from nnlab.backend import keras

    k = keras()
    rows = len(x)
    size = max(1, min(int(batch_size), rows))
    _build(model, x[:size], y[:size])
    train_data = (jax.device_put(x), jax.device_put(y))
    val_data = None if validation_data is None else tuple(jax.device_put(a) for a in validation_data)
    train_epoch, test_epoch = _compiled_epochs(model)
    steps = -(-rows // size)
    callback_list = k.callbacks.CallbackList(list(callbacks), add_history=True, add_progbar=False, model=model,
                                             verbose=0, epochs=epochs, steps=steps)
    order_rng = np.random.default_rng(seed)
    model.stop_training = False
    logs: dict[str, float] = {}
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        order = order_rng.permutation(rows) if shuffle else np.arange(rows)
        callback_list.on_train_batch_begin(0)
        state = _state(model, optimizer=True)  # read anew: a callback may have set the weights
        for part in _batches(order, size):
            state = train_epoch(state, *train_data, jnp.asarray(part))
        _assign(model, state, optimizer=True)
        logs = dict(model.get_metrics_result())
        callback_list.on_train_batch_end(steps - 1, logs)
        if val_data is not None:
            model.reset_metrics()
            state = _state(model, optimizer=False)
            for part in _batches(np.arange(len(val_data[0])), size):
                state = test_epoch(state, *val_data, jnp.asarray(part))
            _assign(model, state, optimizer=False)
            logs.update({f"val_{name}": value for name, value in model.get_metrics_result().items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs)
    return model.history


def _batches(order: np.ndarray, size: int) -> list[np.ndarray]:
    """The epoch's row order as at most two index blocks: ``(steps, size)`` whole batches, then ``(1, rest)``.

    Each block shape compiles once; every epoch after the first reuses both.
    """
    whole = len(order) // size * size
    parts = [order[:whole].reshape(-1, size).astype(np.int32)] if whole else []
    if whole < len(order):
        parts.append(order[whole:].reshape(1, -1).astype(np.int32))
    return parts


def _compiled_epochs(model: Any):
    """``(train_epoch, test_epoch)``: jitted scans of the model's train and test steps over index blocks."""
    import jax

    def train_epoch(state, x, y, blocks):
        def step(state, rows):
            _, state = model.train_step(state, (x[rows], y[rows]))
            return state, None

        return jax.lax.scan(step, state, blocks)[0]

    def test_epoch(state, x, y, blocks):
        def step(state, rows):
            _, state = model.test_step(state, (x[rows], y[rows]))
            return state, None

        return jax.lax.scan(step, state, blocks)[0]

    return jax.jit(train_epoch), jax.jit(test_epoch)


def _build(model: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Create what fit creates before its first step: the compiled metrics (and loss
    tracker) by one evaluate of a batch, unless a check of the model already built them
    (:func:`nnlab.model.check_on_rows`: one compilation fewer), and the optimizer's variables."""
    parts = [getattr(model, name, None) for name in ("_compile_metrics", "_compile_loss")]
    if not (model.built and all(part is None or getattr(part, "built", False) for part in parts)):
        model.evaluate(x, y, batch_size=len(x), verbose=0)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.reset_metrics()


def _state(model: Any, *, optimizer: bool) -> tuple:
    """The model's variables as the stateless state Keras's JAX train_step (or test_step) takes."""
    values = [[v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]]
    if optimizer:
        values.append([v.value for v in model.optimizer.variables])
    values.append([v.value for v in model.metrics_variables])
    return tuple(values)


def _assign(model: Any, state: tuple, *, optimizer: bool) -> None:
    """Write a state back into the model's variables (what callbacks and saving read)."""
    groups = [model.trainable_variables, model.non_trainable_variables]
    if optimizer:
        groups.append(model.optimizer.variables)
    groups.append(model.metrics_variables)
    for variables, values in zip(groups, state):
        for variable, value in zip(variables, values):
            variable.assign(value)

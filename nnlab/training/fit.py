"""The one fit: a compiled model trained on prepared data, with nnlab's callbacks.

``nnlab train``, ``train --resume``, every k-fold fold, k-fold's final model and
every sweep trial train through :class:`Fit`, so every ``training.*`` setting
means the same in all of them: the input pipeline, steps per execution, XLA,
shuffling, early stopping, TensorBoard. What differs between callers is only
which parts they ask for (a history file, progress, many short epochs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from nnlab.backend import keras
from nnlab.config import Config
from nnlab.training.data import PreparedData, batch_size
from nnlab.training.feed import Feed, pipeline

#: ``report(epoch, epochs, logs, seconds)``, called after every epoch.
EpochReport = Callable[[int, int, dict[str, float], float], None]


def check_training(config: Config) -> None:
    """Refuse, before anything is written, training settings this installation cannot run.

    Raises:
        ConfigError: a pipeline the backend cannot run (see :func:`nnlab.training.feed.pipeline`), or
            ``training.tensorboard`` without the tensorboard package.
    """
    import importlib.util

    pipeline(config, config.backend)
    if config.training.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise config.error(("training", "tensorboard"), "TensorBoard logs need the tensorboard package: "
                                                        "pip install 'nnlab[tensorboard]'")


class Fit:
    """One fit of ``model`` on ``data``: build it, :meth:`run` it, then read what happened.

    Everything a stopped or crashed fit leaves (the history so far, the weights of
    the last whole epoch) stays readable after :meth:`run` raises.

    Args:
        config: the validated config (batch size, shuffle, early stopping, TensorBoard, the levers).
        model: the compiled model (:func:`nnlab.training.feed.configure_execution` applied).
        data: the prepared arrays; validation rows, when there are some, are measured every epoch.
        epochs: epochs to train (default ``training.epochs``).
        seed: seed of the batch shuffle.
        report: progress callback, or None.
        history_path: a history.csv to append each epoch to, or None.
        history: the history of earlier epochs (resuming).
        early_stopping: apply ``training.early_stopping`` when configured.
        tensorboard_dir: where TensorBoard logs go when ``training.tensorboard`` is on (None: nowhere).
        keep_last_epoch: keep the weights of the last whole epoch (a checkpoint for resuming).
        checkpoint: ``checkpoint(epoch)`` saves the run's checkpoint; called every
            :func:`~nnlab.training.callbacks.checkpoint_seconds` of training (None: never).
        extra_callbacks: more Keras callbacks that read each epoch's logs (MLflow's).
        repeat: many short epochs (k-fold): see :class:`nnlab.training.feed.Feed`.
    """

    def __init__(self, config: Config, model: Any, data: PreparedData, *, epochs: int | None = None, seed: int,
                 report: EpochReport | None = None, history_path: Path | None = None,
                 history: dict[str, list[float]] | None = None, early_stopping: bool = True,
                 tensorboard_dir: Path | None = None, keep_last_epoch: bool = False, repeat: bool = False,
                 checkpoint: Callable[[int], None] | None = None, extra_callbacks: list[Any] | None = None):
        from nnlab.training.callbacks import (DivergenceGuard, EpochReporter, HistoryLog, LastEpochWeights,
                                           PeriodicCheckpoint, StopCheck)

        k = keras()
        self.config, self.model, self.seed = config, model, seed
        self.epochs = config.training.epochs if epochs is None else int(epochs)
        self.feed = Feed.of(pipeline(config, k.backend.backend()), batch_size(config, len(data.x_train)),
                            (data.x_train, data.y_train), data.validation, repeat=repeat)
        self.log = HistoryLog(history_path, history)
        self.guard = DivergenceGuard()
        self.last_epoch = LastEpochWeights() if keep_last_epoch else None
        self.callbacks: list[Any] = [self.log, self.guard]
        # Read the weights, so a fused fit calls it at the end of each chunk of epochs (the others: every epoch).
        self.chunk_callbacks: list[Any] = [self.last_epoch] if self.last_epoch is not None else []
        if checkpoint is not None:
            saver = PeriodicCheckpoint(checkpoint, self.log.flush)
            # After the history has this epoch: a fused fit calls chunk callbacks after replaying the
            # chunk's epochs, Keras's fit calls every callback in list order.
            (self.chunk_callbacks if self.feed.kind == "fused" else self.callbacks).append(saver)
        if report is not None:
            self.callbacks.append(EpochReporter(report, self.epochs, seconds=lambda: self.feed.epoch_seconds))
        self.stopper = None
        stop = config.training.early_stopping
        if stop is not None and early_stopping:
            self.stopper = k.callbacks.EarlyStopping(monitor=stop.monitor, patience=stop.patience,
                                                     min_delta=stop.min_delta, mode=stop.mode,
                                                     restore_best_weights=stop.restore_best_weights)
            self.callbacks.append(self.stopper)
        if config.training.tensorboard and tensorboard_dir is not None:
            self.callbacks.append(k.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
        self.callbacks += list(extra_callbacks or [])
        self.callbacks.append(StopCheck())  # last: a stop ends training after the epoch is recorded

    def run(self, initial_epoch: int = 0) -> "Fit":
        """Train from ``initial_epoch`` to the last epoch (or until early stopping or divergence).

        Raises:
            Interrupted: a stop signal (see :func:`nnlab.interrupts.stop_signals`).
            Exception: whatever Keras or the backend raises.
        """
        # A resumed run's shuffle continues from another seed, as its global seed does.
        # A fused fit draws each epoch's order from (seed, epoch), so it needs no new seed to resume.
        seed = self.seed if self.feed.kind == "fused" else self.seed + initial_epoch
        self.feed.fit(self.model, epochs=self.epochs, callbacks=self.callbacks, shuffle=self.config.training.shuffle,
                      seed=seed, initial_epoch=initial_epoch, chunk_callbacks=self.chunk_callbacks,
                      stopper=self.stopper)
        return self

    @property
    def history(self) -> dict[str, list[float]]:
        """Every finished epoch's metrics (validation as ``val_*``)."""
        return self.log.history

    @property
    def epochs_done(self) -> int:
        """Epochs finished, earlier ones of a resumed run included."""
        return self.log.epochs_done

    @property
    def diverged_at(self) -> int | None:
        """The epoch whose loss became NaN or infinite, or None."""
        return self.guard.diverged_at

    def execution(self) -> dict[str, Any]:
        """What ran: ``input_pipeline``, ``steps_per_execution`` and ``jit_compile`` (metrics.json records it).

        A device feed runs an epoch's steps in one compiled call, always with XLA; a fused feed
        runs many epochs in one (``epochs_per_call``: the most it ran), with XLA on JAX, and on
        TensorFlow when ``jit_compile`` is on.
        """
        if self.feed.kind == "device":
            return {"input_pipeline": "device", "steps_per_execution": self.feed.steps, "jit_compile": True}
        if self.feed.kind == "fused":
            xla = keras().backend.backend() == "jax" or getattr(self.model, "jit_compile", None) is True
            return {"input_pipeline": "fused", "steps_per_execution": self.feed.steps, "jit_compile": xla,
                    "epochs_per_call": self.feed.epochs_per_call}
        jit = getattr(self.model, "jit_compile", None)
        return {"input_pipeline": self.feed.kind,
                "steps_per_execution": int(getattr(self.model, "steps_per_execution", 1) or 1),
                "jit_compile": jit if isinstance(jit, bool) else None}

    def early_stopped(self) -> dict[str, Any] | None:
        """``{"stopped_epoch", "restored_epoch"}`` (1-based) when early stopping ended the fit, else None."""
        if self.stopper is None or not getattr(self.stopper, "stopped_epoch", 0):
            return None
        restored = None
        if self.config.training.early_stopping.restore_best_weights and getattr(self.stopper, "best_weights", None):
            restored = int(self.stopper.best_epoch) + 1
        return {"monitor": self.stopper.monitor, "stopped_epoch": int(self.stopper.stopped_epoch) + 1,
                "restored_epoch": restored}

"""``nnlab train``: one config in, one run folder out.

The order matters: everything that can be refused (config, data, model against
data) is checked before the run folder exists, so a refused config leaves nothing
behind; from then on the folder's status always tells the truth: running,
completed, failed, interrupted or diverged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.backend import keras, save_model_atomically, seed_everything, use_backend
from nnlab.config import Config
from nnlab.datasets.loading import load_dataset
from nnlab.environment import environment
from nnlab.errors import NnlabError
from nnlab.keras_objects import keras_reason
from nnlab.metric_names import directions_of
from nnlab.model import build_model, check_on_rows, count_params, summary_text
from nnlab.store import format as runfile
from nnlab.store.folder import RunFolder, utc_now, write_history_csv
from nnlab.store.format import RunMetrics, Status
from nnlab.store.liveness import beating, still_running, this_process
from nnlab.store.reading import read_history, read_metrics
from nnlab.training.data import PreparedData, prepare, release_sequences
from nnlab.training.feed import configure_execution
from nnlab.training.fit import EpochReport, Fit, check_training
from nnlab.training.results import divergence_message, pruned_message, record_results, run_stage, writing
from nnlab.tracking import (MirroredRun, Target, Tracker, epoch_callback, finishing, start_tracker, target_of,
                            tracking_experiment)


@dataclass
class RunResult:
    """What ``train`` returns: the folder, its metrics and the process exit code."""

    run: RunFolder
    metrics: dict[str, Any]
    exit_code: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)


def new_metrics(run: RunFolder, config: Config, kind: str, dataset: Any, *, started: Any, params: int,
                train_rows: int, validation_rows: int, tags: dict[str, Any] | None = None) -> RunMetrics:
    """metrics.json of a run that starts now (train and k-fold alike)."""
    metrics = RunMetrics(run_id=run.run_id, name=config.name, kind=kind, dataset=dataset.name, task=dataset.task,
                         started=started.isoformat(timespec="seconds"), epochs_planned=config.training.epochs,
                         params=params, train_rows=train_rows, validation_rows=validation_rows,
                         test_rows=len(dataset.y_test), group=config.group_id())
    metrics.tag(tags)
    for key, value in this_process().items():
        setattr(metrics, key, value)
    metrics.heartbeat = metrics.started
    return metrics


def data_record(dataset: Any, data_dir: str | Path | None) -> dict[str, Any]:
    """Where a run's data came from, for env.json: ``nnlab predict`` finds it again there, and the
    files' SHA-256 say whether it is still the same data."""
    folder = data_dir
    if folder is None and str(dataset.source).startswith("data dir "):
        folder = str(dataset.source)[len("data dir "):]
    return {"name": dataset.name, "source": dataset.source,
            "data_dir": None if folder is None else str(Path(folder).expanduser().resolve()),
            "files": dict(dataset.extras.get("files") or {})}


def write_run_files(run: RunFolder, config: Config, model_summary: str, argv: list[str] | None,
                    data: dict[str, Any], **environment_extras: Any) -> None:
    """config.yaml, env.json (with ``data``, see :func:`data_record`) and summary.txt of a new run folder."""
    run.write_yaml(runfile.CONFIG, config.to_dict())
    run.write_json(runfile.ENV, {**environment(config.seed, argv, config.source), "overrides": config.overrides,
                                 "config_source": config.source, "data": data, **environment_extras})
    run.write_text(runfile.SUMMARY, model_summary + "\n")


def train(config: Config, *, runs_dir: str | Path = "runs", data_dir: str | Path | None = None,
          report: EpochReport | None = None, argv: list[str] | None = None,
          tags: dict[str, Any] | None = None, tracking: Target | None = None,
          parent: MirroredRun | None = None, prune: Any = None) -> RunResult:
    """Train one config and write its run folder.

    Args:
        config: the validated config.
        runs_dir: the runs root.
        data_dir: a folder of downloaded dataset files.
        report: called after every epoch (progress display), or None.
        argv: the command line to record in env.json.
        tags: extra keys for metrics.json (a sweep's id and the trial's parameters; ``rerun_of``).
        tracking: log the run to MLflow there as it trains (:mod:`nnlab.tracking`).
        parent: the MLflow run this one nests under (a sweep's).
        prune: a search's :class:`~nnlab.training.callbacks.PruneCheck`: when it stops the fit, the run
            records its results so far and ends ``pruned``.

    Returns:
        The run folder, its metrics and the exit code (0 completed or pruned, 1 failed or
        diverged, 130/143 interrupted).

    Raises:
        NnlabError: for anything refused before the run folder exists.
        RunWriteError: when the run folder cannot be written.
    """
    use_backend(config.backend, source=config.source)
    check_training(config)  # a pipeline the backend cannot run, TensorBoard not installed: before anything
    experiment = tracking_experiment(tracking)  # an unreachable server is refused before anything trains
    seed_everything(config.seed, config.training.deterministic)
    dataset = load_dataset(config, data_dir)
    data = prepare(config, dataset)
    release_sequences(dataset)
    model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
    configure_execution(model, config)
    # After the levers: Keras builds its test function here, once, with the steps per call it then keeps.
    check_on_rows(config, model, data.x_train, data.y_train)
    source = data_record(dataset, data_dir)

    started = utc_now()
    run = RunFolder.create(runs_dir, config.name, started=started)
    metrics = new_metrics(run, config, "train", dataset, started=started, params=count_params(model),
                          train_rows=len(data.x_train), validation_rows=0 if data.x_val is None else len(data.x_val),
                          tags=tags)
    with writing(run, metrics):
        write_run_files(run, config, summary_text(model), argv, source)
        run.write_json(runfile.METRICS, metrics.to_dict())
    return _fit_and_record(config, model, data, run, metrics, report, tracker=start_tracker(experiment, run, parent),
                           prune=prune)


def resume(run_dir: str | Path, *, data_dir: str | Path | None = None, report: EpochReport | None = None,
           argv: list[str] | None = None, tracking: Target | None = None) -> RunResult:
    """Continue an interrupted (or failed) run from its checkpoint, in the same folder.

    The run's own config.yaml is used as it is; the history continues where the
    checkpoint stopped. A run whose training ended but whose results were not all recorded
    (``checkpoint_trained``: a crash or a stop after the fit) is not trained again: its
    results are recorded from the trained model.

    Args:
        run_dir: the run folder.
        data_dir: a folder of downloaded dataset files.
        report: progress callback.
        argv: the command line, recorded in env.json's ``resumed`` list.
        tracking: go on logging the run to MLflow there (the MLflow run it had, found by its id).

    Returns:
        As :func:`train`.

    Raises:
        NnlabError: when the folder is not a resumable run.
    """
    from nnlab.config import load_config
    from nnlab.store.reading import read_env

    run = RunFolder(Path(run_dir))
    recorded = read_metrics(run.path)
    metrics = RunMetrics.from_dict(recorded)
    if metrics.kind != "train":
        raise NnlabError(f"only train runs can be resumed (this one is a {metrics.kind or 'unknown'} run)",
                         source=str(run.path))
    if metrics.status is Status.COMPLETED:
        raise NnlabError("the run is already completed; nothing to resume", source=str(run.path))
    alive = still_running(recorded)
    if alive is not None:
        raise NnlabError(f"the run is still running ({alive}); stop it first, or resume it once it is "
                         "stopped or lost", source=str(run.path))
    checkpoint = run.path / runfile.CHECKPOINT
    if not checkpoint.is_file():
        raise NnlabError(f"has no {runfile.CHECKPOINT} to resume from (it stopped before its first epoch "
                         "finished); start it again with nnlab train", source=str(run.path))
    config = load_config(run.path / runfile.CONFIG)
    done = int(metrics.checkpoint_epoch or 0)
    # The fit ended (a checkpoint of the last epoch: the run was lost while recording its results).
    trained = bool(metrics.checkpoint_trained) or done >= config.training.epochs
    use_backend(config.backend, source=str(run.path / runfile.CONFIG))
    check_training(config)
    experiment = tracking_experiment(tracking if tracking is not None else target_of(None, config=config))
    seed_everything(config.seed + done, config.training.deterministic)
    dataset = load_dataset(config, data_dir)
    data = prepare(config, dataset)
    release_sequences(dataset)
    try:
        model = keras().models.load_model(checkpoint)
    except Exception as err:
        raise NnlabError(f"cannot load {runfile.CHECKPOINT}: {keras_reason(err)}", source=str(run.path)) from None
    configure_execution(model, config)
    history = {name: values[:done] for name, values in read_history(run.path).items() if name != "epoch"}
    env = read_env(run.path)
    env.setdefault("resumed", []).append({"at_epoch": done, "time": utc_now().isoformat(timespec="seconds"),
                                          "command": environment(config.seed, argv)["command"]})
    metrics.end(Status.RUNNING)
    metrics.finished = None
    with writing(run, metrics):
        run.write_json(runfile.ENV, env)
        if history:
            write_history_csv(run.file(runfile.HISTORY), history)
        run.write_json(runfile.METRICS, metrics.to_dict())
    return _fit_and_record(config, model, data, run, metrics, report, initial_epoch=done, history=history,
                           previous_seconds=float(metrics.wall_time_s or 0), trained=trained,
                           tracker=start_tracker(experiment, run))


def _fit_and_record(config: Config, model: Any, data: PreparedData, run: RunFolder, metrics: RunMetrics,
                    report: EpochReport | None, *, initial_epoch: int = 0,
                    history: dict[str, list[float]] | None = None, previous_seconds: float = 0.0,
                    trained: bool = False, tracker: Tracker | None = None, prune: Any = None) -> RunResult:
    """The fit (unless the model is ``trained`` already), then the results, each outcome recorded
    honestly in the run folder (and sent to MLflow by ``tracker``, whatever the outcome)."""
    clock = time.perf_counter()
    callbacks = [epoch_callback(tracker)] if tracker is not None else []
    if prune is not None:
        callbacks.append(prune)
    with beating(run, metrics), finishing(tracker, run.path), writing(run, metrics):
        fitting = Fit(config, model, data, seed=config.seed, report=report, history_path=run.file(runfile.HISTORY),
                      history=history, tensorboard_dir=run.path / runfile.TENSORBOARD, keep_last_epoch=True,
                      checkpoint=lambda epoch: _save_periodic_checkpoint(model, run, metrics, epoch),
                      extra_callbacks=callbacks)
        _record_execution(metrics, fitting)
        fit_clock = time.perf_counter()
        exit_code = 0 if trained else run_stage(run, metrics, lambda: fitting.run(initial_epoch),
                                                stopped=lambda: f"after {fitting.epochs_done} epochs")
        metrics.fit_time_s = round(float(metrics.fit_time_s or 0) + time.perf_counter() - fit_clock, 3)
        _record_execution(metrics, fitting)
        if exit_code == 0 and fitting.diverged_at is not None:
            metrics.end(Status.DIVERGED, divergence_message(fitting.diverged_at))
            exit_code = 1
        fit_ended = metrics.status is Status.RUNNING
        metrics.epochs_run = fitting.epochs_done
        # A recording resumed after the fit keeps what early stopping did in it.
        metrics.early_stopping = fitting.early_stopped() or (metrics.early_stopping if trained else None)
        metrics.directions = directions_of(model)
        if fitting.history and not trained:
            write_history_csv(run.file(runfile.HISTORY), fitting.history)
        if metrics.status is Status.RUNNING:
            exit_code = run_stage(run, metrics, lambda: _results(config, model, data, fitting, run, metrics),
                                  stopped=lambda: "while saving results", failed="after training: ")
            if metrics.status is Status.RUNNING:
                if prune is not None and prune.stopped_at is not None:
                    metrics.end(Status.PRUNED, pruned_message(prune.stopped_at, config.training.epochs))
                else:
                    metrics.end(Status.COMPLETED)
                (run.path / runfile.CHECKPOINT).unlink(missing_ok=True)
                metrics.checkpoint_epoch = metrics.checkpoint_trained = None
        if metrics.status not in (Status.COMPLETED, Status.PRUNED):
            _save_checkpoint(model, run, metrics, fitting, fit_ended)
        metrics.wall_time_s = round(previous_seconds + time.perf_counter() - clock, 3)
        metrics.finished = utc_now().isoformat(timespec="seconds")
        run.write_json(runfile.METRICS, metrics.to_dict())
    return RunResult(run=run, metrics=metrics.to_dict(), exit_code=exit_code, history=fitting.history)


def _save_periodic_checkpoint(model: Any, run: RunFolder, metrics: RunMetrics, epoch: int) -> None:
    """Save the model after ``epoch`` as the checkpoint while training goes on, so a run that is
    killed outright (and found ``lost``) resumes from there."""
    save_model_atomically(model, run.file(runfile.CHECKPOINT))
    metrics.checkpoint_epoch, metrics.checkpoint_trained, metrics.epochs_run = epoch, None, epoch
    run.write_json(runfile.METRICS, metrics.to_dict())


def _save_checkpoint(model: Any, run: RunFolder, metrics: RunMetrics, fitting: Fit, fit_ended: bool) -> None:
    """What ``nnlab train --resume`` starts from: the trained model when the fit ended and only
    recording its results did not (``checkpoint_trained``), else the last whole epoch with its
    optimizer state."""
    if fit_ended:
        save_model_atomically(model, run.file(runfile.CHECKPOINT))
        metrics.checkpoint_epoch, metrics.checkpoint_trained = fitting.epochs_done, True
    elif fitting.last_epoch.restore(model):
        save_model_atomically(model, run.file(runfile.CHECKPOINT))
        metrics.checkpoint_epoch, metrics.checkpoint_trained = fitting.last_epoch.epoch, None


def _results(config: Config, model: Any, data: PreparedData, fitting: Fit, run: RunFolder,
             metrics: RunMetrics) -> None:
    record_results(config, model, data, fitting.feed, run, metrics, fitting.history,
                   best_monitor="val_loss" if data.x_val is not None else "loss")


def _record_execution(metrics: RunMetrics, fitting: Fit) -> None:
    for key, value in fitting.execution().items():
        setattr(metrics, key, value)


"""``nnlab kfold``: k-fold validation, averaged learning curves, the best epoch, the final model.

A small training part (Boston housing has 404 rows) gives a validation score that
swings with the split, so it is cut into k folds: each fold trains a fresh model on
the other k - 1 and validates on itself every epoch (:mod:`nnlab.crossval.folds`). The
per-epoch validation curves are averaged over the folds, the best epoch is read off
the averaged curve (:mod:`nnlab.crossval.stats`), and ``--final`` trains one model on the
whole training part for that many epochs and evaluates it once on the test set,
which k-fold never touches, through the same fit and results as ``nnlab train``.

Everything fitted to data (standardization) is fitted on each fold's training rows
only: the lesson's listing normalizes with statistics of the whole training part
before splitting, which lets the validation fold leak into its own preprocessing.

Only the driver, :func:`run_kfold`, writes the run folder ``runs/<timestamp>_<name>_kfold/``;
folds run here or on an :class:`nnlab.executors.Executor` (``--jobs``, a sweep's pool, Ray).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.config import Config
from nnlab.datasets.base import Dataset
from nnlab.executors import Executor, make_executor
from nnlab.crossval.folds import (FoldError, FoldReport, FoldResult, as_fold_error, cached_dataset, fold_indices,
                               run_fold, train_fold)
from nnlab.crossval.stats import history_mean_table, smooth_curve, summarize
from nnlab.store import format as runfile
from nnlab.store.folder import RunFolder, atomic_write, utc_now, write_history_csv
from nnlab.store.format import RunMetrics, Status


@dataclass
class KFoldResult:
    """What :func:`run_kfold` returns."""

    run: RunFolder
    metrics: dict[str, Any]
    summary: dict[str, Any]
    folds: list[FoldResult] = field(default_factory=list)
    exit_code: int = 0


def run_kfold(config: Config, *, runs_dir: str | Path = "runs", data_dir: str | Path | None = None,
              final: bool = False, jobs: int = 1, executor: Executor | None = None, report: FoldReport | None = None,
              argv: list[str] | None = None, tags: dict[str, Any] | None = None, tracking: Any = None,
              parent: Any = None, prune: Any = None) -> KFoldResult:
    """Run a k-fold validation of ``config`` and write its run folder.

    Args:
        config: the validated config; ``kfold`` gives k, shuffle, monitor, mode, smoothing.
        runs_dir: the runs root.
        data_dir: a folder of downloaded dataset files.
        final: afterwards train one model on the whole training part for the best
            epoch count and evaluate it on the test set.
        jobs: processes training folds at once, this one included (1: one after another here).
        executor: where the folds run instead (``nnlab kfold`` makes its pool before it reads the config;
            a sweep passes its own); it runs :func:`nnlab.crossval.folds.run_fold`. Otherwise one is made
            for ``jobs`` and closed at the end.
        report: progress display, or None.
        argv: the command line to record in env.json.
        tags: extra keys for metrics.json (a sweep's id and the trial's parameters).
        tracking: a :class:`nnlab.tracking.Target` to log the run to (one MLflow run, a nested one per fold).
        parent: the MLflow run it nests under (a sweep's).
        prune: a search's pruning: ``prune()`` gives each fold's
            :class:`~nnlab.training.callbacks.PruneCheck` (folds then run one after another, here); a
            fold it stops ends the run ``pruned``, with the folds so far.

    Returns:
        The folder, metrics.json's content, the k-fold summary, the folds and the exit
        code (0 completed, 1 failed or diverged, 130/143 interrupted).

    Raises:
        NnlabError: for anything refused before the run folder exists.
        RunWriteError: when the run folder cannot be written.
    """
    from nnlab.backend import use_backend
    from nnlab.datasets.loading import load_dataset
    from nnlab.training.fit import check_training

    from nnlab.tracking import tracking_experiment

    use_backend(config.backend, source=config.source)
    check_training(config)  # a pipeline the backend cannot run, TensorBoard not installed: before anything
    experiment = tracking_experiment(tracking)  # an unreachable server is refused before anything trains
    owned = executor is None
    if owned:
        executor = make_executor("local", jobs=min(jobs, config.kfold.k), driver_helps=True)
    try:
        k = config.kfold.k
        dataset = load_dataset(config, data_dir)
        n = len(dataset.y_train)
        if k > n:
            raise config.error(("kfold", "k"), f"{k} folds need at least {k} training rows; the training part "
                                               f"has {n}")
        splits = fold_indices(n, k, config.kfold.shuffle, config.kfold.split_seed)
        return _run_and_record(config, dataset, splits, data_dir=data_dir, runs_dir=runs_dir, final=final,
                               jobs=jobs, executor=executor, report=report, argv=argv, tags=tags,
                               experiment=experiment, parent=parent, prune=prune)
    finally:
        if owned:
            executor.close()


def _run_and_record(config: Config, dataset: Dataset, splits: list, *, data_dir: str | Path | None,
                    runs_dir: str | Path, final: bool, jobs: int, executor: Executor, report: FoldReport | None,
                    argv: list[str] | None, tags: dict[str, Any] | None, experiment: Any = None,
                    parent: Any = None, prune: Any = None) -> KFoldResult:
    """The part of :func:`run_kfold` from the model check on: the folder, the folds, the summary."""
    from nnlab.store.liveness import beating
    from nnlab.tracking import finishing, start_tracker
    from nnlab.training.results import run_stage, writing
    from nnlab.training.run import data_record, new_metrics, write_run_files

    settings = config.kfold
    k, n = settings.k, len(dataset.y_train)
    params, model_summary, directions = _check_model(config, dataset, splits[0])

    started = utc_now()
    run = RunFolder.create(runs_dir, config.name, runfile.KIND_SUFFIX["kfold"], started=started)
    metrics = new_metrics(run, config, "kfold", dataset, started=started, params=params, train_rows=n,
                          validation_rows=max(len(v) for _, v in splits), tags=tags)
    metrics.k, metrics.folds_completed, metrics.final, metrics.jobs = k, 0, final, jobs
    metrics.directions = directions
    clock = time.perf_counter()
    results: list[FoldResult] = []
    summary: dict[str, Any] = {"k": k, "shuffle": settings.shuffle, "split_seed": settings.split_seed,
                               "seed": config.seed,
                               "epochs": config.training.epochs, "monitor": settings.monitor,
                               "mode": settings.mode, "smoothing": settings.smoothing}
    with writing(run, metrics):
        write_run_files(run, config, model_summary, argv, data_record(dataset, data_dir), jobs=jobs)
        run.write_json(runfile.METRICS, metrics.to_dict())
    tracker = start_tracker(experiment, run, parent)
    with beating(run, metrics), finishing(tracker, run.path), writing(run, metrics):

        def record(result: FoldResult) -> None:
            results.append(result)
            folder = runfile.fold_folder(result.fold)
            write_history_csv(run.file(f"{folder}/{runfile.HISTORY}"), result.history)
            for relative, content in result.files.items():  # TensorBoard logs, made wherever the fold ran
                atomic_write(run.file(f"{folder}/{relative}"), content)
            metrics.folds_completed = len(results)
            if not metrics.input_pipeline:
                for key, value in result.execution.items():
                    setattr(metrics, key, value)
            run.write_json(runfile.METRICS, metrics.to_dict())
            if tracker is not None:
                tracker.fold(run.path, result.fold, result.validation)
            if report is not None:
                report.fold_finished(result)

        failure: list[FoldError] = []

        def train_folds() -> None:
            try:
                _run_folds(config, dataset, splits, data_dir, executor, report, record, prune)
            except FoldError as err:  # names its fold, with the traceback of wherever it ran
                failure.append(err)

        exit_code = run_stage(run, metrics, train_folds, stopped=lambda: f"after {len(results)} of {k} folds")
        if failure:
            metrics.end(Status.FAILED, failure[0].message)
            run.write_text(runfile.ERROR, failure[0].details or failure[0].message)
            exit_code = 1
        results.sort(key=lambda r: r.fold)
        diverged = [r for r in results if r.status == Status.DIVERGED.value]
        if diverged and metrics.status is Status.RUNNING:
            metrics.end(Status.DIVERGED, diverged[0].message)
            exit_code = 1
        pruned = [r for r in results if r.status == Status.PRUNED.value]
        if pruned and metrics.status is Status.RUNNING:
            metrics.end(Status.PRUNED, pruned[0].message)

        if results:
            figures = summarize(results, settings.monitor, settings.smoothing, settings.mode)
            curves = figures.pop("curves")
            summary.update(figures)
            write_history_csv(run.file(runfile.HISTORY_MEAN), history_mean_table(curves))
            metrics.validation, metrics.validation_std = summary["mean"], summary["std"]
            metrics.best, metrics.epochs_run = summary["best"], max(r.epochs_run for r in results)
            if summary["best"] is None and metrics.status is Status.RUNNING:
                metrics.end(Status.FAILED, f"no fold reported {settings.monitor}; the folds reported "
                                           f"{', '.join(sorted(curves))}")
                exit_code = 1
            try:
                metrics.plots = [str(p.relative_to(run.path)) for p in
                                 _kfold_plots(config, results, curves, summary["best"], run)]
            except Exception as err:  # a plot must never cost the run its results
                metrics.plots_error = str(err)
        if metrics.status is Status.RUNNING and len(results) == k:
            metrics.end(Status.COMPLETED)
        summary["folds_completed"] = len(results)
        run.write_json(runfile.KFOLD, summary)

        if final and metrics.status is Status.COMPLETED:
            metrics.end(Status.RUNNING)
            exit_code = _final_model(config, dataset, summary, run, metrics, report)
            if metrics.status is Status.RUNNING:
                metrics.end(Status.COMPLETED)
            run.write_json(runfile.KFOLD, summary)
        metrics.wall_time_s = round(time.perf_counter() - clock, 3)
        metrics.finished = utc_now().isoformat(timespec="seconds")
        run.write_json(runfile.METRICS, metrics.to_dict())
    return KFoldResult(run=run, metrics=metrics.to_dict(), summary=summary, folds=results, exit_code=exit_code)


def _check_model(config: Config, dataset: Dataset,
                 split: tuple[np.ndarray, np.ndarray]) -> tuple[int, str, dict[str, str]]:
    """Build the model on the first fold's data and evaluate a few rows, before any folder exists.

    This refuses a model that does not fit its data, a monitor the model does not
    report, and a monitor whose direction cannot be known, while nothing is written yet.

    Returns:
        ``(parameter count, model summary text, the metrics' directions)``.
    """
    from nnlab.backend import seed_everything
    from nnlab.metric_names import direction, directions_of, unknown_direction_message
    from nnlab.model import build_model, check_on_rows, count_params, summary_text
    from nnlab.suggestions import unknown_name_message
    from nnlab.training.data import prepare

    seed_everything(config.seed, config.training.deterministic)
    data = prepare(config, dataset, *split)
    model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
    names = check_on_rows(config, model, data.x_val, data.y_val)
    reported = [f"val_{name}" for name in names]
    monitor = config.kfold.monitor
    if monitor not in reported:
        raise config.error(("kfold", "monitor"), unknown_name_message("monitor", monitor, reported))
    directions = directions_of(model)
    if direction(monitor, directions, config.kfold.mode) is None:
        raise config.error(("kfold", "mode"), unknown_direction_message(monitor, "kfold.mode"))
    return count_params(model), summary_text(model), directions


def _run_folds(config: Config, dataset: Dataset, splits: list, data_dir: str | Path | None, executor: Executor,
               report: FoldReport | None, record, prune: Any = None) -> None:
    """Train every fold on ``executor``, calling ``record`` as each finishes; stop at the first that fails
    or diverges.

    Folds that run in this process use the dataset already loaded and report every
    epoch; folds that run elsewhere report when they finish.

    Raises:
        FoldError: naming the fold that failed.
    """
    k = len(splits)
    epochs = config.training.epochs
    data_dir = None if data_dir is None else str(data_dir)
    cached_dataset(config, data_dir, loaded=dataset)  # a fold run here by run_fold finds it loaded
    tasks = [(config.to_dict(), fold, k, config.seed, data_dir, None) for fold in range(k)]
    started: set[int] = set()

    def here(fold: int, args: tuple) -> FoldResult:
        started.add(fold)
        if report is not None:
            report.fold_started(fold, k, epochs)
        try:
            return train_fold(config, dataset, fold, k, *splits[fold], config.seed, report,
                              prune=None if prune is None else prune())
        except Exception as err:
            raise as_fold_error(err, fold) from None

    if prune is not None:  # each fold's report needs the folds before it: one after another, here
        from nnlab.executors import LocalExecutor

        executor = LocalExecutor()
    for fold, result, error in executor.run(run_fold, tasks, here=here):
        if error is not None:
            if isinstance(error, FoldError):
                raise error
            raise FoldError(f"fold {fold + 1}: {error}", getattr(error, "details", "") or repr(error))
        if report is not None and fold not in started:
            report.fold_started(fold, k, epochs)  # it ran elsewhere: its bar appears as it ends
        record(result)
        if result.status != Status.COMPLETED.value:
            return


def _kfold_plots(config: Config, folds: list[FoldResult], curves: dict[str, dict[str, np.ndarray]],
                 best: dict[str, Any] | None, run: RunFolder) -> list[Path]:
    """Per validation metric: the averaged curve over the faint folds, whole and without the first epochs."""
    from nnlab import plots

    written = []
    skip = config.kfold.skip_first_epochs
    monitor = config.kfold.monitor
    for name in [n for n in curves if n.startswith("val_")]:
        mean = curves[name]["mean"]
        smoothed = None
        if name == monitor and config.kfold.smoothing:
            smoothed = smooth_curve(mean, config.kfold.smoothing)
        kwargs = {"metric": name, "best_epoch": best["epoch"] if best else None, "best_label": monitor,
                  "smoothed": smoothed, "title": config.name}
        per_fold = [f.history.get(name, []) for f in folds]
        written.append(plots.kfold_curve(mean, per_fold, run.path / runfile.PLOTS / f"kfold_{name}.png", **kwargs))
        if skip and len(mean) > skip:
            written.append(plots.kfold_curve(mean, per_fold, run.path / runfile.PLOTS / f"kfold_{name}_after_{skip}.png",
                                             skip_first=skip, **kwargs))
    return written


def _final_model(config: Config, dataset: Dataset, summary: dict[str, Any], run: RunFolder,
                 metrics: RunMetrics, report: FoldReport | None) -> int:
    """Train on the whole training part for the best epoch count; evaluate once on the test set.

    The same fit and results as ``nnlab train`` (model.keras, the final metrics beside the
    baseline, the plots); the outcome is recorded in ``metrics`` and ``summary["final"]``.

    Returns:
        The exit code: 0 completed, 1 failed or diverged, 130/143 interrupted.
    """
    from nnlab.backend import seed_everything
    from nnlab.model import build_model
    from nnlab.training.data import prepare
    from nnlab.training.feed import configure_execution
    from nnlab.training.fit import Fit
    from nnlab.training.results import divergence_message, record_results, run_stage

    epochs = summary["best"]["epoch"]
    metrics.final_epochs = epochs
    if report is not None:
        report.final_started(epochs)
    progress = None if report is None else (lambda e, n, logs, s: report.epoch(-1, e, n, logs))
    state: dict[str, Any] = {}

    def train_final() -> None:
        seed_everything(config.seed, config.training.deterministic)
        data = prepare(config, dataset, np.arange(len(dataset.y_train)), None)
        model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
        configure_execution(model, config)
        fitting = state["fit"] = Fit(config, model, data, epochs=epochs, seed=config.seed, report=progress,
                                     history_path=run.file(runfile.FINAL_HISTORY), early_stopping=False,
                                     tensorboard_dir=run.path / runfile.TENSORBOARD / "final", repeat=True)
        fitting.run()
        write_history_csv(run.file(runfile.FINAL_HISTORY), fitting.history)
        if fitting.diverged_at is not None:
            metrics.end(Status.DIVERGED, divergence_message(fitting.diverged_at, "the final model's loss"))
            return
        record_results(config, model, data, fitting.feed, run, metrics, fitting.history, best_monitor=None)
        summary["final"] = {"epochs": epochs, "train": metrics.train, "test": metrics.test,
                            "baseline": metrics.baseline,
                            "loss": config.loss if isinstance(config.loss, str) else None}

    exit_code = run_stage(run, metrics, train_final, failed="final model: ",
                          stopped=lambda: "while training the final model (the k-fold results are complete)")
    if exit_code == 0 and metrics.status is Status.DIVERGED:
        exit_code = 1
    return exit_code

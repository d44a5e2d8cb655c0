"""``nnlab sweep``: variations of one config, each a normal run, ranked.

Every trial is a run folder of its own (a train run, or a k-fold run with
``--kfold``), tagged in metrics.json with the sweep's id and the trial's parameters;
the sweep writes ``runs/<timestamp>_<name>_sweep/`` with sweep.json (the space,
every trial's folder, status and metrics) and a ranked summary. Trials run here, in
a pool of worker processes, or on a Ray cluster (:mod:`nnlab.executors`). The space
is :mod:`nnlab.sweeps.space`'s, the ranking :mod:`nnlab.sweeps.ranking`'s; a sweep that
did not finish is resumed in its own folder (:mod:`nnlab.sweeps.resume`).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from nnlab.config import Config, config_from_dict
from nnlab.errors import NnlabError
from nnlab.executors import Executor, WorkerDied
from nnlab.interrupts import Interrupted, stop_signals
from nnlab.store import format as runfile
from nnlab.store import liveness
from nnlab.store.folder import RunFolder, atomic_write, utc_now
from nnlab.store.liveness import Heartbeat, this_process
from nnlab.store.format import Status, SweepMetrics
from nnlab.sweeps.ranking import metric_note, rank_trials, ranked, summary_markdown, sweep_direction, sweep_metric
from nnlab.sweeps.space import Trial
from nnlab.tracking import finishing, start_tracker, tracking_experiment
from nnlab.metric_names import value_of


@dataclass
class TrialOutcome:
    """What became of a trial."""

    index: int
    params: dict[str, Any]
    status: str = Status.PENDING.value
    folder: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    repeat: int | None = None


# -- running -----------------------------------------------------------------------------------

def train_trial_here(config: Config, runs_dir: str, data_dir: str | None, tags: dict[str, Any],
                     prune: Any = None) -> dict[str, Any]:
    """A trial in this process, writing its run folder directly (the local executor).

    Args:
        prune: a search's :class:`~nnlab.training.callbacks.PruneCheck`, or None.
    """
    from nnlab.training.run import train

    result = train(config, runs_dir=runs_dir, data_dir=data_dir, tags=tags, prune=prune)
    return {"folder": str(result.run.path), "metrics": result.metrics, "exit_code": result.exit_code,
            "epochs_trained": int(result.metrics.get("epochs_run") or 0)}


def train_trial_remote(config_data: dict[str, Any], source: str, data_dir: str | None,
                       tags: dict[str, Any], prune: Any = None) -> dict[str, Any]:
    """A trial in a worker: trains into a temporary folder and returns its files.

    Picklable and free of shared-filesystem assumptions, so a process pool or a Ray
    cluster can run it; the driver writes the run folder.

    Args:
        prune: a search's :class:`~nnlab.training.callbacks.PruneCheck`, or None.

    Returns:
        ``{"name": folder name, "files": {relative path: bytes}, "metrics": ..., "exit_code": ...,
        "epochs_trained": ...}``.
    """
    from nnlab.training.run import train

    config = config_from_dict(config_data, source)
    with tempfile.TemporaryDirectory(prefix="nnlab-trial-") as tmp:
        result = train(config, runs_dir=tmp, data_dir=data_dir, tags=tags, prune=prune)
        files = folder_files(result.run.path)
    return {"name": result.run.run_id, "files": files, "metrics": result.metrics, "exit_code": result.exit_code,
            "epochs_trained": int(result.metrics.get("epochs_run") or 0)}


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder, by its path inside it (what a worker sends back)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def materialize(runs_dir: Path, returned: dict[str, Any]) -> Path:
    """Write a worker's returned run folder under ``runs_dir`` (a fresh name if it is taken)."""
    run = RunFolder.claim(runs_dir, returned["name"])
    metrics = dict(returned["metrics"], run_id=run.run_id)
    for relative, content in returned["files"].items():
        if relative != runfile.METRICS:  # written last, with this folder's id, once the rest is in place
            atomic_write(run.file(relative), content)
    run.write_json(runfile.METRICS, metrics)
    return run.path


# -- k-fold trials ------------------------------------------------------------------------------

def kfold_trials(trials: list[Trial], executor: Executor, *, runs_dir: str, data_dir: str | None,
                 tags_of: Callable[[Trial], dict[str, Any]], jobs: int = 1) -> Iterator[tuple[int, Any, Any]]:
    """Run every trial as a k-fold validation (:func:`nnlab.crossval.run_kfold`), one after another.

    This process is each trial's k-fold driver: it loads the data, checks the model
    and writes the trial's ``<timestamp>_<name>_kfold`` folder. On an in-process
    executor the folds run here too. On a process pool or Ray, every fold of every
    trial is submitted up front as a :func:`nnlab.crossval.folds.run_fold` task (the fold
    function of ``nnlab kfold --jobs``), so the workers train later trials' folds
    while this process records earlier trials; only results travel back.

    Yields:
        ``(position in trials, {"folder", "metrics", "exit_code"} or None, error or None)``, in order.
    """
    from nnlab.crossval.folds import run_fold
    from nnlab.crossval.run import run_kfold

    ahead: dict[int, dict[str, Any]] = {}
    if not executor.in_process:
        for trial in trials:
            ahead[trial.index] = {_task_key(run_fold, task): executor.submit(run_fold, task)
                                  for task in fold_tasks(trial.config, data_dir)}
    for i, trial in enumerate(trials):
        mine = ahead.pop(trial.index, {})
        result, error = None, None
        try:
            done = run_kfold(trial.config, runs_dir=runs_dir, data_dir=data_dir, jobs=jobs,
                             executor=None if executor.in_process else FoldsSubmitted(executor, mine),
                             tags=tags_of(trial))
            result = {"folder": str(done.run.path), "metrics": done.metrics, "exit_code": done.exit_code}
        except Exception as err:  # refused before its folder existed (e.g. k above the rows); the others go on
            error = err
        finally:
            executor.cancel(mine.values())  # a trial that stopped early leaves folds nobody will read
        yield i, result, error


def fold_tasks(config: Config, data_dir: str | None) -> list[tuple]:
    """The :func:`nnlab.crossval.folds.run_fold` arguments of every fold of ``config``, as run_kfold builds them."""
    config_dict = config.to_dict()
    return [(config_dict, fold, config.kfold.k, config.seed, data_dir, None) for fold in range(config.kfold.k)]


class FoldsSubmitted(Executor):
    """The executor one trial's run_kfold sees: its fold tasks were submitted ahead.

    A task that was submitted ahead is taken from ``ahead`` (matched on the function
    and its arguments); any other is submitted now, so a mismatch costs time, never
    results.

    Args:
        executor: the sweep's executor.
        ahead: task key -> handle, for this trial (emptied as tasks are taken).
    """

    def __init__(self, executor: Executor, ahead: dict[str, Any]):
        self._executor = executor
        self._ahead = ahead

    def submit(self, fn, args):
        handle = self._ahead.pop(_task_key(fn, args), None)
        return handle if handle is not None else self._executor.submit(fn, args)

    def gather(self, handles):
        return self._executor.gather(handles)

    def cancel(self, handles):
        self._executor.cancel(handles)


def _task_key(fn: Callable[..., Any], args: tuple) -> str:
    return json.dumps([fn.__module__, fn.__qualname__, list(args)], sort_keys=True, default=str)


def check_data(trials: list[Trial], data_dir: str | Path | None) -> None:
    """Load each distinct dataset of the trials once, before any trial starts.

    Data that is missing or damaged is then refused once, with ``nnlab train``'s
    message, instead of once per trial after the sweep folder exists.

    Raises:
        NnlabError: the first dataset that cannot be loaded.
    """
    from nnlab.datasets.loading import load_dataset

    seen: set[str] = set()
    for trial in trials:
        key = json.dumps(trial.config.to_dict()["dataset"], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            load_dataset(trial.config, data_dir)


# -- the sweep --------------------------------------------------------------------------------

@dataclass
class SweepResult:
    """The sweep folder, every trial's outcome (ranked) and the exit code."""

    run: RunFolder
    outcomes: list[TrialOutcome]
    metric: str
    status: str
    exit_code: int
    kfold: bool = False
    direction: str = "min"
    note: str = ""
    trials: list[Any] | None = None  # with --seeds: each trial's figures over its repeats, best first


def run_sweep(base: Config, trials: list[Trial], executor: Executor, *, runs_dir: str | Path = "runs",
              data_dir: str | Path | None = None, metric: str | None = None, executor_name: str = "local",
              space: dict[str, Any] | None = None, kfold: bool = False, jobs: int = 1,
              report: Callable[[TrialOutcome, int], None] | None = None, seeds: list[int] | None = None,
              executor_options: dict[str, Any] | None = None, previous: Any = None,
              tracking: Any = None) -> SweepResult:
    """Run every trial on ``executor`` and write the sweep folder.

    Args:
        base: the sweep's config (before the trials' parameters).
        trials: from :func:`build_trials` (with ``previous``: the trials to run again).
        executor: where trials run (:func:`nnlab.executors.make_executor`).
        runs_dir: the runs root: trial folders and the sweep folder go there.
        data_dir: a folder of downloaded dataset files (a path every worker can read).
        metric: what ranks the trials (see :func:`sweep_metric`).
        executor_name: recorded in sweep.json.
        space: the parameter space, recorded in sweep.json.
        kfold: run every trial as a k-fold validation (:func:`kfold_trials`).
        jobs: the worker processes, recorded in k-fold trials' metrics.json.
        report: called with each finished trial and the number of trials.
        seeds: the seeds of ``--seeds``, recorded in sweep.json (a resume repeats them).
        executor_options: the command line's executor options, recorded for a resume.
        previous: a :class:`nnlab.sweeps.resume.PreviousSweep`: resume it, in its own folder, with its
            trial numbers; ``trials`` are the ones it did not finish.
        tracking: a :class:`nnlab.tracking.Target`: the sweep becomes an MLflow run, each trial a run
            nested in it as the trial finishes.

    Returns:
        The sweep's result; its exit code is 0 when every trial completed, 1 when
        some failed, 130/143 when the sweep was stopped.
    """
    metric = sweep_metric(base, metric, kfold)
    way = sweep_direction(base, metric)
    check_data(trials, data_dir)
    experiment = tracking_experiment(tracking)  # an unreachable server is refused before anything trains
    if previous is None:
        book = SweepBook.create(base, runs_dir, metric=metric, way=way, executor_name=executor_name, kfold=kfold,
                                space=space, seeds=seeds, executor_options=executor_options)
        book.outcomes.extend(TrialOutcome(t.index, t.params, repeat=t.repeat) for t in trials)
    else:
        book = SweepBook.resumed(previous, base, metric=metric, way=way, executor_name=executor_name,
                                 executor_options=executor_options, runs=len(trials))
        again = {(t.index, t.repeat) for t in trials}
        for outcome in book.outcomes:
            if (outcome.index, outcome.repeat) in again:
                outcome.status, outcome.folder, outcome.metrics, outcome.message = Status.PENDING.value, None, {}, None
    slot = {(o.index, o.repeat): position for position, o in enumerate(book.outcomes)}
    book.save()
    tracker = start_tracker(experiment, book.run)
    with Heartbeat(book.save, liveness.HEARTBEAT_SECONDS), finishing(tracker, book.run.path):
        return _run_trials(base, trials, executor, book, slot, tracker, runs_dir=runs_dir, data_dir=data_dir,
                           kfold=kfold, jobs=jobs, report=report)


class SweepBook:
    """A sweep folder while its trials run: sweep.json's record, every trial's outcome, and how both are
    saved; :func:`run_sweep` and a search (:mod:`nnlab.sweeps.search`) keep their sweeps through it.

    Args:
        run: the sweep folder.
        record: sweep.json's content (without the trials).
        outcomes: every trial's outcome so far.
        base: the sweep's config.
        clock: ``time.perf_counter()`` at the sweep's start (earlier runs' time subtracted on a resume).
    """

    def __init__(self, run: RunFolder, record: dict[str, Any], outcomes: list[TrialOutcome], base: Config,
                 clock: float):
        self.run, self.record, self.outcomes, self.base, self.clock = run, record, outcomes, base, clock
        # Who runs it, and a heartbeat: a reader tells a running sweep from a lost one; a resume refuses a live one.
        record.update(this_process(), heartbeat=utc_now().isoformat(timespec="seconds"))

    @property
    def metric(self) -> str:
        return self.record["metric"]

    @property
    def way(self) -> str:
        return self.record["direction"]

    @classmethod
    def create(cls, base: Config, runs_dir: str | Path, *, metric: str, way: str, executor_name: str, kfold: bool,
               space: dict[str, Any] | None, seeds: list[int] | None, executor_options: dict[str, Any] | None,
               search: dict[str, Any] | None = None) -> "SweepBook":
        """A new sweep folder (config.yaml written; sweep.json at the first :meth:`save`)."""
        started = utc_now()
        sweep = RunFolder.create(runs_dir, base.name, runfile.KIND_SUFFIX["sweep"], started=started)
        record: dict[str, Any] = {
            "sweep_id": sweep.run_id, "name": base.name, "status": Status.RUNNING.value, "metric": metric,
            "direction": way, "executor": executor_name,
            "trial_kind": "kfold" if kfold else "train", "space": space or {},
            "seeds": seeds, "executor_options": executor_options or {}, "config_id": config_id(base),
            "started": started.isoformat(timespec="seconds"), "trials": [],
        }
        if search is not None:
            record["search"] = search
        sweep.write_yaml(runfile.CONFIG, base.to_dict())
        return cls(sweep, record, [], base, time.perf_counter())

    @classmethod
    def resumed(cls, previous: Any, base: Config, *, metric: str, way: str, executor_name: str,
                executor_options: dict[str, Any] | None, runs: int) -> "SweepBook":
        """The sweep folder of a resume (a :class:`nnlab.sweeps.resume.PreviousSweep`), running again."""
        record = previous.record
        record.update(status=Status.RUNNING.value, executor=executor_name, metric=metric, direction=way)
        record.setdefault("executor_options", executor_options or {})
        record.pop("finished", None)
        record.setdefault("resumed", []).append({"time": utc_now().isoformat(timespec="seconds"), "trials": runs})
        earlier = float(record.get("wall_time_s") or 0)
        return cls(previous.run, record, previous.outcomes, base, time.perf_counter() - earlier)

    def save(self) -> None:
        """Write sweep.json and metrics.json as they stand."""
        with self.run.lock:  # the heartbeat thread saves too: read and write as one step
            self.record["heartbeat"] = utc_now().isoformat(timespec="seconds")
            self.record["trials"] = [dict(vars(o)) for o in self.outcomes]
            self.run.write_json(runfile.SWEEP, self.record)
            self.run.write_json(runfile.METRICS, _sweep_metrics(self.record, self.base, self.outcomes, self.metric,
                                                                self.way, self.clock))

    def tags_of(self, trial: Trial) -> dict[str, Any]:
        """The keys a trial's metrics.json gets: the sweep's id, the trial's number, parameters and repeat."""
        tags = {"sweep_id": self.run.run_id, "trial": trial.index, "trial_params": trial.params}
        return tags if trial.repeat is None else {**tags, "repeat": trial.repeat}

    def finish(self, status: Status, exit_code: int, *, kfold: bool, error: BaseException | None = None,
               ranked_outcomes: list[TrialOutcome] | None = None) -> "SweepResult":
        """Rank the trials, write sweep.json, metrics.json and summary.md a last time.

        Args:
            status: how the sweep ended (completed becomes ``completed with failures`` when a trial did not
                complete).
            exit_code: the command's exit code for ``status``.
            kfold: the trials are k-fold validations.
            error: the sweep's own crash (recorded, with error.txt), or None.
            ranked_outcomes: the outcomes the ranking counts (default: every one).
        """
        if error is not None:
            import traceback

            self.record["message"] = _error_text(error)
            self.run.write_text(runfile.ERROR, "".join(traceback.format_exception(error)))
        outcomes = self.outcomes if ranked_outcomes is None else ranked_outcomes
        if status is Status.COMPLETED and any(o.status not in (Status.COMPLETED.value, Status.PRUNED.value)
                                              for o in self.outcomes):
            status, exit_code = Status.COMPLETED_WITH_FAILURES, 1
        record, metric, way = self.record, self.metric, self.way
        record["status"] = status.value
        record["finished"] = utc_now().isoformat(timespec="seconds")
        record["wall_time_s"] = round(time.perf_counter() - self.clock, 3)
        order = ranked(outcomes, metric, way)
        stats = rank_trials(outcomes, metric, way) if any(o.repeat is not None for o in outcomes) else None
        record["ranking"] = [t.index for t in stats] if stats else [o.index for o in order]
        if stats:
            record["trial_stats"] = [t.as_dict() for t in stats]
        self.save()
        self.run.write_text(runfile.SWEEP_SUMMARY, summary_markdown(order, metric, kfold, stats))
        return SweepResult(run=self.run, outcomes=order, metric=metric, status=status.value, exit_code=exit_code,
                           kfold=kfold, direction=way, note=metric_note(metric, kfold), trials=stats)


def record_trial(outcome: TrialOutcome, result: dict[str, Any] | None, error: BaseException | None,
                 runs_dir: str | Path) -> None:
    """What became of a trial, into its outcome: a returned run folder written under ``runs_dir``
    (:func:`materialize`), its metrics and status; or the error it raised."""
    if error is not None:
        outcome.status, outcome.message = Status.FAILED.value, _error_text(error)
        return
    folder = materialize(Path(runs_dir), result) if "files" in result else Path(result["folder"])
    outcome.folder = str(folder)
    outcome.metrics = {k: result["metrics"].get(k) for k in ("train", "validation", "validation_std", "test", "best")
                       if result["metrics"].get(k) is not None}
    outcome.status = result["metrics"]["status"]
    outcome.message = result["metrics"].get("message")


def _run_trials(base: Config, trials: list[Trial], executor: Executor, book: SweepBook, slot: dict, tracker: Any,
                *, runs_dir: str | Path, data_dir: str | Path | None, kfold: bool, jobs: int,
                report: Callable[[TrialOutcome, int], None] | None) -> SweepResult:
    """The part of :func:`run_sweep` after its folder exists: the trials, then the ranking; whatever
    ends it, sweep.json and metrics.json say how (a crash of the sweep itself: ``failed``, error.txt)."""
    runs_dir = str(runs_dir)
    data_dir = worker_data_dir(data_dir)
    if not executor.in_process:
        trials = [with_absolute_data_path(t) for t in trials]
    try:
        with stop_signals():
            if kfold:
                finished = kfold_trials(trials, executor, runs_dir=runs_dir, data_dir=data_dir,
                                        tags_of=book.tags_of, jobs=jobs)
            elif executor.in_process:
                finished = executor.run(train_trial_here, [(t.config, runs_dir, data_dir, book.tags_of(t))
                                                           for t in trials])
            else:
                finished = executor.run(train_trial_remote, [(t.config.to_dict(), t.config.source, data_dir,
                                                              book.tags_of(t)) for t in trials])
            for i, result, error in finished:
                outcome = book.outcomes[slot[trials[i].index, trials[i].repeat]]
                record_trial(outcome, result, error, runs_dir)
                book.save()
                if error is None and result["exit_code"] in (130, 143):
                    raise Interrupted(result["exit_code"] - 128)
                if tracker is not None and outcome.folder:
                    tracker.nested(Path(outcome.folder))
                if report is not None:
                    report(outcome, len(trials))
    except Interrupted as stop:
        not_run(executor, book.outcomes)
        return book.finish(Status.INTERRUPTED, stop.exit_code, kfold=kfold)
    except Exception as err:  # the sweep itself crashed (not a trial): recorded, never left running
        not_run(executor, book.outcomes)
        return book.finish(Status.FAILED, 1, kfold=kfold, error=err)
    return book.finish(Status.COMPLETED, 0, kfold=kfold)


def worker_data_dir(data_dir: str | Path | None) -> str | None:
    """``data_dir`` as workers get it: absolute (a Ray worker runs in its session's folder, not this one),
    so it must name the same files on every node."""
    return None if data_dir is None else str(Path(data_dir).expanduser().resolve())


def not_run(executor: Executor, outcomes: list[TrialOutcome]) -> None:
    """The sweep ended early: stop the executor; the trials that had not finished were not run."""
    executor.close()
    for outcome in outcomes:
        if outcome.status in (Status.PENDING.value, Status.RUNNING.value):
            outcome.status = Status.NOT_RUN.value


def config_id(config: Config) -> str:
    """The SHA-256 (16 hex digits) of a sweep's resolved config as canonical JSON, seed included:
    sweep.json records it, and a resume refuses a config.yaml that no longer gives it."""
    import hashlib

    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _sweep_metrics(record: dict[str, Any], base: Config, outcomes: list[TrialOutcome], metric: str, way: str,
                   clock: float) -> dict[str, Any]:
    best = None
    if any(o.repeat is not None for o in outcomes):  # the best trial by its mean over the repeats
        top = next((t for t in rank_trials(outcomes, metric, way) if t.description.n), None)
        if top is not None:
            best = {"trial": top.index, "params": top.params, "folder": top.runs[0].folder,
                    "value": top.description.mean, "n": top.description.n}
    else:
        run = next((o for o in ranked(outcomes, metric, way) if o.status == Status.COMPLETED.value), None)
        if run is not None:
            best = {"trial": run.index, "params": run.params, "folder": run.folder,
                    "value": value_of(run.metrics, metric)}
    return SweepMetrics(
        run_id=record["sweep_id"], name=base.name, dataset=base.dataset.name, status=Status(record["status"]),
        started=record["started"], finished=record.get("finished"), metric=metric, direction=way,
        wall_time_s=record.get("wall_time_s", round(time.perf_counter() - clock, 3)), trials=len(outcomes),
        trial_statuses={s: sum(o.status == s for o in outcomes) for s in {o.status for o in outcomes}},
        best=best, message=record.get("message"), pid=record.get("pid"), host=record.get("host"),
        process_start=record.get("process_start"), heartbeat=record.get("heartbeat"),
    ).to_dict()


def with_absolute_data_path(trial: Trial) -> Trial:
    """The trial with a relative ``dataset.path`` made absolute (as this process resolves it)."""
    path = trial.config.dataset.options.get("path")
    if not isinstance(path, str) or Path(path).expanduser().is_absolute() or not Path(path).expanduser().exists():
        return trial
    absolute = str(Path(path).expanduser().resolve())
    return Trial(trial.index, trial.params, trial.config.with_overrides([f"dataset.path={json.dumps(absolute)}"]),
                 trial.repeat)


def _error_text(error: BaseException) -> str:
    if isinstance(error, (NnlabError, WorkerDied)):
        return str(error)
    from nnlab.keras_objects import keras_reason

    return f"{type(error).__name__}: {keras_reason(error)}"

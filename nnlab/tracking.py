"""MLflow tracking: runs logged as they train, and run folders pushed afterwards.

The run folder stays the record; MLflow gets a copy. One MLflow run mirrors one run folder
and is found again by its tag ``nnlab.run_id`` (the folder's name), so logging the same
folder twice, live and then with ``nnlab mlflow push``, or pushing it again, never makes a
second MLflow run: :meth:`MirroredRun.sync` sends only what the MLflow run lacks.

What a run folder becomes (:func:`push_folder`):

- params: the resolved config (config.yaml), flattened to dotted keys (``training.epochs``);
- metrics: each per-epoch column of history.csv with its epoch as the step (``loss``,
  ``val_accuracy``); the final figures as ``train_<m>``, ``validation_<m>``, ``test_<m>`` and
  ``baseline_<name>``; a k-fold run's fold means as ``validation_<m>`` and their spread as
  ``validation_<m>_std``;
- tags: ``nnlab.run_id``, ``nnlab.kind``, ``nnlab.status``, ``nnlab.group``, ``nnlab.sweep_id``,
  ``nnlab.trial``, ``nnlab.folder``; MLflow's own ``mlflow.runName`` and, for a k-fold run's
  folds and a sweep's trials, ``mlflow.parentRunId``;
- artifacts: the folder's files (model.keras, plots, config.yaml, history.csv, ...);
- status: completed FINISHED, failed or diverged FAILED, interrupted or lost KILLED, running RUNNING; a search's
  pruned trial FINISHED (it ended as its search meant; the ``nnlab.status`` tag says pruned).

Live tracking (:class:`Tracker`) sends each epoch's metrics as it ends (in batches, at most
every few seconds) and syncs the folder at the end. A server that goes away mid-run costs
nothing but the metrics it missed: training goes on, the folder stays complete, one warning
says what did not reach the server, and ``nnlab mlflow push`` catches it up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from nnlab.errors import NnlabError
from nnlab.redaction import redact, redact_uri, register, uri_secrets

#: The environment variable MLflow reads its tracking URI from (honoured when no URI is given).
URI_VARIABLE = "MLFLOW_TRACKING_URI"
EXPERIMENT_VARIABLE = "MLFLOW_EXPERIMENT_NAME"
#: The experiment runs go to when none is named.
DEFAULT_EXPERIMENT = "nnlab"
INSTALL_HINT = "MLflow tracking needs the mlflow extra: pip install 'nnlab[mlflow]'"
#: Seconds between two batches of per-epoch metrics sent while a run trains.
SEND_SECONDS = 5.0
#: MLflow's limits per log_batch request, and on a param's length.
BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS, PARAM_LENGTH = 1000, 100, 100, 6000
#: nnlab's statuses as MLflow's.
MLFLOW_STATUS = {"completed": "FINISHED", "pruned": "FINISHED", "failed": "FAILED", "diverged": "FAILED", "interrupted": "KILLED",
                 "lost": "KILLED", "completed with failures": "FAILED", "running": "RUNNING"}
#: Files of a run folder that are not uploaded: a stopped run's checkpoint is the next run's, not a result.
NOT_UPLOADED = ("checkpoint.keras",)


@dataclass(frozen=True)
class Target:
    """Where runs are logged: a tracking URI and an experiment name."""

    uri: str
    experiment: str
    #: The command-line option the URI came through (messages name it).
    source: str = "--mlflow"

    @property
    def shown(self) -> str:
        """The URI as messages print it (credentials masked)."""
        return redact_uri(self.uri)


def target_of(uri: str | None, experiment: str | None = None, config: Any = None,
              source: str = "--mlflow") -> Target | None:
    """The tracking target of a command: ``--mlflow URI``, else the config's ``tracking``, else
    ``MLFLOW_TRACKING_URI``; None when there is none.

    Args:
        uri: the command line's URI.
        experiment: the command line's experiment name.
        config: the run's config (its ``tracking.mlflow`` and ``tracking.experiment``).
    """
    tracking = getattr(config, "tracking", None)
    uri = uri or getattr(tracking, "mlflow", None) or os.environ.get(URI_VARIABLE)
    if not uri:
        return None
    experiment = (experiment or getattr(tracking, "experiment", None) or os.environ.get(EXPERIMENT_VARIABLE)
                  or DEFAULT_EXPERIMENT)
    register(*uri_secrets(uri))
    return Target(uri, experiment, source)


def _mlflow(source: str = "--mlflow"):
    """MLflow's client module, with HTTP retries kept short: an unreachable server must cost
    seconds, never minutes of backoff (the user's own settings win)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # stdout is the command's
    try:
        import mlflow.entities as entities
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise NnlabError(INSTALL_HINT, source=source) from None
    return MlflowClient, entities


def connect(target: Target) -> "Experiment":
    """The target's experiment (created when missing), refusing a server that does not answer.

    Raises:
        NnlabError: mlflow is not installed, or the server cannot be reached (exit code 2),
            before anything trains.
    """
    client_class, _ = _mlflow(target.source)
    client = client_class(tracking_uri=target.uri)
    try:
        found = client.get_experiment_by_name(target.experiment)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(target.experiment)
    except Exception as err:  # connection refused, DNS, TLS, an HTTP error: one message
        raise NnlabError(f"cannot reach the MLflow tracking server at {target.shown}: {_reason(err)}; "
                         "start it, or fix the URI", source=target.source) from None
    return Experiment(client, experiment_id, target)


#: What a failed request's long text means, in a few words.
_REASONS = (("Connection refused", "connection refused"), ("Max retries exceeded", "no answer"),
            ("Name or service not known", "unknown host"), ("nodename nor servname", "unknown host"),
            ("timed out", "timed out"), ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"))


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    for marker, short in _REASONS:
        if marker in text:
            return short
    lines = text.splitlines()
    return redact(lines[0] if lines else type(err).__name__)[:300]


@dataclass
class Experiment:
    """An MLflow experiment of a reachable server."""

    client: Any
    experiment_id: str
    target: Target

    def run_of(self, run_id: str, parent: "MirroredRun | None" = None) -> "MirroredRun":
        """The MLflow run mirroring the run folder ``run_id``: found by its tag, else created."""
        found = self.client.search_runs([self.experiment_id], filter_string=f"tags.`nnlab.run_id` = '{run_id}'",
                                        max_results=1)
        if found:
            return MirroredRun(self, found[0].info.run_id, run_id)
        tags = {"nnlab.run_id": run_id}
        if parent is not None:
            tags["mlflow.parentRunId"] = parent.mlflow_id
        created = self.client.create_run(self.experiment_id, tags=tags, run_name=run_id)
        return MirroredRun(self, created.info.run_id, run_id)


class MirroredRun:
    """One MLflow run and the run folder it mirrors.

    Args:
        experiment: where it is.
        mlflow_id: MLflow's run id.
        run_id: nnlab's (the folder's name).
    """

    def __init__(self, experiment: Experiment, mlflow_id: str, run_id: str):
        self.experiment, self.mlflow_id, self.run_id = experiment, mlflow_id, run_id
        self.client = experiment.client

    def log(self, metrics: list[tuple[str, float, int]] = (), params: dict[str, str] | None = None,
            tags: dict[str, str] | None = None) -> None:
        """Send metrics ``(key, value, step)``, params and tags, in batches of MLflow's limits."""
        _, entities = _mlflow()
        now = int(time.time() * 1000)
        rows = [entities.Metric(key, float(value), now, int(step)) for key, value, step in metrics]
        for start in range(0, len(rows), BATCH_METRICS):
            self.client.log_batch(self.mlflow_id, metrics=rows[start:start + BATCH_METRICS])
        items = [entities.Param(k, v) for k, v in (params or {}).items()]
        for start in range(0, len(items), BATCH_PARAMS):
            self.client.log_batch(self.mlflow_id, params=items[start:start + BATCH_PARAMS])
        labels = [entities.RunTag(k, v) for k, v in (tags or {}).items()]
        for start in range(0, len(labels), BATCH_TAGS):
            self.client.log_batch(self.mlflow_id, tags=labels[start:start + BATCH_TAGS])

    def sync(self, folder: Path, *, status: str | None = None, upload: bool = True) -> None:
        """Make the MLflow run hold what the run folder holds, sending only what it lacks.

        Args:
            folder: the run folder (train, k-fold or a sweep's own folder).
            status: nnlab's status to set (default: metrics.json's, ``lost`` when a reader says so).
            upload: upload the folder's files as artifacts.
        """
        record = folder_record(folder, status)
        have = self.client.get_run(self.mlflow_id).data
        params = {k: v for k, v in record.params.items() if k not in have.params}
        self.log(self.missing(record, have), params, record.tags)
        if upload:
            self.upload(folder, skip=record.nested)
        self.set_status(record.status)

    def missing(self, record: "FolderRecord", have: Any) -> list[tuple[str, float, int]]:
        """The metrics of ``record`` the MLflow run (its data ``have``) lacks: epochs of a history whose
        step is not there, final figures whose value is not the latest."""
        metrics = [(key, value, step) for key, value, step in record.finals if have.metrics.get(key) != value]
        for key, values in record.history.items():
            known = ({m.step for m in self.client.get_metric_history(self.mlflow_id, key)}
                     if key in have.metrics else set())
            metrics += [(key, value, step) for step, value in values if step not in known]
        return metrics

    def upload(self, folder: Path, skip: tuple[str, ...] = ()) -> None:
        """Upload the folder's files as artifacts (overwriting earlier copies), except ``skip`` (folders
        of nested runs) and :data:`NOT_UPLOADED`."""
        for entry in sorted(Path(folder).iterdir()):
            if entry.name.startswith(".") or entry.name in NOT_UPLOADED or entry.name in skip:
                continue
            if entry.is_dir():
                self.client.log_artifacts(self.mlflow_id, str(entry), artifact_path=entry.name)
            else:
                self.client.log_artifact(self.mlflow_id, str(entry))

    def set_status(self, status: str) -> None:
        """Set MLflow's status from nnlab's (see :data:`MLFLOW_STATUS`)."""
        state = MLFLOW_STATUS.get(status, "RUNNING")
        if state == "RUNNING":
            self.client.update_run(self.mlflow_id, status="RUNNING")
        else:
            self.client.set_terminated(self.mlflow_id, status=state)


@dataclass
class FolderRecord:
    """What a run folder gives its MLflow run (see the module's docstring)."""

    params: dict[str, str]
    history: dict[str, list[tuple[int, float]]]
    finals: list[tuple[str, float, int]]
    tags: dict[str, str]
    status: str
    #: Sub-folders that are MLflow runs of their own (a k-fold run's folds).
    nested: tuple[str, ...] = ()


def folder_record(folder: Path, status: str | None = None) -> FolderRecord:
    """Read a run folder into its MLflow form.

    Raises:
        NnlabError: the folder has no readable metrics.json.
    """

    from nnlab.store.liveness import lost_reason
    from nnlab.store.reading import flatten, read_config, read_history, read_kfold, read_metrics
    from nnlab.store.tags import read_tags

    folder = Path(folder)
    metrics = read_metrics(folder)
    try:
        params = {key: _param(value) for key, value in flatten(read_config(folder)).items()}
    except NnlabError:
        params = {}
    history = _steps(read_history(folder)) if metrics.get("kind") in ("train", None) else {}
    finals = []
    for part, prefix in (("train", "train_"), ("validation", "validation_"), ("test", "test_")):
        finals += _figures(metrics.get(part), prefix)
    nested: tuple[str, ...] = ()
    if metrics.get("kind") == "kfold":
        nested = ("folds",)
        try:
            summary = read_kfold(folder) or {}
        except NnlabError:
            summary = {}
        finals += _figures(summary.get("mean"), "validation_") + _figures(summary.get("std"), "validation_",
                                                                          suffix="_std")
        if isinstance(summary.get("best"), dict) and isinstance(summary["best"].get("epoch"), int):
            finals.append(("best_epoch", float(summary["best"]["epoch"]), 0))
    baseline = metrics.get("baseline")
    if isinstance(baseline, dict):
        finals += _figures({k: v for k, v in baseline.items() if k != "name"}, "baseline_")
    best = metrics.get("best")
    if metrics.get("kind") == "sweep" and isinstance(best, dict) and isinstance(best.get("value"), (int, float)):
        finals.append((f"best_{metrics.get('metric', 'value')}", float(best["value"]), 0))
    now = status or ("lost" if lost_reason(metrics) else str(metrics.get("status", "running")))
    tags = {"nnlab.run_id": folder.name, "nnlab.kind": str(metrics.get("kind", "train")), "nnlab.status": now,
            "nnlab.folder": str(folder.resolve())}
    for key in ("group", "sweep_id", "trial", "repeat", "dataset", "name", "rerun_of"):
        if metrics.get(key) is not None:
            tags[f"nnlab.{key}"] = str(metrics[key])
    if metrics.get("message"):
        tags["nnlab.message"] = redact(str(metrics["message"]))[:5000]
    user_tags, note, _ = read_tags(folder)  # nnlab tag and nnlab note: MLflow tags and its run description
    tags.update({f"tag.{key}": redact(value) for key, value in user_tags.items()})
    if note:
        tags["mlflow.note.content"] = redact(note)
    return FolderRecord(params, history, finals, tags, now, nested)


def _figures(values: Any, prefix: str, suffix: str = "") -> list[tuple[str, float, int]]:
    import math

    if not isinstance(values, dict):
        return []
    return [(f"{prefix}{name}{suffix}", float(value), 0) for name, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)]


def _param(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value)
    return redact(text)[:PARAM_LENGTH]


def fold_record(fold_folder: Path, fold: int, figures: dict[str, float]) -> FolderRecord:
    """A k-fold run's fold (``folds/fold_<i>/``) as a nested run: its history and final validation figures."""
    from nnlab.store.reading import read_history

    return FolderRecord({}, _steps(read_history(fold_folder)), _figures(figures, "validation_"),
                        {"nnlab.fold": str(fold + 1)}, "completed")


def _steps(columns: dict[str, list[float]]) -> dict[str, list[tuple[int, float]]]:
    """A history (:func:`nnlab.store.reading.read_history`) as ``{key: [(epoch, value), ...]}``, the
    NaN cells left out (MLflow has no missing value)."""
    import math

    epochs = columns.pop("epoch", [])
    return {key: [(int(e), float(v)) for e, v in zip(epochs, values) if math.isfinite(v)]
            for key, values in columns.items()}


def push_folder(experiment: Experiment, folder: Path, parent: MirroredRun | None = None) -> MirroredRun:
    """Push one run folder (and its folds, or its trials) to MLflow; pushing it again sends only what is new.

    Args:
        experiment: the target experiment.
        folder: a train, k-fold or sweep folder.
        parent: the MLflow run it nests under (a sweep's).

    Returns:
        Its MLflow run.
    """
    from nnlab.store.reading import read_metrics, read_sweep

    folder = Path(folder)
    metrics = read_metrics(folder)
    run = experiment.run_of(folder.name, parent)
    if metrics.get("kind") == "kfold":
        push_folds(experiment, run, folder)
    if metrics.get("kind") == "sweep":
        try:
            trials = (read_sweep(folder) or {}).get("trials") or []
        except NnlabError:
            trials = []
        for trial in trials:
            trial_folder = Path(trial.get("folder") or "") if isinstance(trial, dict) else Path()
            if trial.get("folder") and (trial_folder / "metrics.json").is_file():
                push_folder(experiment, trial_folder, parent=run)
    run.sync(folder)
    return run


def push_folds(experiment: Experiment, parent: MirroredRun, folder: Path) -> None:
    """Each finished fold of a k-fold folder as a run nested under ``parent``."""
    from nnlab.store.reading import read_kfold

    try:
        summary = read_kfold(folder) or {}
    except NnlabError:
        summary = {}
    per_fold = summary.get("folds") if isinstance(summary.get("folds"), list) else []
    for fold_dir in sorted((folder / "folds").glob("fold_*"), key=lambda p: p.name):
        try:
            fold = int(fold_dir.name.split("_")[1]) - 1
        except (IndexError, ValueError):
            continue
        figures = next((f.get("validation") for f in per_fold if isinstance(f, dict) and f.get("fold") == fold + 1),
                       None) or {}
        push_fold(experiment, parent, fold_dir, fold, figures)


def push_fold(experiment: Experiment, parent: MirroredRun, fold_dir: Path, fold: int,
              figures: dict[str, float]) -> None:
    """One fold (``folds/fold_<i>/``, 0-based ``fold``) as a run nested under its k-fold run's, with its
    history and its final validation ``figures``; only what the MLflow run lacks is sent."""
    child = experiment.run_of(f"{parent.run_id}/fold_{fold + 1}", parent)
    record = fold_record(fold_dir, fold, figures)
    child.log(child.missing(record, child.client.get_run(child.mlflow_id).data),
              tags={**record.tags, "nnlab.kind": "fold", "nnlab.status": "completed"})
    child.upload(fold_dir)
    child.set_status("completed")


class Tracker:
    """Live logging of one run folder to MLflow while it trains (train runs, k-fold runs, sweeps).

    Every call to the server is guarded: the first failure turns tracking off for the rest of the
    run, and :meth:`close` warns once, naming what did not reach the server.

    Args:
        experiment: the target experiment (reachable when the run started).
        run_id: the run folder's name.
        warn: prints a warning line.
        parent: the MLflow run it nests under (a sweep's trial).
    """

    def __init__(self, experiment: Experiment, run_id: str, warn: Callable[[str], None],
                 parent: MirroredRun | None = None):
        self.experiment, self.warn = experiment, warn
        self.failure: str | None = None
        self.unsent: dict[str, int] = {}
        self._pending: list[tuple[str, float, int]] = []
        self._sent_at = time.perf_counter()
        self.run = self._guard(lambda: experiment.run_of(run_id, parent))

    def _guard(self, call: Callable[[], Any]) -> Any:
        if self.failure is not None:
            return None
        try:
            return call()
        except Exception as err:  # the server went away: training goes on
            self.failure = _reason(err)
            return None

    def start(self, folder: Path) -> None:
        """Params and tags of the new run (status running)."""
        if self.run is not None:
            self._guard(lambda: self.run.sync(folder, status="running", upload=False))

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Queue an epoch's metrics (1-based ``epoch``); send the queue every :data:`SEND_SECONDS`."""
        import math

        self._pending += [(key, value, epoch) for key, value in logs.items() if math.isfinite(value)]
        if time.perf_counter() - self._sent_at >= SEND_SECONDS:
            self.send()

    def send(self) -> None:
        """Send the queued epoch metrics now."""
        pending, self._pending = self._pending, []
        self._sent_at = time.perf_counter()
        if pending and (self.run is None or self._guard(lambda: self.run.log(pending) or True) is None):
            for key, _, _ in pending:
                self.unsent[key] = self.unsent.get(key, 0) + 1

    def nested(self, folder: Path) -> None:
        """A run folder nested under this run (a sweep's trial), pushed as it finishes."""
        if self.run is not None:
            self._guard(lambda: push_folder(self.experiment, folder, parent=self.run))

    def fold(self, folder: Path, fold: int, figures: dict[str, float]) -> None:
        """A k-fold run's fold as it finishes (0-based ``fold``, its final validation ``figures``)."""
        if self.run is not None:
            fold_dir = folder / "folds" / f"fold_{fold + 1}"
            self._guard(lambda: push_fold(self.experiment, self.run, fold_dir, fold, figures))

    def finish(self, folder: Path) -> None:
        """Send what is queued, then the folder's final figures, artifacts and status; warn about what
        did not reach the server."""
        self.send()
        if self.run is not None:
            self._guard(lambda: self.run.sync(folder))
        if self.failure is not None:
            lost = ", ".join(f"{key} ({count} epochs)" for key, count in sorted(self.unsent.items()))
            self.warn(f"the MLflow server at {self.experiment.target.shown} stopped answering ({self.failure}); "
                      f"training went on and the run folder is complete; "
                      + (f"not sent: {lost}, and the final figures; " if lost else "not sent: the final figures "
                         "and files; ")
                      + f"catch it up with: nnlab mlflow push {folder} --uri {self.experiment.target.shown}")


def epoch_callback(tracker: Tracker) -> Any:
    """A Keras callback that hands each epoch's logs to ``tracker``."""
    from nnlab.backend import keras

    class MlflowEpochs(keras().callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            values = {}
            for key, value in (logs or {}).items():
                try:
                    values[key] = float(value)
                except (TypeError, ValueError):
                    pass  # not a number: nothing MLflow can plot
            tracker.epoch(epoch + 1, values)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            tracker.send()

    return MlflowEpochs()


def tracking_experiment(target: Target | None) -> Experiment | None:
    """:func:`connect` to ``target``, or None without one."""
    return connect(target) if target is not None else None


def start_tracker(experiment: Experiment | None, run: Any, parent: MirroredRun | None = None) -> Tracker | None:
    """A :class:`Tracker` of a new run folder, its params and tags sent; None without an experiment."""
    if experiment is None:
        return None
    tracker = Tracker(experiment, run.run_id, warn=_warn, parent=parent)
    tracker.start(run.path)
    return tracker


@contextlib.contextmanager
def finishing(tracker: Tracker | None, folder: Path) -> Iterator[None]:
    """When the block ends, however it ends, :meth:`Tracker.finish` the run (a no-op without a tracker)."""
    try:
        yield
    finally:
        if tracker is not None:
            tracker.finish(folder)


def _warn(line: str) -> None:
    logging.getLogger("nnlab.tracking").warning("warning: %s", redact(line))


@dataclass
class Pushed:
    """What ``nnlab mlflow push`` did: a line per run folder, and how many could not be pushed."""

    target: Target
    done: list[str]
    problems: list[str]

    @property
    def failed(self) -> int:
        """Run folders that could not be pushed."""
        return len(self.problems)

    def lines(self) -> list[str]:
        """What to print."""
        return [*self.done, *(f"not pushed: {p}" for p in self.problems),
                f"pushed {len(self.done)} run folder(s) to {self.target.shown}, experiment {self.target.experiment}"
                + (f"; {self.failed} not pushed" if self.failed else "")]


def push_runs(target: Target, paths: list[str], runs_dir: str | Path) -> Pushed:
    """Push the run folders ``paths`` name (as ``nnlab compare`` reads them) to ``target``.

    A sweep brings its trials along, nested; a trial pushed without its sweep nests under the
    sweep's MLflow run when that is there already.

    Raises:
        NnlabError: mlflow missing or the server unreachable (before anything is sent); a path
            that names no run.
    """
    from nnlab.store.reading import collect

    experiment = connect(target)
    runs = collect(paths, runs_dir, use_index=False).runs
    order = sorted(runs, key=lambda r: r.fields.get("kind") != "sweep")  # sweeps first: they nest their trials
    pushed: set[str] = set()
    done: list[str] = []
    problems: list[str] = []
    for run in order:
        if run.run_id in pushed:
            continue
        if run.fields.get("status") == "unreadable":
            problems.append(f"{run.path}: {run.warning or 'unreadable'}")
            continue
        try:
            parent = None
            sweep_id = run.fields.get("sweep_id")
            if isinstance(sweep_id, str) and run.fields.get("kind") != "sweep":
                found = experiment.client.search_runs([experiment.experiment_id],
                                                      filter_string=f"tags.`nnlab.run_id` = '{sweep_id}'", max_results=1)
                parent = MirroredRun(experiment, found[0].info.run_id, sweep_id) if found else None
            mirrored = push_folder(experiment, run.path, parent)
        except NnlabError as err:
            problems.append(f"{run.path}: {err.message}")
            continue
        except Exception as err:  # the server failed during the push: say which folder, go on
            problems.append(f"{run.path}: {_reason(err)}")
            continue
        pushed.add(run.run_id)
        if run.fields.get("kind") == "sweep":
            pushed.update(_trial_ids(run.path))
        done.append(f"{run.run_id} -> MLflow run {mirrored.mlflow_id}")
    return Pushed(target, done, problems)


def _trial_ids(sweep_folder: Path) -> set[str]:
    from nnlab.store.reading import read_sweep

    try:
        trials = (read_sweep(sweep_folder) or {}).get("trials") or []
    except NnlabError:
        return set()
    return {Path(t["folder"]).name for t in trials if isinstance(t, dict) and t.get("folder")}

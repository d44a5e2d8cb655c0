"""The run-folder format: its file names, its statuses and the shape of metrics.json.

Everything that writes or reads a run folder names its files and statuses from
here, so the format has one owner. A run folder is ``<runs>/<UTC start>_<name>[_kind]/``:

=====================  ====================================================================
``config.yaml``        the resolved config
``metrics.json``       :class:`RunMetrics`: status, final metrics, baseline, what ran
``env.json``           versions, devices, the command line
``history.csv``        one row per epoch (train runs)
``summary.txt``        the Keras model summary
``model.keras``        the trained model; ``checkpoint.keras`` of a stopped run
``error.txt``          the traceback of a failed run
``kfold.json``         a k-fold run's figures; ``history_mean.csv``, ``folds/fold_<i>/``
``sweep.json``         a sweep's space and trials; ``summary.md`` its ranking
``diagnostics.json``   the test set's confusion counts, ROC curve (binary) or residuals (regression)
``plots/``             PNG figures; ``tensorboard/`` TensorBoard logs when asked for
``tags.json``          the user's tags and note (``nnlab tag``, ``nnlab note``); never in metrics.json
=====================  ====================================================================

Beside the run folders, a runs root holds ``.nnlab-index.json`` (the readers' cache) and
``.trash/`` (the folders ``nnlab rm`` moved there, each with a ``<name>.removed.json`` record).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

CONFIG = "config.yaml"
METRICS = "metrics.json"
ENV = "env.json"
HISTORY = "history.csv"
SUMMARY = "summary.txt"
MODEL = "model.keras"
CHECKPOINT = "checkpoint.keras"
ERROR = "error.txt"
KFOLD = "kfold.json"
HISTORY_MEAN = "history_mean.csv"
FINAL_HISTORY = "final_history.csv"
SWEEP = "sweep.json"
SWEEP_SUMMARY = "summary.md"
#: A model-based search's Optuna study (RDB storage on SQLite), in its sweep folder.
STUDY = "study.db"
PLOTS = "plots"
#: What the HTML report charts of the test set's predictions (:func:`nnlab.store.reading.read_diagnostics`):
#: ``{"confusion_matrix": {"labels", "counts"}, "roc": {"fpr", "tpr", "auc"}, "residuals": {"predicted", "residual"}}``.
DIAGNOSTICS = "diagnostics.json"
#: The diagnostics figures, under ``plots/``.
CONFUSION_MATRIX_PLOT = "confusion_matrix.png"
MISCLASSIFIED_PLOT = "misclassified.png"
ROC_CURVE_PLOT = "roc_curve.png"
RESIDUALS_PLOT = "residuals.png"
TENSORBOARD = "tensorboard"
#: The cache of folder summaries in a runs root.
INDEX = ".nnlab-index.json"
#: The user's tags and note of a run (:mod:`nnlab.store.tags`), beside metrics.json and written only by
#: ``nnlab tag``/``nnlab note``: ``{"tags": {KEY: "VALUE"}, "note": "text", "updated": ISO time}``.
TAGS = "tags.json"
#: The folder of a runs root that ``nnlab rm`` moves run folders into (:mod:`nnlab.store.trash`);
#: hidden, so listings skip it.
TRASH = ".trash"
#: What ends the name of the record beside each folder in the trash: ``<name>.removed.json`` holds
#: ``{"run_id", "removed": ISO time, "from": the folder it was, "with_sweep": sweep id or null}``.
TRASH_RECORD_SUFFIX = ".removed.json"
#: Folder-name suffix of each kind of run (a train run has none).
KIND_SUFFIX = {"train": "", "kfold": "_kfold", "sweep": "_sweep"}


def fold_folder(fold: int) -> str:
    """The folder of fold ``fold`` (0-based) inside a k-fold run: ``folds/fold_<fold + 1>``."""
    return f"folds/fold_{fold + 1}"


class Status(str, Enum):
    """Every status a run, a sweep or a sweep's trial can have (the value is what files hold)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DIVERGED = "diverged"
    #: A search's trial stopped early by its pruner (``nnlab sweep --search --pruner``): the epochs it ran, its
    #: metrics so far.
    PRUNED = "pruned"
    #: A sweep whose trials did not all complete.
    COMPLETED_WITH_FAILURES = "completed with failures"
    #: A sweep's trial not started yet, or never started because the sweep stopped.
    PENDING = "pending"
    NOT_RUN = "not run"
    #: What a reader says of a folder: metrics.json damaged, missing, or without a status.
    UNREADABLE = "unreadable"
    INCOMPLETE = "incomplete"
    UNKNOWN = "unknown"
    #: What a reader says of a run recorded as running whose process is gone (:mod:`nnlab.store.liveness`).
    LOST = "lost"

    def __str__(self) -> str:
        return self.value

    @property
    def ended(self) -> bool:
        """Whether nothing will change this status any more (not running, pending or unknown)."""
        return self not in (Status.RUNNING, Status.PENDING, Status.UNKNOWN)

    @classmethod
    def of(cls, value: Any) -> "Status":
        """The status a file holds; UNKNOWN for anything else."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


#: The exit code of ``nnlab train``/``kfold`` for each final status (interruptions say their signal).
EXIT_CODES = {Status.COMPLETED: 0, Status.FAILED: 1, Status.DIVERGED: 1}


@dataclass
class RunMetrics:
    """metrics.json of a train or k-fold run, as nnlab writes it.

    Written when the folder is made (status running) and rewritten as the run goes;
    :meth:`to_dict` leaves out the parts a run does not have.

    Args:
        run_id: the folder's name.
        name: the config's name.
        kind: ``train`` or ``kfold``.
        dataset, task: the dataset's name and task.
        status: see :class:`Status`; ``message`` says why when not completed.
        started, finished: ISO times (UTC).
        wall_time_s: seconds of training and recording.
        fit_time_s: seconds of the fit alone (``nnlab train``; a resumed run adds its fits).
        epochs_planned, epochs_run: epochs asked for and finished.
        params: the model's parameter count.
        train_rows, validation_rows, test_rows: rows of each part.
        input_pipeline, steps_per_execution, jit_compile, epochs_per_call: what actually ran
            (:meth:`nnlab.training.fit.Fit.execution`; epochs_per_call for the fused pipeline only).
        directions: ``{metric: "max" | "min"}``, from Keras's metric objects.
        train, validation, test: final metrics of each part.
        best: ``{"monitor", "epoch", "value", ...}``, the best epoch.
        baseline: the trivial baseline on the test set.
        plots: the PNG files drawn (relative paths); ``plots_error`` when drawing failed.
        per_class: classifiers, on the test set: ``[{"class", "precision", "recall", "f1", "support"}]``
            per class (scikit-learn's ``precision_recall_fscore_support``, zero_division 0).
        confused_pairs: classifiers: the (up to) 5 most frequent mistakes on the test set,
            ``[{"true", "predicted", "count", "share"}]``; ``share`` is of the true class's examples.
        roc_auc: binary classifiers: the test set's ROC AUC (scikit-learn's ``roc_auc_score``).
        diagnostics_error: why the diagnostics above (and diagnostics.json) could not be made.
        checkpoint_epoch: the epoch of ``checkpoint.keras`` of a stopped run.
        checkpoint_trained: True when ``checkpoint.keras`` is the trained model: the fit ended and
            recording its results failed or was stopped (``--resume`` records them without training).
        early_stopping: ``{"stopped_epoch", "restored_epoch"}`` when early stopping ended the run.
        k, folds_completed, final, jobs, validation_std, final_epochs: k-fold runs.
        sweep_id, trial, trial_params: a sweep's trial.
        pid, host, process_start: the process that runs it (``process_start``: its start in clock ticks
            since boot, Linux); ``heartbeat``: the last time it said it was alive (ISO, UTC), every
            half minute while it runs. Readers call a running run whose process is gone ``lost``.
        group: the config's id without its seed (:meth:`nnlab.config.Config.group_id`): repeats share it.
        repeat: the position of this run among its repeats (``--seeds``), from 0; None when not repeated.
        rerun_of: the run id (folder name) of the run this one re-runs (``nnlab rerun``, ``nnlab verify --keep``).
    """

    run_id: str
    name: str
    kind: str
    dataset: str
    task: str
    status: Status = Status.RUNNING
    message: str | None = None
    started: str | None = None
    finished: str | None = None
    wall_time_s: float | None = None
    fit_time_s: float | None = None
    epochs_planned: int = 0
    epochs_run: int = 0
    params: int | None = None
    train_rows: int = 0
    validation_rows: int = 0
    test_rows: int = 0
    input_pipeline: str | None = None
    steps_per_execution: int | None = None
    jit_compile: bool | None = None
    epochs_per_call: int | None = None
    directions: dict[str, str] = field(default_factory=dict)
    train: dict[str, float] | None = None
    validation: dict[str, float] | None = None
    test: dict[str, float] | None = None
    best: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    plots: list[str] | None = None
    plots_error: str | None = None
    per_class: list[dict[str, Any]] | None = None
    confused_pairs: list[dict[str, Any]] | None = None
    roc_auc: float | None = None
    diagnostics_error: str | None = None
    checkpoint_epoch: int | None = None
    checkpoint_trained: bool | None = None
    early_stopping: dict[str, Any] | None = None
    k: int | None = None
    folds_completed: int | None = None
    final: bool | None = None
    jobs: int | None = None
    validation_std: dict[str, float] | None = None
    final_epochs: int | None = None
    sweep_id: str | None = None
    trial: int | None = None
    trial_params: dict[str, Any] | None = None
    group: str | None = None
    repeat: int | None = None
    pid: int | None = None
    host: str | None = None
    process_start: int | None = None
    heartbeat: str | None = None
    rerun_of: str | None = None

    #: Keys written even when empty (readers of a running folder expect them).
    ALWAYS = ("run_id", "name", "kind", "dataset", "task", "status", "message", "started", "finished",
              "wall_time_s", "epochs_planned", "epochs_run", "params", "train_rows", "validation_rows",
              "test_rows")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to metrics.json."""
        data = asdict(self)
        data["status"] = str(self.status.value if isinstance(self.status, Status) else self.status)
        return {key: value for key, value in data.items()
                if key in self.ALWAYS or (value is not None and value != {})}

    def tag(self, tags: dict[str, Any] | None) -> None:
        """Set a run's tags: a sweep's (``sweep_id``, ``trial``, ``trial_params``), ``repeat`` and ``rerun_of``."""
        for key, value in (tags or {}).items():
            if key not in ("sweep_id", "trial", "trial_params", "repeat", "rerun_of"):
                raise KeyError(f"not a run tag: {key}")
            setattr(self, key, value)

    def end(self, status: Status, message: str | None = None) -> None:
        """Set the final status and its message."""
        self.status, self.message = status, message

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunMetrics":
        """A metrics.json read back (to continue a run): unknown keys are dropped, the status parsed."""
        known = {name for name in cls.__dataclass_fields__}
        values = {key: value for key, value in data.items() if key in known}
        values["status"] = Status.of(values.get("status"))
        for key in ("run_id", "name", "kind", "dataset", "task"):
            values.setdefault(key, "")
        return cls(**values)


@dataclass
class SweepMetrics:
    """metrics.json of a sweep folder (``kind: sweep``), rewritten as its trials finish.

    Args:
        run_id: the sweep folder's name (its ``sweep_id``).
        name, dataset: the config's name and dataset.
        status: running, completed, completed with failures or interrupted.
        started, finished: ISO times (UTC).
        wall_time_s: seconds so far.
        trials: how many trials the sweep has; ``trial_statuses`` counts them by status.
        metric: what ranks them; ``direction``: max or min.
        best: ``{"trial", "params", "folder", "value"}`` of the best completed trial, or None.
        message: why a sweep that crashed itself failed.
        pid, host, process_start, heartbeat: the process that runs it, as :class:`RunMetrics` has them.
    """

    run_id: str
    name: str
    dataset: str
    status: Status
    started: str
    metric: str
    direction: str
    trials: int
    trial_statuses: dict[str, int]
    finished: str | None = None
    wall_time_s: float | None = None
    best: dict[str, Any] | None = None
    message: str | None = None
    pid: int | None = None
    host: str | None = None
    process_start: int | None = None
    heartbeat: str | None = None
    kind: str = "sweep"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to metrics.json."""
        data = asdict(self)
        data["status"] = Status(self.status).value
        return data

"""Finding and reading run folders: what ``nnlab compare``, ``show`` and ``predict`` stand on.

A run folder is summarised from its metrics.json alone (small, written atomically),
flattened into one row of fields: ``run_id``, ``status``, ``test_accuracy``,
``val_loss``, ``best_epoch``, ``baseline_accuracy``... Its config.yaml is read only
when a config key is asked for.

Reading thousands of folders is dominated by opening and parsing files, so the
summaries are cached in ``<runs root>/.nnlab-index.json``, each under the folder's
name and the (mtime, size, inode) of the file it came from (an atomic rewrite makes
a new inode, so even a rewrite within one clock tick is seen): a folder whose metrics.json
changed is read again, a folder that disappeared drops out, and a missing or
corrupt index is simply rebuilt. Nothing here imports NumPy, TensorFlow or Keras.

Folders that cannot be read (truncated JSON, no metrics.json, a stray directory)
become rows with status ``unreadable`` or ``incomplete`` and a one-line warning;
they never stop a listing.

A run's tags and note (``tags.json``, :mod:`nnlab.store.tags`) join its fields as ``tags``,
``tag.KEY`` and ``note``. They change without metrics.json changing, so the index keeps them
under tags.json's own (mtime, size, inode); a damaged tags.json is a warning, never a stop.
Hidden entries of a runs root are never listed: the index, and ``.trash/`` (``nnlab rm``).

File names and statuses come from :mod:`nnlab.store.format`; only keys that nnlab
writes, or wrote in an earlier release, are read.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from nnlab.errors import NnlabError, RunNotFound
from nnlab.store.format import (CONFIG, DIAGNOSTICS, ENV, HISTORY, HISTORY_MEAN, INDEX, KFOLD, METRICS, SWEEP, TAGS,
                               Status)
from nnlab.store.folder import MAX_NESTING, TooDeep, from_json, nesting_depth
from nnlab.store.liveness import lost_reason

INDEX_VERSION = 4  # raise whenever summarize() changes: older indexes are then rebuilt
#: Folder names made by RunFolder.create start with the UTC start time.
RUN_NAME = re.compile(r"^\d{8}T\d{6}Z_")
#: Baseline figures under the name of the metric they are comparable to.
BASELINE_ALIASES = {"majority_class_accuracy": "accuracy", "linear_regression_mae": "mae",
                    "linear_regression_mse": "mse"}


@dataclass
class Run:
    """One run folder as a listing sees it.

    Args:
        path: the folder.
        fields: the flat summary (``run_id``, ``status``, ``test_accuracy``, ...).
        warning: a one-line problem with the folder, or None.
        directions: ``{metric: "max" | "min"}`` as metrics.json records them ({} for runs
            written before nnlab recorded them).
    """

    path: Path
    fields: dict[str, Any]
    warning: str | None = None
    directions: dict[str, str] = field(default_factory=dict)
    _config: dict[str, Any] | None = field(default=None, repr=False)
    _index: "_Index | None" = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        """The folder's name."""
        return self.path.name

    @property
    def readable(self) -> bool:
        """Whether metrics.json could be read."""
        return Status.of(self.fields.get("status")) not in (Status.UNREADABLE, Status.INCOMPLETE)

    def config(self) -> dict[str, Any]:
        """The run's resolved config flattened to dotted keys (``training.epochs``); {} when unreadable."""
        if self._config is None:
            if self._index is not None:
                self._config = self._index.config(self.path)
            else:
                self._config, _ = read_flat_config(self.path)
        return self._config

    def get(self, key: str, config: bool = True) -> Any:
        """A field of the summary, else (``config``) a dotted config key; None when the run has neither.

        Callers that know ``key`` is a summary field of some run pass ``config=False``,
        so that a run merely lacking it does not cost a read of its config.yaml.
        """
        key = canonical_key(key)
        if key in self.fields:
            return self.fields[key]
        return self.config().get(key) if config else None


# -- reading one folder ------------------------------------------------------------------------

def _read_run_file(folder: Path, name: str) -> str:
    """The text of a run folder's file ``name``.

    Raises:
        NnlabError: when it is missing or cannot be read (the message says which).
    """
    try:
        return (Path(folder) / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NnlabError(f"has no {name}", source=str(folder)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise NnlabError(f"cannot read {name}: {getattr(err, 'strerror', None) or err}", source=str(folder)) from None


def read_text_file(folder: Path, name: str) -> str | None:
    """A text file of a run folder (``summary.txt``, ``config.yaml``, a sweep's ``summary.md``).

    Args:
        folder: the run folder.
        name: the file's name (one of :mod:`nnlab.store.format`'s).

    Returns:
        Its text, or None when the folder has no such file.

    Raises:
        NnlabError: when it is there but cannot be read (the message says why).
    """
    if not (Path(folder) / name).exists():
        return None
    return _read_run_file(folder, name)


def _read_json_object(folder: Path, name: str) -> dict[str, Any]:
    """A JSON file of a run folder that holds an object.

    Raises:
        NnlabError: when it is missing, truncated or not a JSON object (the message says which).
    """
    text = _read_run_file(folder, name)
    try:
        data = from_json(text)
    except TooDeep as err:
        raise NnlabError(f"{name} is {err} (damaged?)", source=str(folder)) from None
    except ValueError as err:
        what = "is empty" if not text.strip() else f"is not valid JSON (truncated?): {err}"
        raise NnlabError(f"{name} {what}", source=str(folder)) from None
    if not isinstance(data, dict):
        raise NnlabError(f"{name} holds a {type(data).__name__}, not an object", source=str(folder))
    return data


def read_metrics(folder: Path) -> dict[str, Any]:
    """metrics.json of a run folder (:class:`nnlab.store.format.RunMetrics`, or a sweep's figures).

    Raises:
        NnlabError: when it is missing, truncated or not a JSON object (the message says which).
    """
    return _read_json_object(folder, METRICS)


def read_kfold(folder: Path) -> dict[str, Any] | None:
    """kfold.json of a k-fold run: ``k``, ``monitor``, ``folds``, ``mean``, ``std``, ``best``, ``final``...

    Returns:
        Its content, or None when the folder has none (not a k-fold run, or no fold finished).

    Raises:
        NnlabError: when it is there but truncated or not a JSON object.
    """
    if not (Path(folder) / KFOLD).exists():
        return None
    return _read_json_object(folder, KFOLD)


def read_sweep(folder: Path) -> dict[str, Any] | None:
    """sweep.json of a sweep folder: ``metric``, ``direction``, ``space``, ``trials``, ``ranking``,
    ``trial_stats`` (with repeats).

    Returns:
        Its content, or None when the folder has none.

    Raises:
        NnlabError: when it is there but truncated or not a JSON object.
    """
    if not (Path(folder) / SWEEP).exists():
        return None
    return _read_json_object(folder, SWEEP)


def read_env(folder: Path) -> dict[str, Any]:
    """env.json of a run folder: versions, devices, the command line, overrides.

    Returns:
        Its content; {} when the folder has none (a sweep folder, a run stopped at once).

    Raises:
        NnlabError: when it is there but truncated or not a JSON object.
    """
    if not (Path(folder) / ENV).exists():
        return {}
    return _read_json_object(folder, ENV)


def read_diagnostics(folder: Path) -> dict[str, Any]:
    """diagnostics.json of a run folder: what the report charts of the test set's predictions.

    Each section is kept only when it is well formed: ``confusion_matrix``
    (``labels``, and ``counts``: a square list of lists as long as ``labels``), ``roc``
    (``fpr`` and ``tpr`` of equal length, ``auc``), ``residuals`` (``predicted`` and
    ``residual`` of equal length).

    Returns:
        The well-formed sections; {} when the folder has no such file or it is damaged (never raises).
    """
    try:
        data = _read_json_object(folder, DIAGNOSTICS)
    except (NnlabError, RecursionError):  # missing, unreadable, truncated, not an object, absurdly nested
        return {}
    kept: dict[str, Any] = {}
    matrix = data.get("confusion_matrix")
    if isinstance(matrix, dict) and isinstance(matrix.get("labels"), list) and isinstance(matrix.get("counts"), list):
        size = len(matrix["labels"])
        if len(matrix["counts"]) == size and all(isinstance(row, list) and len(row) == size
                                                 and all(_is_number(v) for v in row) for row in matrix["counts"]):
            kept["confusion_matrix"] = matrix
    for name, keys in (("roc", ("fpr", "tpr")), ("residuals", ("predicted", "residual"))):
        section = data.get(name)
        if not isinstance(section, dict):
            continue
        columns = [section.get(key) for key in keys]
        if all(isinstance(c, list) and all(_is_number(v) for v in c) for c in columns) \
                and len(columns[0]) == len(columns[1]):
            kept[name] = section
    return kept


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_config(folder: Path) -> dict[str, Any]:
    """config.yaml of a run folder, as plain data (``yaml.safe_load``, C loader when available).

    Raises:
        NnlabError: when it is missing or not a YAML mapping.
    """
    import yaml

    text = _read_run_file(folder, CONFIG)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader, C or Python
    except RecursionError:
        raise NnlabError(f"{CONFIG} is {TooDeep()} (damaged?)", source=str(folder)) from None
    except yaml.YAMLError as err:
        raise NnlabError(f"{CONFIG} is not valid YAML: {str(err).splitlines()[0]}", source=str(folder)) from None
    if not isinstance(data, dict):
        raise NnlabError(f"{CONFIG} is not a mapping", source=str(folder))
    if nesting_depth(data, MAX_NESTING) > MAX_NESTING:
        raise NnlabError(f"{CONFIG} is {TooDeep()} (damaged?)", source=str(folder))
    return data


def read_run_config(folder: Path) -> Any:
    """A run's config.yaml validated, as :func:`nnlab.config.load_config` reads it (file and
    line in its errors; relative dataset paths found from the folder too).

    Returns:
        The :class:`nnlab.config.Config`.

    Raises:
        NnlabError: when the folder has no config.yaml; ConfigError when it is not a valid config.
    """
    from nnlab.config import load_config

    path = Path(folder) / CONFIG
    if not path.is_file():
        raise NnlabError(f"has no {CONFIG}", source=str(folder))
    return load_config(path, base_dir=Path(folder))


def read_flat_config(folder: Path) -> tuple[dict[str, Any], str | None]:
    """The dotted-key form of a folder's config, and a warning when it cannot be read."""
    try:
        return flatten(read_config(folder)), None
    except NnlabError as err:
        return {}, str(err)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, {"c": 2}]}}`` -> ``{"a.b.0": 1, "a.b.1.c": 2}`` (the keys ``--set`` takes)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(data, list) and data:
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}{i}."))
    elif prefix:
        out[prefix[:-1]] = data
    return out


def summarize(metrics: dict[str, Any], run_id: str) -> dict[str, Any]:
    """metrics.json flattened to one row of fields.

    ``train``/``validation``/``test`` become ``train_*``/``val_*``/``test_*``; ``best``
    becomes ``best_monitor``, ``best_epoch``, ``best_value`` and ``best_<monitor>``; the
    baseline becomes ``baseline_*`` plus ``baseline_accuracy``/``baseline_mae``/``baseline_mse``
    (the figure comparable to that metric). A status that is none of :class:`Status`'s
    reads ``unknown``.

    Args:
        metrics: the parsed metrics.json.
        run_id: the folder's name (authoritative: a copied folder keeps its old run_id inside).

    Returns:
        The fields; keys whose value is missing are left out.
    """
    fields: dict[str, Any] = {"run_id": run_id}
    for key in ("name", "kind", "dataset", "task", "status", "message", "started", "finished"):
        if key == "status":
            fields[key] = Status.of(metrics.get(key)).value
        elif isinstance(metrics.get(key), str):
            fields[key] = metrics[key]
    _number(fields, "duration_s", metrics.get("wall_time_s"))
    _number(fields, "epochs", metrics.get("epochs_run"))
    _number(fields, "epochs_planned", metrics.get("epochs_planned"))
    for key in ("params", "train_rows", "validation_rows", "test_rows", "trials", "k", "pid", "process_start"):
        _number(fields, key, metrics.get(key))
    for key in ("host", "heartbeat"):  # who runs it: a reader tells a running run from a lost one
        if isinstance(metrics.get(key), str):
            fields[key] = metrics[key]
    if isinstance(metrics.get("trial_params"), dict):
        fields["trial_params"] = metrics["trial_params"]
    if isinstance(metrics.get("sweep_id"), str):
        fields["sweep_id"] = metrics["sweep_id"]
    _number(fields, "trial", metrics.get("trial"))
    if isinstance(metrics.get("group"), str):  # the config without its seed: the repeats of one experiment
        fields["group"] = metrics["group"]
    _number(fields, "repeat", metrics.get("repeat"))
    for part, prefix in (("train", "train_"), ("validation", "val_"), ("test", "test_")):
        values = metrics.get(part)
        if isinstance(values, dict):
            for name, value in values.items():
                _number(fields, prefix + name, value)
    best = metrics.get("best")
    if isinstance(best, dict):
        # A sweep's best trial names no monitor: the sweep's ranking metric is its.
        _best_fields(fields, best.get("monitor") or metrics.get("metric"), best)
    baseline = metrics.get("baseline")
    if isinstance(baseline, dict):
        for name, value in baseline.items():
            _number(fields, "baseline_" + name, value)
            if name in BASELINE_ALIASES:
                _number(fields, "baseline_" + BASELINE_ALIASES[name], value)
    return fields


def recorded_directions(metrics: dict[str, Any]) -> dict[str, str]:
    """metrics.json's ``directions`` (``{metric: "max" | "min"}``, from Keras's metric objects).

    Returns:
        The well-formed entries; {} for a run written before nnlab recorded them.
    """
    directions = metrics.get("directions")
    if not isinstance(directions, dict):
        return {}
    return {name: d for name, d in directions.items() if isinstance(name, str) and d in ("max", "min")}


def _best_fields(fields: dict[str, Any], monitor: Any, best: dict[str, Any]) -> None:
    if isinstance(monitor, str):
        fields["best_monitor"] = monitor
    _number(fields, "best_epoch", best.get("epoch"))
    _number(fields, "best_value", best.get("value"))
    if isinstance(monitor, str) and "best_value" in fields:
        fields["best_" + monitor] = fields["best_value"]


def _number(fields: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and value != value:  # NaN
        return
    fields[key] = value


def kfold_extras(folder: Path) -> dict[str, Any]:
    """The cross-validation figures of a k-fold folder's kfold.json, as fields.

    ``mean`` and ``std`` (``{metric: value}`` over the folds) become ``val_<metric>`` and
    ``val_<metric>_std``; ``best`` (``{monitor, epoch, value}``) the ``best_*`` fields.

    Returns:
        The fields; {} when there is no readable kfold.json.
    """
    try:
        data = read_kfold(folder)
    except NnlabError:
        return {}
    if data is None:
        return {}
    fields: dict[str, Any] = {}
    _number(fields, "k", data.get("k"))
    for key, suffix in (("mean", ""), ("std", "_std")):
        if isinstance(data.get(key), dict):
            for name, value in data[key].items():
                _number(fields, f"val_{name}{suffix}", value)
    best = data.get("best")
    if isinstance(best, dict):
        _best_fields(fields, best.get("monitor") or data.get("monitor"), best)
    return fields


def read_run(folder: Path) -> Run:
    """Summarise one folder without any index (for folders named one by one)."""
    folder = Path(folder)
    fields, warning, directions = _summary_of(folder)
    return _tagged(_live(Run(folder, fields, warning, directions)), *_tags_of(folder))


def _tags_of(folder: Path) -> tuple[dict[str, Any], str | None]:
    """The fields of a folder's tags.json (:func:`nnlab.store.tags.tag_fields`) and what is wrong with it."""
    from nnlab.store.tags import read_tags, tag_fields

    tags, note, problem = read_tags(folder)
    return tag_fields(tags, note), problem


def _tagged(run: Run, tag_fields: dict[str, Any], problem: str | None) -> Run:
    """A run with its tags and note among its fields, and a damaged tags.json in its warning."""
    if tag_fields:
        run.fields = {**run.fields, **tag_fields}
    if problem:
        run.warning = f"{run.warning}; {problem}" if run.warning else problem
    return run


def _summary_of(folder: Path) -> tuple[dict[str, Any], str | None, dict[str, str]]:
    """Fields of a folder, the warning to print about it (None when it is fine), and its
    recorded metric directions."""
    name = folder.name
    try:
        metrics = read_metrics(folder)
    except NnlabError as err:
        if f"has no {METRICS}" not in err.message:
            return {"run_id": name, "status": Status.UNREADABLE.value}, err.message, {}
        if (folder / CONFIG).is_file():
            return ({"run_id": name, "status": Status.INCOMPLETE.value},
                    f"incomplete: {CONFIG} but no {METRICS} (stopped before it started?)", {})
        return {"run_id": name, "status": Status.UNREADABLE.value}, f"not a run folder (no {METRICS})", {}
    fields = summarize(metrics, name)
    if fields.get("kind") == "kfold":
        # kfold.json holds the cross-validation figures (they win); metrics.json those of the final model.
        fields = {**fields, **kfold_extras(folder)}
    return fields, None, recorded_directions(metrics)


def _live(run: Run) -> Run:
    """Fill in what changes while a run trains (never cached): epochs so far, a warning, and
    ``lost`` for a running run whose process is gone (:func:`nnlab.store.liveness.lost_reason`)."""
    if run.fields.get("status") != Status.RUNNING:
        return run
    lost = lost_reason(run.fields)
    if lost is not None:
        run.fields = {**run.fields, "status": Status.LOST.value}
    if run.fields.get("kind") not in (None, "train"):
        run.warning = (lost_warning(run.fields, run.path, lost) if lost else
                       run.warning or "still running, or stopped without a trace")
        return run
    history = run.path / HISTORY
    try:
        with open(history, "rb") as handle:
            rows = max(0, sum(1 for line in handle if line.strip()) - 1)
        age = time.time() - history.stat().st_mtime
    except OSError:
        rows, age = 0, None
    run.fields = {**run.fields, "epochs": rows}
    planned = run.fields.get("epochs_planned")
    so_far = f"{rows} of {planned} epochs" if planned else f"{rows} epochs"
    since = f", last epoch {_ago(age)} ago" if age is not None else ""
    if lost is not None:
        run.warning = lost_warning(run.fields, run.path, f"{lost} ({rows} epochs in {HISTORY})")
    elif "pid" in run.fields:  # its process is there: it runs
        run.warning = f"running ({so_far} so far{since})"
    else:  # written before nnlab recorded its process
        run.warning = f"running ({so_far} so far{since}), or stopped without a trace"
    return run


def lost_warning(metrics: dict[str, Any], folder: Path, reason: str) -> str:
    """What a reader says of a lost run: why, and how to continue it."""
    if metrics.get("kind") in (None, "train"):
        return f"lost: {reason}; continue it with nnlab train --resume {folder}"
    if metrics.get("kind") == "sweep":
        return f"lost: {reason}; finish it with nnlab sweep --resume {folder}"
    return f"lost: {reason}; start it again"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


# -- a runs root and its index --------------------------------------------------------------

def _signature(path: str | Path) -> list[int] | None:
    """What the index compares to know a file unchanged (mtime, size, inode); None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


class _Index:
    """The cache of folder summaries (and configs) in ``<root>/.nnlab-index.json``."""

    def __init__(self, root: Path):
        self.root = root
        self.path = root / INDEX
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            data = from_json(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == INDEX_VERSION and isinstance(data.get("folders"), dict):
                self.entries = data["folders"]
        except (OSError, ValueError):
            pass  # no index yet, or a damaged one: rebuilt from the folders

    def summary(self, entry_name: str, folder: Path) -> tuple[dict[str, Any], str | None, dict[str, str]]:
        """Fields, warning and directions of a folder, from the cache when its metrics.json is unchanged."""
        # No metrics.json (signature None): looked at afresh every time (it may appear).
        signature = _signature(os.path.join(self.root, entry_name, METRICS))
        cached = self.entries.get(entry_name)
        if signature is not None and cached is not None and cached.get("sig") == signature:
            return cached["fields"], cached.get("warning"), cached.get("directions") or {}
        fields, warning, directions = _summary_of(folder)
        if signature is not None:
            self.entries[entry_name] = {"sig": signature, "fields": fields, "warning": warning}
            if directions:
                self.entries[entry_name]["directions"] = directions
            self.changed = True
        elif entry_name in self.entries:
            del self.entries[entry_name]
            self.changed = True
        return fields, warning, directions

    def tags(self, folder: Path) -> tuple[dict[str, Any], str | None]:
        """The tag fields of a folder and what is wrong with its tags.json, from the cache when that
        file is unchanged (tags change without metrics.json changing: they have their own signature)."""
        entry = self.entries.get(folder.name)
        signature = _signature(folder / TAGS)
        if signature is None:  # no tags (the usual case): one failed stat, nothing read
            if entry is not None and "tags_sig" in entry:
                for key in ("tags_sig", "tags", "tags_problem"):
                    entry.pop(key, None)
                self.changed = True
            return {}, None
        if entry is not None and entry.get("tags_sig") == signature:
            return entry.get("tags") or {}, entry.get("tags_problem")
        fields, problem = _tags_of(folder)
        if entry is not None:
            entry["tags_sig"], entry["tags"], entry["tags_problem"] = signature, fields, problem
            self.changed = True
        return fields, problem

    def config(self, folder: Path) -> dict[str, Any]:
        """The flattened config of a folder, from the cache when its config.yaml is unchanged."""
        entry = self.entries.get(folder.name)
        signature = _signature(folder / CONFIG)
        if entry is not None and signature is not None and entry.get("config_sig") == signature:
            return entry["config"]
        flat, _ = read_flat_config(folder)
        if entry is not None and signature is not None:
            entry["config_sig"], entry["config"] = signature, flat
            self.changed = True
        return flat

    def keep_only(self, names: set[str]) -> None:
        """Forget folders that are gone."""
        gone = [name for name in self.entries if name not in names]
        for name in gone:
            del self.entries[name]
        self.changed = self.changed or bool(gone)

    def save(self) -> None:
        """Write the index atomically if anything changed; a read-only root just goes without one."""
        if not self.changed:
            return
        from nnlab.store.folder import atomic_write

        try:
            atomic_write(self.path, json.dumps({"version": INDEX_VERSION, "folders": self.entries},
                                               separators=(",", ":")))
            self.changed = False
        except OSError:
            pass


class RunSet:
    """The runs found under some runs roots and run folders.

    Args:
        runs: the runs, in run-id (start time) order.
        indexes: the index of each runs root, saved by :meth:`save`.
    """

    def __init__(self, runs: list[Run], indexes: list[_Index]):
        self.runs = runs
        self._indexes = indexes

    def save(self) -> None:
        """Write back the indexes (summaries, and any configs read since)."""
        for index in self._indexes:
            index.save()


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` looks like one run folder rather than a runs root."""
    return (path / METRICS).exists() or (path / CONFIG).exists() or bool(RUN_NAME.match(path.name))


def list_root(root: Path, *, use_index: bool = True) -> tuple[list[Run], _Index | None]:
    """Every folder directly under a runs root, summarised (hidden entries, such as the index and
    ``.trash/``, and plain files are skipped).

    Args:
        root: the runs root.
        use_index: read and update the index (:data:`nnlab.store.format.INDEX`).

    Returns:
        The runs (sorted by folder name, i.e. start time) and the index (None without one).
    """
    index = _Index(root) if use_index else None
    runs = []
    names = set()
    try:
        entries = list(os.scandir(root))
    except OSError as err:
        raise NnlabError(f"cannot list the runs folder: {err.strerror or err}", source=str(root)) from None
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        names.add(entry.name)
        folder = Path(entry.path)
        if index is not None:
            fields, warning, directions = index.summary(entry.name, folder)
            tags = index.tags(folder)
        else:
            fields, warning, directions = _summary_of(folder)
            tags = _tags_of(folder)
        runs.append(_tagged(_live(Run(folder, fields, warning, directions, _index=index)), *tags))
    if index is not None:
        index.keep_only(names)
    runs.sort(key=lambda r: r.run_id)
    return runs, index


def collect(paths: Iterable[str | Path], runs_dir: str | Path = "runs", *, use_index: bool = True) -> RunSet:
    """The runs named by command-line arguments: runs roots, run folders, run ids or prefixes.

    Args:
        paths: what the user gave (nothing: ``runs_dir``).
        runs_dir: the default runs root, where run ids and prefixes are looked up.
        use_index: use the index in each runs root.

    Returns:
        The runs (each folder once), in run-id order within each argument.

    Raises:
        NnlabError: when an argument is neither a folder nor a run id (exit code 2).
    """
    paths = list(paths) or [runs_dir]
    runs: list[Run] = []
    indexes: list[_Index] = []
    seen: set[Path] = set()
    for arg in paths:
        path = Path(arg)
        if path.is_dir() and not is_run_folder(path):
            found, index = list_root(path, use_index=use_index)
            if index is not None:
                indexes.append(index)
        elif path.is_dir():
            found = [read_run(path)]
        elif str(arg) == str(runs_dir) and not path.exists():
            raise NnlabError("no runs folder here: train something first (nnlab train CONFIG), "
                             "or name a runs folder or run folders", source=str(arg))
        else:
            found = [read_run(resolve_run(str(arg), runs_dir))]
        if len(paths) == 1:
            runs = found
            break
        for run in found:  # the same folder named twice (or inside a root also named) is listed once
            key = run.path.resolve()
            if key not in seen:
                seen.add(key)
                runs.append(run)
    return RunSet(runs, indexes)


# -- RUN arguments: a folder, a run id, a unique prefix, or `last` ---------------------------------

def run_folders(runs_dir: str | Path) -> list[str]:
    """Names of the run folders (those named ``<UTC timestamp>_<name>...``) under a runs root."""
    try:
        return sorted(e.name for e in os.scandir(runs_dir) if e.is_dir() and RUN_NAME.match(e.name))
    except OSError:
        return []


def resolve_run(arg: str, runs_dir: str | Path = "runs") -> Path:
    """The run folder a RUN argument names.

    Args:
        arg: a folder path, a run id (folder name under ``runs_dir``), a unique prefix
            of one, or ``last`` (the run started most recently).
        runs_dir: the runs root ids are looked up in.

    Returns:
        The folder.

    Raises:
        RunNotFound: when nothing, or more than one run, matches (exit code 2).
    """
    root = Path(runs_dir)
    path = Path(arg)
    if path.is_dir() and is_run_folder(path):
        return path
    names = run_folders(root)
    if arg == "last":
        if not names:
            raise RunNotFound(f"there are no runs in {root} yet", source="last")
        # Names sort by start time; runs started in the same second sort by when their folder changed.
        stamp = names[-1][:16]
        tied = [n for n in names if n[:16] == stamp]
        return root / max(tied, key=lambda n: (_mtime(root / n), n))
    if arg and (root / arg).is_dir() and "/" not in arg and arg not in (".", ".."):
        return root / arg
    if path.is_dir():
        raise RunNotFound(f"is a folder but not a run folder (no {METRICS} or {CONFIG}); "
                          "to list the runs in it use nnlab compare", source=arg)
    matches = [n for n in names if n.startswith(arg)]
    if len(matches) == 1:
        return root / matches[0]
    accepted = "a run folder, a run id, a unique prefix of one, or last"
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (f" and {len(matches) - 5} more" if len(matches) > 5 else "")
        raise RunNotFound(f"'{arg}' is the start of {len(matches)} runs ({shown}); give more of the id",
                          source=str(root))
    if not root.is_dir():
        raise RunNotFound(f"no run '{arg}': it is not a folder, and there is no runs folder {root} to look "
                          f"it up in (give {accepted}, or --runs-dir)", source=arg)
    import difflib

    close = difflib.get_close_matches(arg, names, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise RunNotFound(f"no run '{arg}' in {root}{hint} (give {accepted})", source=arg)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# -- keys --------------------------------------------------------------------------------------

def canonical_key(key: str) -> str:
    """Accept ``validation_loss`` for ``val_loss`` and ``duration`` for ``duration_s``."""
    key = key.strip()
    if key.startswith("validation_") and key != "validation_rows":
        return "val_" + key[len("validation_"):]
    return {"duration": "duration_s", "wall_time_s": "duration_s", "id": "run_id", "run": "run_id",
            "epochs_run": "epochs"}.get(key, key)


def read_history(folder: Path, metric: str | None = None, *, prefer_mean: bool = False) -> dict[str, list[float]]:
    """A run's per-epoch history: history.csv, or a k-fold folder's history_mean.csv.

    Args:
        folder: the run folder.
        metric: a column that must be there: the first file that has it is read.
        prefer_mean: look at history_mean.csv (the k-fold mean across folds) first.

    Returns:
        ``{column: values}`` with the ``epoch`` column included; {} when there is none.
    """
    from nnlab.store.folder import read_history_csv

    names = [HISTORY, HISTORY_MEAN]
    if prefer_mean:
        names.reverse()
    first: dict[str, list[float]] = {}
    for name in names:
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            history = read_history_csv(path)
        except (OSError, ValueError, UnicodeDecodeError, csv.Error):  # damaged: as if it were not there
            continue
        if name == HISTORY_MEAN:
            # history_mean.csv names the mean of val_loss val_loss_mean: it is read as val_loss too.
            for column in list(history):
                plain = column.removesuffix("_mean")
                if plain != column and plain not in history:
                    history[plain] = history[column]
        if metric is None or metric in history:
            return history
        first = first or history
    return first

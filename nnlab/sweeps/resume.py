"""``nnlab sweep --resume SWEEP_FOLDER``: run the trials a sweep did not finish, in its own folder.

A sweep folder holds all a resume needs: config.yaml (the sweep's config) and, in
sweep.json, the space, the seeds, the metric, the kind of trial, the executor and
every trial's status. A resume rebuilds the same trials (the same numbers, parameters
and seeds), keeps those that ended for good (:data:`KEPT`: their run folders stay as
they are), and runs every other trial again, from its start, in a new run folder:
not run, pending, interrupted, failed (it raised, or its worker died on every try),
or kept but with its run folder gone. The trial folder an interrupted trial left
stays on disk as it is; sweep.json names the new one. Then sweep.json, metrics.json
and summary.md of the same folder are written again, ranking every trial.

A resume refuses (:class:`NnlabError`, exit code 2) when what it would build differs
from what the sweep recorded: another config (a CONFIG argument, ``--set``, an edited
config.yaml), another space, other seeds, another metric or kind of trial.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab.config import Config, load_config
from nnlab.errors import NnlabError
from nnlab.store import format as runfile
from nnlab.store.folder import RunFolder
from nnlab.store.format import Status
from nnlab.store.reading import read_metrics, read_sweep
from nnlab.sweeps.run import TrialOutcome, config_id
from nnlab.sweeps.space import Space, Trial

#: Trial statuses a resume keeps: the trial ended for good. Every other one runs again.
KEPT = frozenset({Status.COMPLETED.value, Status.DIVERGED.value, Status.PRUNED.value})


@dataclass
class PreviousSweep:
    """What a sweep folder recorded, as a resume needs it."""

    run: RunFolder
    record: dict[str, Any]
    base: Config
    space: Space
    seeds: list[int] | None
    metric: str
    kfold: bool
    outcomes: list[TrialOutcome]

    @property
    def executor_options(self) -> dict[str, Any]:
        """The command line's executor options of the sweep (``executor``, ``jobs``, ``address``...)."""
        options = self.record.get("executor_options")
        return options if isinstance(options, dict) else {}


def read_previous(folder: str | Path, overrides: list[str] = ()) -> PreviousSweep:
    """Read a sweep folder for a resume.

    Args:
        folder: the sweep folder (``runs/<timestamp>_<name>_sweep``).
        overrides: ``--set`` overrides, applied to config.yaml (any that changes it is refused
            later, by :func:`check_unchanged`).

    Returns:
        The previous sweep; its ``base`` is config.yaml as recorded.

    Raises:
        NnlabError: when the folder is not a sweep folder nnlab can resume, or its sweep is
            still running on this machine.
    """
    path = Path(folder)
    source = str(path)
    if not path.is_dir():
        raise NnlabError("is not a folder" if path.exists() else "does not exist", source=source)
    record = read_sweep(path)
    if record is None:
        raise NnlabError("is not a sweep folder (it has no sweep.json); give the folder nnlab sweep printed",
                         source=source)
    if not (path / runfile.CONFIG).is_file():
        raise NnlabError(f"has no {runfile.CONFIG}: nothing says what its trials were made from", source=source)
    _refuse_if_running(record, source)
    base = load_config(path / runfile.CONFIG)
    if record.get("config_id") not in (None, config_id(base)):
        raise NnlabError(f"its {runfile.CONFIG} was edited since the sweep started (it no longer gives the config "
                         "its trials were made from); start a new sweep for another config", source=source)
    space = Space.from_dict(record.get("space"), source)
    try:
        outcomes = [TrialOutcome(index=int(t["index"]), params=dict(t["params"]), status=str(t["status"]),
                                 folder=t.get("folder"), metrics=dict(t.get("metrics") or {}),
                                 message=t.get("message"), repeat=t.get("repeat"))
                    for t in record["trials"]]
        metric, kfold = str(record["metric"]), record["trial_kind"] == "kfold"
    except (KeyError, TypeError, ValueError):
        raise NnlabError("sweep.json's trials are damaged (edited?); nothing can be resumed from it",
                         source=source) from None
    seeds = record.get("seeds")
    if seeds is None and any(o.repeat is not None for o in outcomes):
        raise NnlabError("sweep.json does not record the seeds of its repeats (written by an older nnlab); "
                         "start the sweep again", source=source)
    return PreviousSweep(run=RunFolder(path), record=record, base=base, space=space, seeds=seeds,
                         metric=metric, kfold=kfold, outcomes=outcomes)


def check_unchanged(previous: PreviousSweep, config: Config, space: Space, seeds: list[int] | None,
                    metric: str, kfold: bool) -> None:
    """Refuse a resume whose config, space, seeds, metric or kind of trial is not the sweep's.

    Args:
        previous: the sweep folder's record.
        config: the config the resume would use (CONFIG or config.yaml, with ``--set``).
        space, seeds, metric, kfold: what the resume's command line would build.

    Raises:
        NnlabError: one message naming what changed.
    """
    source = str(previous.run.path)
    changed = _changed_keys(_plain(previous.base.to_dict()), _plain(config.to_dict()))
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise NnlabError(f"the config is not the sweep's ({runfile.CONFIG}): {shown} changed; a resume runs "
                         "the trials the sweep started with (start a new sweep for another config)", source=source)
    for what, recorded, now in (("the parameter space", previous.space.as_dict(), space.as_dict()),
                                ("the seeds", previous.seeds, seeds), ("the metric", previous.metric, metric),
                                ("the kind of trial (--kfold)", previous.kfold, kfold)):
        if _plain(recorded) != _plain(now):
            raise NnlabError(f"{what} changed ({_short(recorded)} in sweep.json, {_short(now)} now); a resume "
                             "takes it from sweep.json: give no option but the folder", source=source)


def unfinished(previous: PreviousSweep) -> set[tuple[int, int | None]]:
    """The trials a resume runs again: ``(trial number, repeat)`` of every trial not in :data:`KEPT`,
    or kept but whose run folder is gone or no longer says so."""
    again = set()
    for outcome in previous.outcomes:
        if outcome.status not in KEPT or not _folder_says(outcome):
            again.add((outcome.index, outcome.repeat))
    return again


def trials_to_run(previous: PreviousSweep, trials: list[Trial]) -> list[Trial]:
    """The trials of :func:`unfinished`, from the rebuilt ones.

    Args:
        previous: the sweep folder's record.
        trials: every trial, rebuilt from its config and space (:func:`nnlab.sweeps.space.build_trials`).

    Raises:
        NnlabError: when the rebuilt trials are not those sweep.json records (edited by hand).
    """
    recorded = [(o.index, o.repeat, _plain(o.params)) for o in previous.outcomes]
    rebuilt = [(t.index, t.repeat, _plain(t.params)) for t in trials]
    if recorded != rebuilt:
        raise NnlabError(f"sweep.json's {len(recorded)} trials are not the {len(rebuilt)} its space and "
                         f"{runfile.CONFIG} make (edited by hand?); start a new sweep",
                         source=str(previous.run.path))
    again = unfinished(previous)
    return [t for t in trials if (t.index, t.repeat) in again]


def _folder_says(outcome: TrialOutcome) -> bool:
    """Whether a kept trial's run folder is still there with the status sweep.json gives it."""
    if not outcome.folder or not Path(outcome.folder).is_dir():
        return False
    try:
        return read_metrics(Path(outcome.folder)).get("status") == outcome.status
    except NnlabError:
        return False


def _refuse_if_running(record: dict[str, Any], source: str) -> None:
    """A sweep whose process may still be alive (:func:`nnlab.store.liveness.still_running`) is not
    resumed twice at once."""
    from nnlab.store.liveness import still_running

    if record.get("pid") == os.getpid():
        return
    alive = still_running(record)
    if alive is not None:
        raise NnlabError(f"the sweep is still running ({alive}); stop it first, or wait for it to end",
                         source=source)


def _plain(value: Any) -> Any:
    """As JSON holds it (tuples as lists, keys as strings), so a record and a rebuilt value compare."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(old) + [k for k in new if k not in old]
        return [c for k in keys for c in _changed_keys(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".") or "(the whole config)"]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."

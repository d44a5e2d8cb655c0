"""The trash of a runs root: where ``nnlab rm`` moves run folders, and ``nnlab restore`` takes them back from.

A removed folder is renamed into ``<runs root>/.trash/`` (:data:`nnlab.store.format.TRASH`),
the runs root it lives in, so the move is one rename on one filesystem: it is never half
done, and nothing is copied. Beside it the trash keeps a record,
``<name>.removed.json``: the run id, when it was removed, where it was, and the sweep
it was removed with. Listings skip hidden entries, so compare, report and ``last`` no
longer see it; only :func:`purge` deletes anything, and only what is in the trash.

- A running run is refused; a ``lost`` one (its process is gone: :mod:`nnlab.store.liveness`)
  is not. Nothing is moved unless every run asked for can be.
- A sweep folder takes its trials with it (the run folders of the same runs root whose
  ``sweep_id`` is the sweep's), and brings them back when restored. A trial removed on its
  own leaves its sweep's record as it is (``nnlab sweep --resume`` would run it again).
- Names in the trash do not clash: a folder whose name is taken there (removed, restored,
  and a folder of that name removed again) goes in as ``<name>~2``, ``~3``...; its record
  keeps the run id it goes back to. A restore is refused while a folder of that name exists
  in the runs root again.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nnlab.errors import NnlabError
from nnlab.store.format import METRICS, TRASH, TRASH_RECORD_SUFFIX, Status
from nnlab.store.reading import Run, list_root, read_run

#: ``--older-than``: a number and a unit.
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class Move:
    """One folder to move into the trash (or out of it).

    Args:
        run: the run as a listing sees it (its status already ``lost`` when its process is gone).
        source: where the folder is.
        target: where it goes.
        with_sweep: the sweep folder it goes with (a trial of a removed sweep), else None.
    """

    run: Run
    source: Path
    target: Path
    with_sweep: str | None = None


@dataclass
class Trashed:
    """A folder in the trash.

    Args:
        path: the folder in the trash.
        run_id: its name in the runs root, where a restore puts it back.
        removed: when it was removed (the record's time; the folder's change time without one).
        origin: the folder it was.
        with_sweep: the sweep it was removed with, or None.
        run: what a listing says of it (status, kind, name...).
    """

    path: Path
    run_id: str
    removed: datetime | None
    origin: Path
    with_sweep: str | None = None
    run: Run | None = field(default=None, repr=False)

    @property
    def record(self) -> Path:
        """The record beside the folder."""
        return self.path.with_name(self.path.name + TRASH_RECORD_SUFFIX)


def trash_of(root: str | Path) -> Path:
    """The trash folder of a runs root."""
    return Path(root) / TRASH


def parse_age(text: str) -> timedelta:
    """``--older-than``: ``30d``, ``12h``, ``90m``, ``2w``, ``45s``.

    Raises:
        NnlabError: for anything else (exit code 2).
    """
    match = _AGE.match(text or "")
    if not match:
        raise NnlabError(f"expected an age such as 30d, 12h, 90m or 2w (s, m, h, d, w), not '{text}'",
                         source="--older-than")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


# -- moving runs in ---------------------------------------------------------------------------------

def plan_removal(runs: list[Run]) -> list[Move]:
    """Where each run folder (and each removed sweep's trials) goes in its runs root's trash.

    Args:
        runs: the runs to remove, as a listing or :func:`nnlab.store.reading.read_run` gives them.

    Returns:
        The moves, trials before their sweep folder; each folder once.

    Raises:
        NnlabError: naming every run that cannot be removed (running, in the trash already,
            a fold inside a k-fold run) and why; nothing is moved then (exit code 2).
    """
    moves: list[Move] = []
    seen: set[Path] = set()
    refused: list[str] = []
    listings: dict[Path, list[Run]] = {}
    taken: set[Path] = set()  # trash names given to earlier moves of this plan

    def add(run: Run, with_sweep: str | None) -> None:
        source = run.path
        key = source.resolve()
        if key in seen:
            return
        seen.add(key)
        why = _refusal(run)
        if why is not None:
            refused.append(f"{run.run_id} ({why})")
            return
        target = _free_name(trash_of(source.parent), source.name, taken)
        taken.add(target)
        moves.append(Move(run, source, target, with_sweep))

    # Sweeps first: a trial named beside its sweep is moved as the sweep's, and comes back with it.
    for run in sorted(runs, key=lambda r: r.fields.get("kind") != "sweep"):
        if run.fields.get("kind") == "sweep":
            root = run.path.parent
            if root not in listings:
                listings[root], index = list_root(root)
                if index is not None:
                    index.save()
            for trial in listings[root]:
                if trial.fields.get("sweep_id") == run.run_id and trial.path != run.path:
                    add(trial, run.run_id)
        add(run, None)
    if refused:
        shown = "; ".join(refused[:10]) + (f"; and {len(refused) - 10} more" if len(refused) > 10 else "")
        raise NnlabError(f"cannot remove {_count(len(refused))}: {shown}. Nothing was removed", source="nnlab rm")
    # Trials go before their sweep folder: an rm stopped half-way leaves no sweep without its trials listed.
    moves.sort(key=lambda m: m.with_sweep is None and m.run.fields.get("kind") == "sweep")
    return moves


def _refusal(run: Run) -> str | None:
    """Why a run folder cannot go to the trash, or None."""
    from nnlab.store.liveness import still_running

    path = run.path
    if path.resolve().parent.name == TRASH:
        return "it is in the trash already"
    parents = list(path.resolve().parents)[:2]
    if any((p / METRICS).is_file() for p in parents):
        return "it is part of another run; remove that run"
    if run.fields.get("status") == Status.RUNNING.value:
        where = still_running(run.fields)
        how = f"{where}; " if where else "it records no process to check: "
        return f"it is running, {how}stop it first, or remove it once nnlab says it is lost"
    return None


def _free_name(trash: Path, name: str, taken: set[Path]) -> Path:
    """``trash/name``, or ``trash/name~2`` (``~3``...) when that is taken."""
    for attempt in range(1, 10_000):
        target = trash / (name if attempt == 1 else f"{name}~{attempt}")
        if target not in taken and not os.path.lexists(target) \
                and not os.path.lexists(str(target) + TRASH_RECORD_SUFFIX):
            return target
    raise NnlabError(f"too many folders named {name} in the trash; purge it (nnlab rm --purge)", source=str(trash))


def move_to_trash(moves: list[Move]) -> list[Move]:
    """Rename each folder into its trash and write its record.

    Returns:
        The moves done (all of them).

    Raises:
        NnlabError: when a rename fails (another filesystem, permissions); the moves done before
            it stay done, and the message says how many.
    """
    from nnlab.store.folder import atomic_write, to_json, utc_now

    done: list[Move] = []
    for move in moves:
        try:
            move.target.parent.mkdir(exist_ok=True)
        except OSError as err:
            raise NnlabError(f"cannot make the trash folder: {err.strerror or err}", source=str(move.target.parent)) \
                from None
        # rename() would replace an empty folder of the target's name; _free_name chose one that was not there.
        _rename(move.source, move.target, done, "removed")
        done.append(move)
        record = {"run_id": move.source.name, "removed": utc_now().isoformat(timespec="seconds"),
                  "from": os.path.abspath(move.source), "with_sweep": move.with_sweep}
        try:
            atomic_write(Path(str(move.target) + TRASH_RECORD_SUFFIX), to_json(record))
        except OSError:
            pass  # the folder is in the trash all the same: its name says where it goes back
    return done


def _rename(source: Path, target: Path, done: list, verb: str) -> None:
    try:
        os.rename(source, target)
    except OSError as err:
        so_far = f" ({_count(len(done))} {verb} before it)" if done else ""
        if err.errno == errno.EXDEV:
            why = "it is on another filesystem than the trash (a mount point?); move it by hand"
        else:
            why = err.strerror or str(err)
        raise NnlabError(f"cannot move it to {target}: {why}{so_far}", source=str(source)) from None


# -- what the trash holds ----------------------------------------------------------------------------

def trashed(root: str | Path, *, read_runs: bool = False) -> list[Trashed]:
    """Every folder in a runs root's trash, the earliest removed first.

    Args:
        root: the runs root.
        read_runs: also summarise each folder (:attr:`Trashed.run`: status, kind, name), for a listing.

    Returns:
        The folders ([] when there is no trash); a record that is damaged or missing leaves
        the folder's name as its run id.
    """
    from nnlab.store.folder import from_json

    trash = trash_of(root)
    try:
        entries = sorted((e for e in os.scandir(trash) if e.is_dir(follow_symlinks=False)), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except OSError as err:
        raise NnlabError(f"cannot list the trash: {err.strerror or err}", source=str(trash)) from None
    found = []
    for entry in entries:
        path = Path(entry.path)
        record: dict[str, Any] = {}
        try:
            data = from_json((trash / (entry.name + TRASH_RECORD_SUFFIX)).read_text(encoding="utf-8"))
            record = data if isinstance(data, dict) else {}
        except (OSError, ValueError, UnicodeDecodeError):
            pass
        run_id = record.get("run_id") if isinstance(record.get("run_id"), str) else None
        if not run_id or "/" in run_id or run_id.startswith("."):
            run_id = re.sub(r"~\d+$", "", entry.name)
        found.append(Trashed(path, run_id, _removed_at(record, path), Path(root) / run_id,
                             record.get("with_sweep") if isinstance(record.get("with_sweep"), str) else None,
                             read_run(path) if read_runs else None))
    found.sort(key=lambda t: (t.removed or datetime.min.replace(tzinfo=timezone.utc), t.path.name))
    return found


def _removed_at(record: dict[str, Any], path: Path) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(record["removed"]))
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    except (KeyError, ValueError):
        pass
    try:  # a rename changes the folder's change time: when it came into the trash
        return datetime.fromtimestamp(path.stat().st_ctime, timezone.utc)
    except OSError:
        return None


def find_trashed(arg: str, root: str | Path) -> Trashed:
    """The folder in the trash a RUN argument names: a run id, a unique prefix of one, ``last``
    (the run started last), or the folder's path in the trash.

    Raises:
        RunNotFound: when nothing, or more than one folder, matches (exit code 2).
    """
    from nnlab.errors import RunNotFound
    from nnlab.store.reading import resolve_run

    trash = trash_of(root)
    if not trash.is_dir():
        raise RunNotFound(f"the trash of {root} is empty (there is no {trash})", source=arg)
    entries = trashed(root)
    by_name = {t.path.name: t for t in entries}
    # A run id as it was (its name in the runs root) names its latest removal when it went in as name~N.
    same = [t for t in entries if t.run_id == arg]
    if same:
        return same[-1]
    try:
        path = resolve_run(arg, trash)
    except RunNotFound:
        try:
            where = resolve_run(arg, root)
        except RunNotFound:
            raise RunNotFound(f"no run '{arg}' in the trash of {root} (nnlab rm --list shows it)",
                              source="nnlab restore") from None
        raise RunNotFound(f"is not in the trash: it is {where}", source=arg) from None
    if path.name in by_name and path.resolve().parent == trash.resolve():
        return by_name[path.name]
    raise RunNotFound(f"is not in the trash of {root}", source=arg)


# -- taking runs back ---------------------------------------------------------------------------------

def plan_restore(chosen: list[Trashed], root: str | Path) -> list[Trashed]:
    """The folders a restore moves back: those chosen, and the trials of a chosen sweep removed with it.

    Raises:
        NnlabError: naming every one whose place in the runs root is taken again; nothing is
            moved then (exit code 2).
    """
    entries = trashed(root)
    wanted: dict[Path, Trashed] = {}
    for item in chosen:
        for trial in entries:
            if trial.with_sweep == item.run_id and trial.with_sweep is not None:
                wanted.setdefault(trial.path, trial)
        wanted.setdefault(item.path, item)
    clashes = [t for t in wanted.values() if os.path.lexists(t.origin)]
    targets = [t.origin for t in wanted.values()]
    twice = {o for o in targets if targets.count(o) > 1}
    if clashes or twice:
        named = [f"{t.origin} exists again" for t in clashes] + [f"{o} would be restored twice" for o in twice]
        raise NnlabError(f"cannot restore: {'; '.join(named)}. Move it away or rename it first; nothing was "
                         "restored", source="nnlab restore")
    return list(wanted.values())


def restore(items: list[Trashed]) -> list[Trashed]:
    """Move each folder back to its place in the runs root and drop its record.

    Raises:
        NnlabError: when a rename fails; the restores before it stay done.
    """
    done: list[Trashed] = []
    for item in items:
        if os.path.lexists(item.origin):  # made since the plan was checked: never replace it
            raise NnlabError(f"cannot restore: {item.origin} exists again; nothing more was restored",
                             source="nnlab restore")
        _rename(item.path, item.origin, done, "restored")
        done.append(item)
        try:
            item.record.unlink(missing_ok=True)
        except OSError:
            pass
    return done


# -- deleting for good --------------------------------------------------------------------------------

def plan_purge(root: str | Path, older_than: timedelta | None = None,
               now: datetime | None = None) -> list[Trashed]:
    """The folders in the trash a purge deletes: all, or those removed longer than ``older_than`` ago."""
    now = now or datetime.now(timezone.utc)
    return [t for t in trashed(root)
            if older_than is None or (t.removed is not None and now - t.removed > older_than)]


def purge(items: list[Trashed], root: str | Path) -> list[Trashed]:
    """Delete folders in the trash for good, with their records.

    Only what lies directly in ``root``'s trash is deleted (a link is unlinked, never followed).

    Raises:
        NnlabError: when a folder cannot be deleted (the ones before it are gone).
    """
    trash = trash_of(root).resolve()
    done: list[Trashed] = []
    for item in items:
        if Path(os.path.abspath(item.path)).parent.resolve() != trash:
            raise NnlabError("is not in the trash; nothing outside the trash is deleted", source=str(item.path))
        try:
            if item.path.is_symlink():
                item.path.unlink()
            else:
                shutil.rmtree(item.path)
            item.record.unlink(missing_ok=True)
        except OSError as err:
            so_far = f" ({_count(len(done))} deleted before it)" if done else ""
            raise NnlabError(f"cannot delete it: {err.strerror or err}{so_far}", source=str(item.path)) from None
        done.append(item)
    _drop_orphan_records(trash)
    return done


def _drop_orphan_records(trash: Path) -> None:
    """Records whose folder is gone (deleted by hand) say nothing: remove them."""
    try:
        for entry in os.scandir(trash):
            if entry.name.endswith(TRASH_RECORD_SUFFIX) and \
                    not os.path.lexists(trash / entry.name[: -len(TRASH_RECORD_SUFFIX)]):
                os.unlink(entry.path)
    except OSError:
        pass


def _count(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"

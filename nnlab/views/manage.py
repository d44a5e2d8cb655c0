"""``nnlab tag``, ``note``, ``rm`` and ``restore``: choose runs as compare does, change them, say what changed.

The runs are named as ``nnlab show`` names one (a folder, a run id or a unique prefix
under ``--runs-dir``, or ``last``), or chosen with ``--filter`` exactly as ``nnlab compare
--filter`` chooses them (:func:`nnlab.views.compare.select`); both together keep the named
runs that match. The changes themselves are :mod:`nnlab.store.tags`' and
:mod:`nnlab.store.trash`'s; ``--dry-run`` prints the same lines, prefixed "would", and
changes nothing. Nothing here imports TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from nnlab.errors import NnlabError
from nnlab.store.reading import Run, collect, read_run, resolve_run
from nnlab.views.compare import Filter, render_table, select, unmatched_values


def choose_runs(args: list[str], filters: list[str], runs_dir: str | Path, *, what: str,
                err: TextIO | None = None) -> list[Run]:
    """The runs a command acts on.

    Args:
        args: RUN arguments (what ``nnlab show`` accepts); none: every run under ``runs_dir``,
            which then needs ``filters``.
        filters: ``--filter`` conditions, as compare takes them.
        runs_dir: where run ids are looked up.
        what: the command, for messages (``nnlab rm``).
        err: where a note on a filter that matches nothing goes (default stderr).

    Returns:
        The runs, each once, in the order named (or start order); [] when the filters match none.

    Raises:
        NnlabError: for no RUN and no filter, a RUN that names no run, a bad filter (exit code 2).
    """
    parsed = [Filter.parse(f) for f in filters]
    if not args and not parsed:
        raise NnlabError("name the runs (RUN: a run folder, a run id, a unique prefix of one, or last), or "
                         "choose them with --filter KEY=VALUE as for nnlab compare", source=what)
    if args:
        runs, seen = [], set()
        for arg in args:
            run = read_run(resolve_run(arg, runs_dir))
            if run.path.resolve() not in seen:
                seen.add(run.path.resolve())
                runs.append(run)
    else:
        found = collect([], runs_dir)
        runs = found.runs
        found.save()
    if not parsed:
        return runs
    chosen = select(runs, filters=parsed)
    if not chosen:
        for note in unmatched_values(runs, parsed):
            (err or sys.stderr).write(f"note: {note}\n")
        (err or sys.stderr).write("no runs match the filters: nothing was changed\n")
    return chosen


def split_tag_arguments(items: list[str]) -> tuple[list[str], list[str]]:
    """``nnlab tag RUN... KEY=VALUE...``: the RUN arguments and the assignments (an argument with
    ``=`` that is not a folder)."""
    runs, assignments = [], []
    for item in items:
        (assignments if "=" in item and not Path(item).is_dir() else runs).append(item)
    return runs, assignments


def run_tag(items: list[str], *, remove: list[str] = (), filters: list[str] = (), runs_dir: str | Path = "runs",
            dry_run: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> list[Run]:
    """``nnlab tag``: set (``KEY=VALUE``) and remove (``--remove KEY``) tags of runs; with neither,
    print their tags.

    Args:
        items: RUN arguments and ``KEY=VALUE`` assignments, in any order.
        remove: keys to take away.
        filters, runs_dir: see :func:`choose_runs`.
        dry_run: say what would change, change nothing.
        out, err: where the lines and notes go (default stdout, stderr).

    Returns:
        The runs chosen.

    Raises:
        NnlabError: for a bad key or value, a key both set and removed, or a run that cannot be
            tagged; every assignment is checked before any run is touched (exit code 2).
    """
    from nnlab.store.tags import change_tags, check_key, parse_assignment, read_tags

    out = out or sys.stdout
    args, assignments = split_tag_arguments(list(items))
    setting = dict(parse_assignment(a) for a in assignments)
    removing = [check_key(k.strip(), "--remove") for k in remove]
    both = sorted(set(setting) & set(removing))
    if both:
        raise NnlabError(f"tag {both[0]} is both set and removed: give one of KEY=VALUE and --remove KEY",
                         source="nnlab tag")
    runs = choose_runs(args, list(filters), runs_dir, what="nnlab tag", err=err)
    if not setting and not removing:  # nothing to change: what the runs have
        for run in runs:
            tags, _, problem = read_tags(run.path)
            out.write(f"{_place(run.path)}: {_tags_text(tags)}" + (f" (warning: {problem})" if problem else "")
                      + "\n")
        return runs
    damaged = [(run, problem) for run in runs for _, _, problem in [read_tags(run.path)] if problem]
    if damaged:  # checked for every run first: a tag command changes all its runs or none
        run, problem = damaged[0]
        raise NnlabError(f"{problem}; fix or delete it first (nothing was changed)", source=str(run.path))
    for run in runs:
        before, _, _ = read_tags(run.path)
        after = change_tags(run.path, setting, removing, dry_run=dry_run)
        missing = [k for k in removing if k not in before]
        verb = "would tag" if dry_run else "tagged"
        line = f"{verb} {_place(run.path)}: {_tags_text(after)}" if after != before else \
            f"{_place(run.path)}: unchanged, {_tags_text(after)}"
        out.write(line + (f" (it had no tag {', '.join(missing)})" if missing else "") + "\n")
    if dry_run:
        out.write("nothing was changed (--dry-run)\n")
    return runs


def _tags_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in tags.items()) if tags else "no tags"


def run_note(arg: str, text: str | None = None, *, append: bool = False, clear: bool = False,
             runs_dir: str | Path = "runs", dry_run: bool = False, out: TextIO | None = None) -> str | None:
    """``nnlab note RUN TEXT``: set the run's note (``--append``: add a line to it; ``--clear``: remove
    it); with no text, print it.

    Returns:
        The note afterwards (None when there is none).

    Raises:
        NnlabError: for an empty or too long note, TEXT with --clear, or a damaged tags.json (exit code 2).
    """
    from nnlab.store.tags import change_note, check_note, read_tags

    out = out or sys.stdout
    if clear and (text is not None or append):
        raise NnlabError("--clear removes the note: give no TEXT and no --append with it", source="nnlab note")
    if append and text is None:
        raise NnlabError("--append adds TEXT to the note: give the TEXT", source="nnlab note")
    checked = check_note(text) if text is not None else None
    folder = resolve_run(arg, runs_dir)
    if text is None and not clear:
        _, note, problem = read_tags(folder)
        if problem:
            out.write(f"warning: {problem}\n")
        out.write(f"{note}\n" if note else f"{_place(folder)} has no note\n")
        return note
    note = change_note(folder, checked, append=append, dry_run=dry_run)
    would = "would be " if dry_run else ""
    if note is None:
        out.write(f"note of {_place(folder)} {would}removed\n")
    else:
        out.write(f"note of {_place(folder)} {would}{'added to' if append else 'set'}:\n{note}\n")
    return note


def run_rm(args: list[str], *, filters: list[str] = (), runs_dir: str | Path = "runs", dry_run: bool = False,
           list_trash: bool = False, purge: bool = False, older_than: str | None = None,
           out: TextIO | None = None, err: TextIO | None = None) -> list:
    """``nnlab rm``: move runs to the trash; ``--list`` it; ``--purge [--older-than AGE]`` empty it.

    Args:
        args: RUN arguments (not with ``list_trash`` or ``purge``).
        filters, runs_dir: see :func:`choose_runs`; the trash is ``<runs_dir>/.trash`` (a run folder
            named by its path goes to the trash of the runs folder it is in).
        dry_run: say what would be moved or deleted, change nothing.
        list_trash: print what the trash holds.
        purge: delete what is in the trash for good (``older_than``: only what was removed
            longer ago, e.g. ``30d``).
        out, err: where the lines and notes go (default stdout, stderr).

    Returns:
        The moves, the folders in the trash, or the folders deleted.

    Raises:
        NnlabError: for options that do not go together, a run that cannot be removed (running),
            a folder that cannot be moved or deleted (exit code 2).
    """
    from nnlab.store import trash

    out = out or sys.stdout
    if list_trash and (args or filters or purge or older_than or dry_run):
        raise NnlabError("--list shows the trash: give it alone (with --runs-dir)", source="nnlab rm --list")
    if purge and (args or filters):
        raise NnlabError("--purge deletes what is in the trash already, not the runs named: remove them first "
                         "(nnlab rm RUN), then purge", source="nnlab rm --purge")
    if older_than is not None and not purge:
        raise NnlabError("--older-than chooses what --purge deletes: add --purge", source="--older-than")
    if list_trash:
        return _list_trash(trash.trashed(runs_dir, read_runs=True), runs_dir, out)
    if purge:
        age = trash.parse_age(older_than) if older_than is not None else None
        doomed = trash.plan_purge(runs_dir, age)
        if not doomed:
            held = trash.trashed(runs_dir) if age is not None else []
            what = f"holds nothing removed more than {older_than} ago" if held else "is empty"
            out.write(f"nothing to delete: the trash of {runs_dir} {what}\n")
            return []
        done = doomed if dry_run else trash.purge(doomed, runs_dir)
        for item in done:
            out.write(f"{'would delete' if dry_run else 'deleted'} {_place(item.path)} for good\n")
        out.write("nothing was changed (--dry-run)\n" if dry_run else f"deleted {_count(len(done))} for good\n")
        return done
    runs = choose_runs(list(args), list(filters), runs_dir, what="nnlab rm", err=err)
    if not runs:
        return []
    moves = trash.plan_removal(runs)
    done = moves if dry_run else trash.move_to_trash(moves)
    removed = {m.run.run_id for m in done}
    for move in done:
        line = f"{'would move' if dry_run else 'moved'} {_place(move.source)} to {_place(move.target)}"
        if move.with_sweep:
            line += f" (a trial of {move.with_sweep})"
        lost = " (it was lost: its process is gone)" if move.run.fields.get("status") == "lost" else ""
        out.write(line + lost + "\n")
        sweep = move.run.fields.get("sweep_id")
        if not move.with_sweep and isinstance(sweep, str) and sweep not in removed and \
                (move.source.parent / sweep).is_dir():
            out.write(f"  note: sweep {sweep} still lists it; nnlab sweep --resume would run it again\n")
    if dry_run:
        out.write("nothing was changed (--dry-run)\n")
    else:
        out.write(f"removed {_count(len(done))} to the trash: nnlab restore RUN takes one back, "
                  "nnlab rm --purge deletes them for good\n")
    return done


def _list_trash(items: list, runs_dir: str | Path, out: TextIO) -> list:
    """The trash as a table: run id, when removed, status, kind, name, the sweep it went with."""
    if not items:
        out.write(f"the trash of {runs_dir} is empty\n")
        return items
    now = datetime.now(timezone.utc)
    rows = []
    for item in items:
        fields = item.run.fields if item.run is not None else {}
        removed = "-" if item.removed is None else \
            f"{item.removed.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC ({_age(now - item.removed)} ago)"
        rows.append({"run_id": item.run_id, "removed": removed, "status": fields.get("status"),
                     "kind": fields.get("kind"), "name": fields.get("name"), "with sweep": item.with_sweep,
                     "in the trash as": item.path.name if item.path.name != item.run_id else None})
    columns = ["run_id", "removed", "status", "kind", "name"]
    columns += [c for c in ("with sweep", "in the trash as") if any(r[c] for r in rows)]
    render_table(rows, columns, title=f"the trash of {runs_dir}: {_count(len(items))}", out=out)
    return items


def run_restore(args: list[str], *, runs_dir: str | Path = "runs", dry_run: bool = False,
                out: TextIO | None = None) -> list:
    """``nnlab restore RUN...``: move runs back from the trash to ``runs_dir`` (a sweep with its trials).

    Args:
        args: run ids (as they were), unique prefixes, ``last``, or folders in the trash.
        runs_dir: the runs root whose trash they are in.
        dry_run: say what would be restored, change nothing.
        out: where the lines go (default stdout).

    Returns:
        The folders restored (or that would be).

    Raises:
        NnlabError: for a RUN not in the trash, or a folder of its name in the runs root again (exit code 2).
    """
    from nnlab.store import trash

    out = out or sys.stdout
    if not args:
        raise NnlabError("name the runs to restore (their run ids; nnlab rm --list shows the trash)",
                         source="nnlab restore")
    chosen = [trash.find_trashed(arg, runs_dir) for arg in args]
    items = trash.plan_restore(chosen, runs_dir)
    done = items if dry_run else trash.restore(items)
    for item in done:
        out.write(f"{'would restore' if dry_run else 'restored'} {_place(item.origin)}"
                  + (f" (a trial of {item.with_sweep})" if item.with_sweep else "") + "\n")
    if dry_run:
        out.write("nothing was changed (--dry-run)\n")
    return done


def _age(delta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _count(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


def _place(path: Path) -> str:
    """A folder as the lines name it: relative to the working directory when inside it."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)

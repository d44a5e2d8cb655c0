"""Which runs ``nnlab compare`` lists and the values of its table, without rendering them: what
``nnlab.runs()`` turns into a DataFrame, so that its numbers are those ``compare --format json`` prints.

The rules are :mod:`nnlab.views.compare`'s and :mod:`nnlab.views.groups`' (collect, filter, the last N,
sort, the columns, the groups and their tests); this module only runs them in their order and keeps
what they give. Nothing heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nnlab.errors import NnlabError


@dataclass
class Listing:
    """The runs ``nnlab compare`` lists, and the rows of its table.

    Args:
        runs: the runs chosen (filtered, the last N, sorted), in order.
        columns: the table's columns.
        rows: one dict per run, each column's raw value (what ``--format json`` prints).
        warnings: one line per problem with a run folder.
        notes: filters that matched nothing, with the closest value.
    """

    runs: list[Any]
    columns: list[str]
    rows: list[dict[str, Any]]
    warnings: list[str]
    notes: list[str]


@dataclass
class Grouping:
    """The groups ``nnlab compare --group-by`` shows, as its ``--format json`` gives them.

    Args:
        table: the :class:`nnlab.views.groups.GroupTable` (groups, metrics, comparisons, notes).
        items: one JSON-ready dict per group (:func:`nnlab.views.groups.group_json`).
        runs: the runs chosen before grouping.
        warnings: one line per problem with a run folder.
    """

    table: Any
    items: list[dict[str, Any]]
    runs: list[Any]
    warnings: list[str]


def _joined(columns: str | Sequence[str] | None) -> str | None:
    """``a,b`` from a list of keys (the form the command line's options take)."""
    if columns is None or isinstance(columns, str):
        return columns
    return ",".join(str(c) for c in columns)


def _check_last(last: int | None) -> None:
    if last is not None and last < 1:
        raise NnlabError("must be at least 1", source="--last")


def list_runs(paths: Sequence[str | Path], *, runs_dir: str | Path = "runs", filters: Sequence[str] = (),
              last: int | None = None, sort: str | None = None, ascending: bool | None = None,
              columns: str | Sequence[str] | None = None) -> Listing:
    """The runs ``nnlab compare PATHS`` shows, and their rows.

    Args:
        paths: runs roots, run folders, ids or prefixes (none: ``runs_dir``).
        runs_dir: the default runs root.
        filters: ``KEY<OP>VALUE`` conditions, all of which must hold.
        last: only the N runs started last.
        sort, ascending: order by a metric or config key (its natural direction unless forced).
        columns: the columns (fields or dotted config keys: ``a,b`` or a list), ``all``, or None for
            compare's default.

    Returns:
        The listing.

    Raises:
        NnlabError: for an unknown key, filter or path.
    """
    from nnlab.store.reading import canonical_key, collect
    from nnlab.views.compare import Filter, field_keys, parse_columns, select, unmatched_values, values

    _check_last(last)
    parsed = [Filter.parse(f) for f in filters]
    found = collect([str(p) for p in paths], runs_dir)
    try:
        chosen = select(found.runs, filters=parsed, last=last, sort=sort, ascending=ascending)
        cols = parse_columns(_joined(columns), chosen)
        rows = values(chosen, cols)
        warnings = [f"{r.run_id}: {r.warning}" for r in chosen if r.warning]
        fields = field_keys(found.runs)
        if any(c not in fields for c in cols + [f.key for f in parsed] + ([canonical_key(sort)] if sort else [])):
            warnings += [f"{r.run_id}: no readable config.yaml, so its config keys are blank"
                         for r in chosen if r.readable and not r.config()]
        notes = unmatched_values(found.runs, parsed) if not chosen else []
    finally:
        found.save()
    return Listing(chosen, cols, rows, warnings, notes)


def group_runs(paths: Sequence[str | Path], *, group_by: str | Sequence[str], runs_dir: str | Path = "runs",
               filters: Sequence[str] = (), last: int | None = None, sort: str | None = None,
               ascending: bool | None = None, columns: str | Sequence[str] | None = None,
               versus: Any = None, metric: str | None = None) -> Grouping:
    """``nnlab compare --group-by KEYS [--versus VALUE]``'s groups.

    Args:
        paths, runs_dir, filters, last: which runs, as for :func:`list_runs`.
        group_by: the keys (``a,b`` or a list).
        sort, ascending: order the groups by the mean of this key.
        columns: the metrics described (default each run's main test metric).
        versus: the reference group's value; metric: what is compared (default the main test metric).

    Returns:
        The groups.

    Raises:
        NnlabError: for an unknown key or metric, or a ``versus`` no group has.
    """
    from nnlab.store.reading import collect
    from nnlab.views.compare import Filter, select
    from nnlab.views.groups import group_json, group_table, parse_group_keys

    _check_last(last)
    keys = parse_group_keys(_joined(group_by) or "")
    parsed = [Filter.parse(f) for f in filters]
    found = collect([str(p) for p in paths], runs_dir)
    try:
        chosen = select(found.runs, filters=parsed, last=last)
        table = group_table(chosen, keys=keys, filters=parsed, columns=_joined(columns), sort=sort,
                            ascending=ascending, versus=None if versus is None else str(versus), metric=metric)
        items = group_json(table.groups, keys, table.metrics, table.comparisons)
    finally:
        found.save()
    return Grouping(table, items, chosen, [f"{r.run_id}: {r.warning}" for r in chosen if r.warning])

"""``nnlab compare --rows KEY --cols KEY``: one metric's group means laid out as a grid.

Each cell is the group of runs with that row value and that column value (and kind), as
``--group-by ROWS,COLS`` forms it (:mod:`nnlab.views.groups`), shown as ``mean ± std (n)``;
the best cell of each column is marked.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any, TextIO

from nnlab.errors import NnlabError
from nnlab.store.reading import Run, canonical_key
from nnlab.views.compare import as_number, check_keys, default_direction, show_value, sort_value
from nnlab.views.groups import (Group, check_group_keys, group_metrics, group_notes, group_runs, render_table,
                                short_keys, split_by_kind, write_notes)
from nnlab.views.style import number


@dataclass
class Pivot:
    """The grid: row and column values in order, and the group of each cell.

    Args:
        rows: the row keys' values (with the kind, when kinds are shown), in order.
        cols: the column key's values, in order.
        cells: ``(row, col) -> Group``; a cell no run has is absent.
        metric: the metric shown.
        direction: ``max``, ``min`` or None (then no cell is marked best).
        best: the (row, col) cells with the best mean of their column.
    """

    rows: list[tuple]
    cols: list[Any]
    cells: dict[tuple, Group]
    metric: str
    direction: str | None
    best: set[tuple]


def build_pivot(groups: list[Group], metric: str, direction: str | None, with_kind: bool) -> Pivot:
    """The grid of groups formed by ``(row key, col key)``, and the best mean of each column.

    Args:
        groups: groups of two key values, ``(row value, col value)``.
        metric: the metric described in each group.
        direction: which way is better for it.
        with_kind: whether rows are told apart by kind as well.

    Returns:
        The pivot.
    """
    def row_of(g: Group) -> tuple:
        return (g.values[0], g.kind) if with_kind else (g.values[0],)

    rows = sorted({_ident(row_of(g)): row_of(g) for g in groups}.values(), key=lambda r: [sort_value(v) for v in r])
    cols = sorted({_ident((g.values[1],)): g.values[1] for g in groups}.values(), key=sort_value)
    cells = {(_ident(row_of(g)), _ident((g.values[1],))): g for g in groups}
    best = set()
    if direction in ("max", "min"):
        for col in cols:
            means = {r: cells[(_ident(r), _ident((col,)))].stats[metric].mean for r in rows
                     if (_ident(r), _ident((col,))) in cells}
            means = {r: m for r, m in means.items() if m is not None}
            if means:
                top = (max if direction == "max" else min)(means.values())
                best |= {(_ident(r), _ident((col,))) for r, m in means.items() if m == top}
    return Pivot(rows, cols, cells, metric, direction, best)


def _ident(values: tuple) -> tuple:
    """What tells key values apart: numbers by value (16 is 16.0), the rest by their text."""
    return tuple(sort_value(v) for v in values)


def cell_text(group: Group | None, metric: str) -> str:
    """``0.9719 ± 0.0023 (5)``; ``0.9700 ± - (1)`` without a spread; ``-`` for no runs."""
    if group is None:
        return "-"
    d = group.stats[metric]
    if d.mean is None:
        return f"- ({d.n})"
    return f"{number(d.mean)} ± {number(d.std)} ({d.n})"


def pivot_cells(pivot: Pivot, row_key: str, col_key: str, with_kind: bool, marker: str = ""
                ) -> tuple[list[str], list[list[str]], list[bool], set[tuple[int, int]], int]:
    """The text of the grid: headers, rows, right-aligned columns, the positions of the best
    cells and how many columns lead (the row key, and kind)."""
    row_short, col_short = short_keys([row_key, col_key])
    headers = [row_short] + (["kind"] if with_kind else []) + [f"{col_short}={show_value(c)}" for c in pivot.cols]
    lead = 2 if with_kind else 1
    rows, bold = [], set()
    for r, row in enumerate(pivot.rows):
        line = [show_value(row[0])] + ([row[1] or "-"] if with_kind else [])
        for c, col in enumerate(pivot.cols):
            where = (_ident(row), _ident((col,)))
            text = cell_text(pivot.cells.get(where), pivot.metric)
            if where in pivot.best:
                bold.add((r, lead + c))
                text += marker
            line.append(text)
        rows.append(line)
    numeric = all(as_number(r[0]) is not None and not isinstance(r[0], str) for r in pivot.rows)
    right = [numeric] + ([False] if with_kind else []) + [True] * len(pivot.cols)
    return headers, rows, right, bold, lead


def pivot_json(pivot: Pivot, row_key: str, col_key: str) -> list[dict[str, Any]]:
    """One object per cell: the row and column values, kind, n, runs, the metric's figures
    (mean, std, ci_low, ci_high, min, max, values) and whether it is its column's best."""
    items = []
    for row in pivot.rows:
        for col in pivot.cols:
            where = (_ident(row), _ident((col,)))
            group = pivot.cells.get(where)
            if group is None:
                continue
            items.append({row_key: row[0], col_key: col, "kind": group.kind, "n": len(group.runs),
                          "runs": [r.run_id for r in group.runs], pivot.metric: group.stats[pivot.metric].as_dict(),
                          "best": where in pivot.best})
    return items


def pivot_csv(pivot: Pivot, row_key: str, col_key: str, out: TextIO) -> None:
    """CSV, one row per cell (long form, as pandas' ``pivot`` takes it): raw figures."""
    parts = ("mean", "std", "ci_low", "ci_high", "min", "max", "missing")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([row_key, col_key, "kind", "n", *(f"{pivot.metric}_{p}" for p in parts), "best"])
    for item in pivot_json(pivot, row_key, col_key):
        d = item[pivot.metric]
        writer.writerow([_plain(item[row_key]), _plain(item[col_key]), item["kind"], item["n"],
                         *("" if d[p] is None else d[p] for p in parts), "true" if item["best"] else "false"])


def _plain(value: Any) -> Any:
    return show_value(value) if isinstance(value, bool) else value


def check_pivot_options(*, rows: str | None, cols: str | None, group_by: str | None, versus: str | None,
                        columns: str | None, sort: str | None) -> None:
    """Refuse options a pivot cannot take, before any run is read.

    Raises:
        NnlabError: naming the option (exit code 2).
    """
    if (rows is None) != (cols is None):
        given, missing = ("--rows", "--cols") if rows is not None else ("--cols", "--rows")
        raise NnlabError(f"a pivot needs both --rows KEY and --cols KEY ({missing} is missing); for groups by "
                         "one key, use --group-by KEY", source=given)
    for option, value, why in (("--group-by", group_by, "--rows and --cols are the grouping"),
                               ("--versus", versus, "tests need --group-by KEY --versus VALUE"),
                               ("--columns", columns, "a pivot shows one metric: name it with --metric"),
                               ("--sort", sort, "rows and columns are in the order of their values")):
        if value is not None:
            raise NnlabError(f"cannot be used with --rows/--cols: {why}", source=option)
    for option, value in (("--rows", rows), ("--cols", cols)):
        if not value.strip() or "," in value:
            raise NnlabError("give one key (a dotted config key or a field such as dataset, name or kind)",
                             source=option)
    if canonical_key(rows) == canonical_key(cols):
        raise NnlabError("--rows and --cols name the same key: give two different keys", source="--cols")


def run_pivot(runs: list[Run], *, row_key: str, col_key: str, metric: str | None, status_filtered: bool,
              filtered: bool, fmt: str, out: TextIO, err: TextIO) -> tuple[list[Group], list[str]]:
    """``nnlab compare --rows KEY --cols KEY [--metric M]``: the grid, in the format asked for.

    Args:
        runs: the runs listed (after --filter and --last), in order.
        row_key, col_key: the keys whose values make the rows and the columns.
        metric: the metric in the cells (default the runs' main test metric).
        status_filtered: whether --filter chose the statuses (else only completed runs count).
        filtered: whether any --filter was given (for the message when nothing is left).
        fmt: table, markdown, latex, csv or json.
        out, err: where the grid and the notes go.

    Returns:
        The groups of the cells, and the notes written.

    Raises:
        NnlabError: for an unknown key or metric.
    """
    row_key, col_key = canonical_key(row_key), canonical_key(col_key)
    check_group_keys(runs, [row_key], "--rows")
    check_group_keys(runs, [col_key], "--cols")
    if metric is not None:
        metric = canonical_key(metric)
        check_keys(runs, [metric], "--metric")
    else:
        found = group_metrics(runs, None)
        if not found:
            raise NnlabError("these runs have no test or validation metric to show; name one with --metric",
                             source="--rows/--cols")
        metric = found[0]
    groups, left_out = group_runs(runs, [row_key, col_key], [metric], status_filtered=status_filtered)
    with_kind = split_by_kind(groups, [row_key, col_key])
    direction = default_direction(metric, [r for g in groups for r in g.runs])
    pivot = build_pivot(groups, metric, direction, with_kind)
    notes = left_out + (group_notes(groups, [row_key, col_key], [metric]) if groups else [])
    if groups and direction not in ("max", "min"):
        notes.append(f"no cell marked best: {metric} has no known direction")
    if fmt == "json":
        from nnlab.store.folder import to_json

        out.write(to_json(pivot_json(pivot, row_key, col_key)))
    elif fmt == "csv":
        pivot_csv(pivot, row_key, col_key, out)
    elif not groups:
        err.write("no runs to lay out" + (" (none match the filters)" if filtered else "") + "\n")
        write_notes([f"note: {n}" for n in left_out], "csv", out, err)
        return groups, left_out
    else:
        # Bold is lost where the terminal shows no styles (a pipe, a file): a star marks the best too.
        marker = " *" if fmt == "table" else ""
        headers, rows, right, bold, lead = pivot_cells(pivot, row_key, col_key, with_kind, marker)
        row_short, col_short = short_keys([row_key, col_key])
        better = {"max": "highest", "min": "lowest"}.get(direction or "")
        best = f"; {'* and bold' if marker else 'bold'}: the {better} mean of each column" if better else ""
        title = (f"{metric}: mean ± std (n) by {row_short} (rows) and {col_short} (columns){best}; "
                 f"{sum(len(g.runs) for g in groups)} runs")
        render_table(fmt, title, headers, rows, right, [[i] for i in range(lead, len(headers))], lead, out, bold)
    write_notes([f"note: {n}" for n in notes], fmt, out, err)
    return groups, notes

"""How nnlab writes figures, durations, config values and statuses: one rule for each.

Every view (the progress and summaries of :mod:`nnlab.views.console`, ``nnlab compare``,
``nnlab show``, ``nnlab predict``, the figures' labels) prints a metric with
:func:`number` and a status in the colour :func:`status_style` gives it, so that the
same value reads the same everywhere. A leaf: it imports nothing from nnlab but the
run-folder format (:class:`~nnlab.store.format.Status`), and nothing heavy.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable, Sequence

from nnlab.store.format import Status

#: The colour of every status (rich style names); every :class:`Status` has one.
STATUS_STYLES: dict[Status, str] = {
    Status.COMPLETED: "green",
    Status.RUNNING: "yellow",
    Status.INTERRUPTED: "yellow",
    Status.INCOMPLETE: "yellow",
    Status.PENDING: "yellow",
    Status.NOT_RUN: "yellow",
    Status.COMPLETED_WITH_FAILURES: "yellow",
    Status.FAILED: "red",
    Status.DIVERGED: "red",
    Status.PRUNED: "cyan",
    Status.UNREADABLE: "red",
    Status.LOST: "red",
    Status.UNKNOWN: "dim",
}


def status_style(status: Any) -> str:
    """The colour a status is printed in.

    Args:
        status: a :class:`Status` or the text a file holds (anything else counts as unknown).

    Returns:
        A rich style name.
    """
    return STATUS_STYLES[Status.of(status)]


def number(value: Any) -> str:
    """A metric as nnlab prints it: four decimals in the usual range, significant digits outside it.

    Args:
        value: a number (floats and NumPy scalars alike); None, text and whole numbers are
            let through as they read (``-`` for None).

    Returns:
        ``0.9512``, ``2.4000``, ``1.234e-05``, ``3.2e+07``, ``nan``; ``12`` for a whole number.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}"
    return f"{value:.4g}"


def duration(seconds: float) -> str:
    """``12.3s``, ``4m05s``, ``2h07m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def timestamp(value: Any) -> str:
    """An ISO time as a table shows it: ``2025-06-01 10:00:00`` (the offset left out)."""
    return str(value).replace("T", " ")[:19]


def compact(value: Any) -> str:
    """A config value in a short readable form: ``[Dense(units=16, activation=relu), Dense(units=1)]``."""
    if isinstance(value, float):
        return str(value) if len(str(value)) <= 8 else f"{value:.4g}"
    if isinstance(value, dict) and len(value) == 1:
        (name, kwargs), = value.items()
        if isinstance(name, str) and name[:1].isupper() and isinstance(kwargs, dict):
            return f"{name}({', '.join(f'{k}={compact(v)}' for k, v in kwargs.items())})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    return str(value)


def param_columns(outcomes: Iterable[Any]) -> tuple[list[str], Callable[[dict[str, Any]], list[str]]]:
    """How a table shows a sweep's trial parameters: one column per key when every trial
    sets every key (a grid, random draws), else one ``changes`` column (variants, which each
    change different keys).

    Args:
        outcomes: the trials, each with ``.params`` (``{dotted key: value}``).

    Returns:
        ``(column headers, params -> cells)``.
    """
    outcomes = list(outcomes)
    keys = list(dict.fromkeys(k for o in outcomes for k in o.params))
    if all(set(o.params) == set(keys) for o in outcomes):
        return keys, lambda params: [compact(params[k]) for k in keys]
    return ["changes"], lambda params: ["; ".join(f"{k}={compact(v)}" for k, v in params.items())
                                        or "(none: the config as it is)"]


# -- fitting tables to a terminal ------------------------------------------------------------------

def text_width(texts: Iterable[str]) -> int:
    """The terminal cells the widest of some texts takes (the widest line of a multi-line one).

    Args:
        texts: cell texts and a header.

    Returns:
        The width; 0 for no texts.
    """
    from rich.cells import cell_len

    return max((cell_len(line) for text in texts for line in str(text).split("\n")), default=0)


def table_width(widths: Iterable[int], gap: int, edges: int = 0) -> int:
    """The cells a table of columns this wide takes: ``sum(width + gap) + edges``.

    Args:
        widths: each column's content width.
        gap: what each column adds to its content (padding and its divider): 3 for rich's
            boxed tables and for ``box.SIMPLE_HEAD`` with padding 1, 2 for a two-space join.
        edges: what the table adds once: 1 for a boxed table (its left border), ``-gap`` for
            a table without edges (n columns have n - 1 gaps).

    Returns:
        The width in terminal cells.
    """
    return sum(w + gap for w in widths) + edges


def fit_columns(widths: Sequence[int], space: int, *, gap: int, edges: int = 0,
                order: Iterable[int] | None = None) -> list[int]:
    """Which columns of a table fit whole in ``space`` cells, the most wanted first.

    Columns are taken in ``order``; each is kept when it still fits beside those kept so
    far and skipped otherwise (a narrower one further down may still fit). The first is
    always kept, so a table is never empty.

    Args:
        widths: each column's content width (its widest cell or header).
        space: the terminal's width.
        gap, edges: as :func:`table_width`.
        order: column indices by priority (default: left to right).

    Returns:
        The indices kept, in left-to-right order.
    """
    order = list(range(len(widths))) if order is None else list(order)
    kept: list[int] = []
    for i in order:
        if not kept or table_width([widths[k] for k in kept] + [widths[i]], gap, edges) <= space:
            kept.append(i)
    return sorted(kept)


def pack_columns(groups: Sequence[Sequence[int]], widths: Sequence[int], space: int, *, gap: int,
                 edges: int = 0, fixed: Sequence[int] = ()) -> list[list[int]]:
    """Split a table that is too wide into several, each fitting in ``space`` cells.

    Every table repeats the ``fixed`` columns (e.g. the epoch). A group of columns (a metric
    and its validation figure) stays in one table when it fits in one; otherwise its columns
    are spread one by one. A column too wide even alone gets a table of its own.

    Args:
        groups: column indices in the order shown, grouped.
        widths: each column's content width.
        space: the terminal's width.
        gap, edges: as :func:`table_width`.
        fixed: the columns every table starts with.

    Returns:
        The columns of each table (the fixed ones not included), in order; one list when
        everything fits.
    """
    base = [widths[i] for i in fixed]

    def fits(columns: list[int]) -> bool:
        return table_width(base + [widths[i] for i in columns], gap, edges) <= space

    tables: list[list[int]] = [[]]
    for group in groups:
        pieces = [list(group)] if fits(list(group)) else [[i] for i in group]
        for piece in pieces:
            if tables[-1] and not fits(tables[-1] + piece):
                tables.append([])
            tables[-1].extend(piece)
    return [t for t in tables if t] or [[]]


def params_label(params: dict[str, Any], keys: Iterable[str] = ()) -> str:
    """A sweep trial's parameters as a short label: ``learning_rate=0.01, units=64``.

    Each dotted key is cut to its shortest ending that tells it apart from the other keys
    (``model.layers.0.Dense.units`` reads ``units``, unless another key also ends so).

    Args:
        params: ``{dotted key: value}``.
        keys: every key the labels drawn together use (default: those of ``params``), so
            that the same key reads the same in each label.

    Returns:
        The label; ``(none)`` for no parameters.
    """
    every = list(dict.fromkeys([*keys, *params]))
    short = {}
    for key in every:
        parts = str(key).split(".")
        for n in range(1, len(parts) + 1):
            ending = ".".join(parts[-n:])
            if not any(other != key and (other == ending or str(other).endswith("." + ending)) for other in every):
                break
        short[key] = ending
    return ", ".join(f"{short[k]}={compact(v)}" for k, v in params.items()) or "(none)"


def shrink_widths(widths: Sequence[int], narrowest: Sequence[int], space: int, *, gap: int,
                  edges: int = 0) -> list[int]:
    """Narrow the widest columns, never below their ``narrowest``, until the table fits ``space``.

    Args:
        widths: each column's full width.
        narrowest: how narrow each may get (its full width for one that must not wrap).
        space: the terminal's width.
        gap, edges: as :func:`table_width`.

    Returns:
        The widths; still too wide for ``space`` when the narrowest are.
    """
    widths = list(widths)
    excess = table_width(widths, gap, edges) - space
    while excess > 0:
        slack = [i for i, w in enumerate(widths) if w > narrowest[i]]
        if not slack:
            break
        widest = max(slack, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths

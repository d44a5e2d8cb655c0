"""How nnlab writes figures, durations, config values and statuses: one rule for each.

Every view (the progress and summaries of :mod:`nnlab.views.console`, ``nnlab compare``,
``nnlab show``, ``nnlab predict``, the figures' labels) prints a metric with
:func:`number` and a status in the colour :func:`status_style` gives it, so that the
same value reads the same everywhere. A leaf: it imports nothing from nnlab but the
run-folder format (:class:`~nnlab.runs.format.Status`), and nothing heavy.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable

from nnlab.runs.format import Status

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
    Status.UNREADABLE: "red",
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

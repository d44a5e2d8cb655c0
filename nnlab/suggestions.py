"""'Did you mean' suggestions for names a user typed."""

from __future__ import annotations

import difflib
import re
from typing import Any


def unknown_name_message(kind: str, name: Any, known, of: str = "") -> str:
    """"unknown KIND 'foo' [OF]; did you mean 'bar'? (accepted: ...)" for any list of names."""
    known = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    if not close:
        close = [k for k in known if k.lower() == str(name).lower()]
    hint = f"; did you mean '{close[0]}'?" if close else ""
    listing = ", ".join(known) if len(known) <= 30 else ", ".join(known[:30]) + ", ..."
    of = f" {of}" if of else ""
    return f"unknown {kind} '{name}'{of}{hint} (accepted: {listing})"


def closest_name(name: Any, known) -> str | None:
    """The known name ``name`` most likely misspells, or None.

    Besides whole names, the parts of a name (split at ``_``, ``-``, ``.`` and ``/``) are
    compared too, so that ``bostn`` finds ``boston_housing``.

    Args:
        name: what the user typed.
        known: the names that exist.

    Returns:
        The closest name, or None when none is close (difflib ratio under 0.6).
    """
    text = str(name)
    best, score = None, 0.0
    for candidate in sorted({str(k) for k in known}):
        if candidate.lower() == text.lower():
            return candidate
        pieces = [candidate, *(p for p in re.split(r"[_\-./]", candidate) if p)]
        ratio = max(difflib.SequenceMatcher(None, text.lower(), p.lower()).ratio() for p in pieces)
        if ratio > score:
            best, score = candidate, ratio
    return best if score >= 0.6 else None


def no_such_value_message(key: str, value: Any, known) -> str:
    """"no run has KEY=VALUE; did you mean X?" (or the values there are) for a filter that matches nothing.

    Args:
        key: the field or config key filtered on.
        value: the value asked for.
        known: the values the runs have for that key.

    Returns:
        One line, without a trailing newline.
    """
    close = closest_name(value, known)
    if close is not None:
        return f"no run has {key}={value}; did you mean {close}?"
    values = sorted({str(k) for k in known})
    listing = ", ".join(values) if len(values) <= 10 else ", ".join(values[:10]) + ", ..."
    return f"no run has {key}={value} (the runs have {listing})"

"""'Did you mean' suggestions for names a user typed."""

from __future__ import annotations

import difflib
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

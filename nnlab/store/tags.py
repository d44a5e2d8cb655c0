"""A run's tags and note: the user's own words about a run, kept in its folder's ``tags.json``.

``nnlab tag RUN lesson=4`` and ``nnlab note RUN "text"`` write
:data:`nnlab.store.format.TAGS` beside metrics.json, atomically; metrics.json, which the
run's own process writes, is never touched, so a running run can be tagged too. The file
holds ``{"tags": {KEY: "VALUE", ...}, "note": "text", "updated": ISO time}``.

- A key is a plain name: letters, digits, ``_``, ``-`` and ``.``, starting with a letter,
  a digit or ``_``, at most :data:`MAX_KEY` characters (so ``--filter tag.KEY=...`` and
  ``--group-by tag.KEY`` can always name it).
- A value is text, kept exactly as given (``007`` stays ``007``); readers compare values
  that read as numbers as numbers, so ``--filter 'tag.lesson>3'`` works.
- The note is one free text (like MLflow's run description): set, replaced, appended to
  or cleared as a whole.

Readers see the tags as the fields ``tags`` (``{KEY: VALUE}``), ``tag.KEY`` (one per tag)
and ``note`` (:func:`tag_fields`). A damaged file never stops a listing: its entries that
can be read are kept and a warning says what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nnlab.errors import NnlabError
from nnlab.store.format import TAGS

#: The longest tag key, tag value and note accepted.
MAX_KEY, MAX_VALUE, MAX_NOTE = 64, 200, 10_000
#: The prefix of a tag's field: ``tag.lesson``.
FIELD_PREFIX = "tag."
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
#: Control characters other than newline and tab (a note may have lines; a value may not).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def check_key(key: str, source: str = "nnlab tag") -> str:
    """A tag key as given, when it is a plain name.

    Raises:
        NnlabError: saying what a key may hold (exit code 2).
    """
    if not _KEY.match(key) or len(key) > MAX_KEY or key.endswith(".") or ".." in key:
        raise NnlabError(f"'{key}' is not a tag key: a key is a plain name of letters, digits, '_', '-' and '.' "
                         f"(at most {MAX_KEY} characters), e.g. lesson or student_name", source=source)
    return key


def check_value(key: str, value: str, source: str = "nnlab tag") -> str:
    """A tag value as given, when it is one line of text of at most :data:`MAX_VALUE` characters.

    Raises:
        NnlabError: for an empty, multi-line or too long value (exit code 2).
    """
    if not value.strip():
        raise NnlabError(f"tag {key} has no value: give KEY=VALUE, or --remove {key} to take the tag away",
                         source=source)
    if "\n" in value or "\r" in value or "\t" in value or _CONTROL.search(value):
        raise NnlabError(f"the value of tag {key} is one line of text, without tabs or control characters",
                         source=source)
    if len(value) > MAX_VALUE:
        raise NnlabError(f"the value of tag {key} is {len(value)} characters long; at most {MAX_VALUE} "
                         "(a longer text is a note: nnlab note RUN TEXT)", source=source)
    return value


def parse_assignment(text: str, source: str = "nnlab tag") -> tuple[str, str]:
    """``KEY=VALUE`` as ``(key, value)``, both checked (the value is what follows the first ``=``).

    Raises:
        NnlabError: for a bad key or value (exit code 2).
    """
    key, sep, value = text.partition("=")
    if not sep:
        raise NnlabError(f"expected KEY=VALUE, e.g. lesson=4, not '{text}'", source=source)
    key = check_key(key.strip(), source)
    return key, check_value(key, value.strip(), source)


def check_note(text: str, source: str = "nnlab note") -> str:
    """A note's text, trailing blanks dropped.

    Raises:
        NnlabError: for an empty or too long note, or control characters in it (exit code 2).
    """
    text = text.rstrip()
    if not text.strip():
        raise NnlabError("the note is empty: give its text, or --clear to remove the note", source=source)
    if _CONTROL.search(text.replace("\r\n", "\n")):
        raise NnlabError("a note is text: it may hold line breaks and tabs, but no other control characters",
                         source=source)
    if len(text) > MAX_NOTE:
        raise NnlabError(f"the note is {len(text):,} characters long; at most {MAX_NOTE:,}", source=source)
    return text


def read_tags(folder: Path) -> tuple[dict[str, str], str | None, str | None]:
    """What a run folder's tags.json holds, as far as it can be read.

    Args:
        folder: the run folder.

    Returns:
        ``(tags, note, problem)``: the well-formed tags (values as text; numbers and booleans
        written by hand become text too), the note or None, and one line saying what is wrong
        with the file (None when it is fine or absent).
    """
    from nnlab.store.folder import from_json

    path = Path(folder) / TAGS
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None, None
    except (OSError, UnicodeDecodeError) as err:
        return {}, None, f"cannot read {TAGS}: {getattr(err, 'strerror', None) or err}"
    try:
        data = from_json(text)
    except ValueError as err:
        return {}, None, f"{TAGS} is not valid JSON (damaged?): {err}; its tags and note are left out"
    if not isinstance(data, dict):
        return {}, None, f"{TAGS} holds a {type(data).__name__}, not an object; its tags and note are left out"
    tags: dict[str, str] = {}
    skipped = []
    raw = data.get("tags", {})
    if not isinstance(raw, dict):
        skipped.append("tags")
        raw = {}
    for key, value in raw.items():
        if isinstance(key, str) and _KEY.match(key) and isinstance(value, (str, int, float, bool)):
            tags[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        else:
            skipped.append(f"tag {key!r}")
    note = data.get("note")
    if note is not None and not isinstance(note, str):
        skipped.append("note")
        note = None
    problem = f"{TAGS}: left out what is not well formed: {', '.join(skipped)}" if skipped else None
    return tags, note or None, problem


def tag_fields(tags: dict[str, str], note: str | None) -> dict[str, Any]:
    """The fields a reader adds for a run's tags: ``tags``, ``tag.KEY`` for each, and ``note``.

    Returns:
        The fields; {} for a run with neither tags nor a note.
    """
    fields: dict[str, Any] = {}
    if tags:
        fields["tags"] = dict(tags)
        fields.update({FIELD_PREFIX + key: value for key, value in tags.items()})
    if note:
        fields["note"] = note
    return fields


def _read_for_change(folder: Path) -> tuple[dict[str, str], str | None]:
    """The tags and note about to be changed; a damaged file is refused rather than overwritten."""
    tags, note, problem = read_tags(folder)
    if problem is not None:
        raise NnlabError(f"{problem}; fix or delete {TAGS} before changing its tags (nothing was changed)",
                         source=str(folder))
    return tags, note


def _write(folder: Path, tags: dict[str, str], note: str | None) -> None:
    """Write tags.json atomically, or remove it when nothing is left in it."""
    from nnlab.store.folder import atomic_write, to_json, utc_now

    path = Path(folder) / TAGS
    try:
        if not tags and not note:
            path.unlink(missing_ok=True)
            return
        data: dict[str, Any] = {"tags": tags}
        if note:
            data["note"] = note
        data["updated"] = utc_now().isoformat(timespec="seconds")
        atomic_write(path, to_json(data))
    except OSError as err:
        raise NnlabError(f"cannot write {TAGS}: {err.strerror or err}", source=str(folder)) from None


def change_tags(folder: Path, set_: dict[str, str], remove: list[str], *, dry_run: bool = False) -> dict[str, str]:
    """Set and remove tags of one run folder.

    Args:
        folder: the run folder.
        set_: ``{key: value}`` to set (checked already: :func:`parse_assignment`).
        remove: keys to take away (a key the run does not have is let be).
        dry_run: compute the result without writing it.

    Returns:
        The run's tags afterwards.

    Raises:
        NnlabError: when its tags.json is damaged, or cannot be written.
    """
    tags, note = _read_for_change(folder)
    changed = {key: value for key, value in tags.items() if key not in remove}
    changed.update(set_)
    if changed != tags and not dry_run:
        _write(folder, changed, note)
    return changed


def change_note(folder: Path, text: str | None, *, append: bool = False, dry_run: bool = False) -> str | None:
    """Set, extend or clear a run's note.

    Args:
        folder: the run folder.
        text: the new text (checked already: :func:`check_note`), or None to clear the note.
        append: add ``text`` as a new line after the note there is (the note itself when there is none).
        dry_run: compute the result without writing it.

    Returns:
        The note afterwards (None when cleared).

    Raises:
        NnlabError: when its tags.json is damaged, or cannot be written; a note that
            grows past :data:`MAX_NOTE` characters.
    """
    tags, note = _read_for_change(folder)
    new = text if not (append and note and text) else check_note(f"{note}\n{text}")
    if new != note and not dry_run:
        _write(folder, tags, new)
    return new

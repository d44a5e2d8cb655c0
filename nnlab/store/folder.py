"""The run folder: the unit of record of one experiment.

``runs/<UTC timestamp>_<name>[_kind]/`` holds everything needed to understand a run;
what its files are called and hold is :mod:`nnlab.store.format`'s. Files are written
atomically (a temporary file in the same folder, then a rename), so a reader never sees
half a JSON file under its final name.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from nnlab.errors import NnlabError

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    The file gets the mode a new file gets under the process's umask (a temporary
    file is made 0600, which would keep a shared run from its readers).
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it: it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The deepest nesting a file nnlab reads may have: nnlab writes a few levels; deeper is damage
#: (Python's JSON reader, and every reader after it, would run out of stack).
MAX_NESTING = 64


class TooDeep(ValueError):
    """Data nested deeper than :data:`MAX_NESTING` levels."""

    def __init__(self) -> None:
        super().__init__(f"nested deeper than {MAX_NESTING} levels")


def from_json(text: str) -> Any:
    """The data of JSON text.

    Raises:
        ValueError: not JSON; :class:`TooDeep` when nested deeper than :data:`MAX_NESTING` levels.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    if nesting_depth(data, MAX_NESTING) > MAX_NESTING:
        raise TooDeep()
    return data


def nesting_depth(data: Any, most: int) -> int:
    """How deep lists and dicts nest in ``data`` (a scalar: 0), counted without recursion and
    only up to ``most + 1``."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)) and value:
            deepest = max(deepest, depth)
            if depth > most:
                return depth
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
        elif isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
    return deepest


def to_json(data: Any) -> str:
    """JSON text of ``data``; NaN and infinities become null (JSON has neither)."""
    return json.dumps(_finite(data), indent=2, sort_keys=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _finite(value.item())
    return value


class RunFolder:
    """One run's folder and the files in it.

    Args:
        path: the folder (it must exist).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        #: Held by every write: a run's heartbeat thread writes its metrics.json too.
        self.lock = threading.RLock()

    @property
    def run_id(self) -> str:
        """The folder's name, which identifies the run."""
        return self.path.name

    @classmethod
    def create(cls, runs_dir: str | Path, name: str, kind_suffix: str = "",
               started: datetime | None = None) -> "RunFolder":
        """Make a new, unique run folder under ``runs_dir``.

        Two runs of the same name started in the same second get ``..._name``
        and ``..._name-2``; creation is atomic (mkdir), so concurrent processes
        never share a folder.

        Args:
            runs_dir: the runs root (created if missing).
            name: the config's name (already validated: no path separators).
            kind_suffix: appended to the name, e.g. ``_kfold``.
            started: the timestamp to use (default now).

        Returns:
            The new run folder.
        """
        if "/" in name or "\\" in name or ".." in name or name.startswith("."):
            raise NnlabError(f"run name '{name}' may not contain path separators or '..'", key="name")
        stamp = (started or utc_now()).strftime(TIMESTAMP_FORMAT)
        return cls.claim(runs_dir, f"{stamp}_{name}{kind_suffix}")

    @classmethod
    def claim(cls, runs_dir: str | Path, folder_name: str) -> "RunFolder":
        """Make the folder ``folder_name`` under ``runs_dir``, or ``folder_name-2`` (``-3``, ...) when taken.

        Also how a run made elsewhere (a worker's trial) gets its folder here.

        Returns:
            The new run folder.
        """
        root = Path(runs_dir)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise NnlabError(f"cannot create the runs directory: {err.strerror}", source=str(root)) from None
        for attempt in range(1, 10_000):
            path = root / (folder_name if attempt == 1 else f"{folder_name}-{attempt}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as err:
                raise NnlabError(f"cannot create a run folder: {err.strerror}", source=str(root)) from None
            return cls(path)
        raise NnlabError("too many run folders with the same name and second", source=str(root))

    def file(self, name: str) -> Path:
        """Path of a file in the folder (creating its parent folders)."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Write a text file atomically; returns its path."""
        from nnlab.redaction import redact

        path = self.file(name)
        with self.lock:
            atomic_write(path, redact(text))  # credentials never land in a run folder
        return path

    def write_json(self, name: str, data: Any) -> Path:
        """Write a JSON file atomically; returns its path."""
        return self.write_text(name, to_json(data))

    def write_yaml(self, name: str, data: Any) -> Path:
        """Write a YAML file atomically; returns its path."""
        return self.write_text(name, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def read_json(self, name: str) -> Any:
        """Read a JSON file of the folder."""
        return from_json((self.path / name).read_text(encoding="utf-8"))


def write_history_csv(path: Path, history: dict[str, list[float]], first_epoch: int = 1) -> None:
    """Write a per-epoch history (Keras's ``History.history``) as CSV, atomically."""
    columns = list(history)
    values = [list(history[c]) for c in columns]  # once: a column per cell would be quadratic in the epochs
    rows = max((len(v) for v in values), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *columns])
    for i in range(rows):
        writer.writerow([first_epoch + i, *(_cell(column, i) for column in values)])
    atomic_write(path, buffer.getvalue())


def read_history_csv(path: Path) -> dict[str, list[float]]:
    """Read a history.csv back into ``{column: values}`` (the epoch column included)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        columns: dict[str, list[float]] = {name: [] for name in header}
        for row in reader:
            if len(row) != len(header):
                break  # a line cut short by a crash
            for name, cell in zip(header, row):
                columns[name].append(float(cell) if cell not in ("", "nan") else math.nan)
    return columns


def _cell(values: list[float], i: int) -> str:
    if i >= len(values):
        return ""
    return repr(float(values[i]))

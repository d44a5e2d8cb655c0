"""The SHA-256 of every data file a run reads, without a second read of a large file.

A run's env.json records the digest of each data file it read, so that ``nnlab verify``
(and a reader) can tell whether the data is still the same. Two ways, one rule each:

- nnlab's own readers (the user's csv and npz files) read through :func:`read_hashed`,
  which feeds the digest with the bytes as the reader takes them: one read of the file;
  only what the reader skipped (an npz's central directory, a few hundred bytes) is
  read once more at the end.
- files that Keras's loaders open by name (mnist.npz, imdb.npz, ...) get
  :func:`sha256_of`: a file is hashed once, and its digest kept in a small cache
  (``$XDG_CACHE_HOME/nnlab/sha256.json``, by default ``~/.cache/nnlab/``) under its
  resolved path and its size, modification time, change time and inode; while those
  are unchanged it is never read again to be hashed.

Digests made while reading go into the same cache, so a later check of the file
(``nnlab verify`` before it trains) reads nothing while the file is unchanged. The
cache is advisory: missing, damaged or unwritable, it is rebuilt or done without.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

#: The cache file, under :func:`cache_dir`.
CACHE_FILE = "sha256.json"
#: At most this many files are remembered (the ones hashed longest ago are forgotten first).
MAX_ENTRIES = 2000
#: Bytes read per block when a file is hashed on its own.
BLOCK = 1 << 20


def cache_dir() -> Path:
    """nnlab's cache folder: ``$XDG_CACHE_HOME/nnlab``, else ``~/.cache/nnlab``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "nnlab"


def _signature(st: os.stat_result) -> list[int]:
    """What changes whenever a file's bytes may have: size, mtime, ctime (which no user tool sets back), inode."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _load_cache() -> dict[str, Any]:
    try:
        data = json.loads((cache_dir() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(resolved: Path, signature: list[int], digest: str) -> None:
    """Store one digest in the cache (atomically; a read-only cache folder just goes without)."""
    cache = _load_cache()
    cache[str(resolved)] = {"sig": signature, "sha256": digest, "hashed": time.time()}
    if len(cache) > MAX_ENTRIES:
        by_age = sorted(cache, key=lambda key: _hashed_at(cache[key]))
        for key in by_age[: len(cache) - MAX_ENTRIES]:
            del cache[key]
    folder = cache_dir()
    partial = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{CACHE_FILE}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(cache, separators=(",", ":")))
        os.replace(partial, folder / CACHE_FILE)  # concurrent runs: the last one wins, the others hash again
    except OSError:
        if partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(partial)


def _hashed_at(entry: Any) -> float:
    value = entry.get("hashed") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def cached_sha256(path: str | os.PathLike) -> str | None:
    """The digest the cache holds for ``path`` while the file is unchanged, else None (reads only the cache)."""
    resolved = Path(path).resolve()
    try:
        signature = _signature(os.stat(resolved))
    except OSError:
        return None
    entry = _load_cache().get(str(resolved))
    if isinstance(entry, dict) and entry.get("sig") == signature and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    return None


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file: from the cache while the file is unchanged, else read once in blocks and cached.

    Args:
        path: the file.

    Returns:
        64 hex digits.

    Raises:
        OSError: when the file cannot be read.
    """
    known = cached_sha256(path)
    if known is not None:
        return known
    resolved = Path(path).resolve()
    digest = hashlib.sha256()
    with open(resolved, "rb") as handle:
        before = _signature(os.fstat(handle.fileno()))
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
        unchanged = _signature(os.fstat(handle.fileno())) == before
    if unchanged:
        _remember(resolved, before, digest.hexdigest())
    return digest.hexdigest()


class _HashingFile(io.RawIOBase):
    """A binary file that feeds a SHA-256 with the bytes read from it, in file order.

    Bytes read in order from the start are hashed as they pass; a reader that jumps
    ahead (a zip's central directory at the end) leaves a gap, and :meth:`finish`
    reads from the first byte not yet hashed to the end. Seeking and reading are passed
    through, so any reader of a binary file works on it.
    """

    def __init__(self, path: Path):
        super().__init__()
        self._file = open(path, "rb", buffering=0)
        self._digest = hashlib.sha256()
        self._hashed = 0  # bytes [0, _hashed) are in the digest
        self._position = 0
        self.signature = _signature(os.fstat(self._file.fileno()))
        #: Bytes read again by :meth:`finish` (what the reader skipped).
        self.reread = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer) or 0
        start, end = self._position, self._position + count
        if count and start <= self._hashed < end:
            self._digest.update(memoryview(buffer).cast("B")[self._hashed - start:count])
            self._hashed = end
        self._position = end
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = self._file.seek(offset, whence)
        return self._position

    def tell(self) -> int:
        return self._position

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()
        super().close()

    def finish(self) -> tuple[str, bool]:
        """The digest of the whole file, reading what was skipped; and whether the file stayed unchanged."""
        self._file.seek(self._hashed)
        for block in iter(lambda: self._file.read(BLOCK), b""):
            self._digest.update(block)
            self._hashed += len(block)
            self.reread += len(block)
        self._file.seek(self._position)
        return self._digest.hexdigest(), _signature(os.fstat(self._file.fileno())) == self.signature


class HashedRead:
    """What :func:`read_hashed` gives the reader: ``file`` to read from; ``sha256`` once the block ends.

    Args:
        file: a buffered binary file over the hashing reader.
        path: the file's resolved path.
    """

    def __init__(self, file: io.BufferedReader, path: Path):
        self.file = file
        self.path = path
        self.sha256: str | None = None
        #: Bytes read a second time to complete the digest.
        self.reread = 0


@contextlib.contextmanager
def read_hashed(path: str | os.PathLike) -> Iterator[HashedRead]:
    """Open ``path`` for a reader and hash it as the reader reads it; the digest is set (and cached) when
    the block ends without an error.

    Example::

        with read_hashed(path) as reading:
            arrays = np.load(reading.file)
        digest = reading.sha256

    Args:
        path: the data file.

    Yields:
        A :class:`HashedRead`.

    Raises:
        OSError: when it cannot be opened (FileNotFoundError included).
    """
    resolved = Path(path).resolve()
    raw = _HashingFile(resolved)
    reading = HashedRead(io.BufferedReader(raw), resolved)
    try:
        yield reading
        reading.sha256, unchanged = raw.finish()
        reading.reread = raw.reread
        if unchanged:
            _remember(resolved, raw.signature, reading.sha256)
    finally:
        raw.close()

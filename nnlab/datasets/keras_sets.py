"""The datasets Keras downloads (mnist, fashion_mnist, cifar10, imdb, reuters, boston_housing), offline first.

Where the files come from, in this order:

1. a data directory: ``dataset.path`` in the config, else ``--data-dir`` /
   ``NNLAB_DATA_DIR``, holding the files exactly as Keras downloads them
   (:data:`KERAS_SETS` lists them);
2. Keras's cache (``$KERAS_HOME/datasets``, ``~/.keras/datasets``);
3. Keras's download.

The files are read by Keras's own ``keras.datasets.X.load_data``, so nnlab returns
exactly the arrays, splits and shuffling Keras returns on the same files. For a
data directory Keras's ``get_file`` (which would look in its cache, check the
published hash and download on a mismatch) is replaced, for the duration of the
call, by one that hands Keras the local file: a file the user placed is used as it
is, in any size (a note says when its hash differs from the published one). Only
cifar10 is assembled here, batch by batch through Keras's restricted unpickler,
because Keras's loader insists on exactly 50,000 training images in its cache
(tests/test_keras_datasets.py checks the result equals Keras's on a full-size archive).

Keras (and TensorFlow) are imported only when data is loaded: listing the
datasets and checking what is available offline need neither.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import socket
import sys
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from pydantic import Field

from nnlab.datasets.base import Dataset, Task
from nnlab.datasets.digests import sha256_of
from nnlab.datasets.registry import register
from nnlab.errors import DataError

log = logging.getLogger(__name__)

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
#: The environment variable naming a data directory (as ``--data-dir`` does).
DATA_DIR_ENV = "NNLAB_DATA_DIR"
#: Seconds a download may wait on a silent network before it counts as failed.
DOWNLOAD_TIMEOUT_S = 60

Fraction = Annotated[float, Field(gt=0, lt=1)]
Count = Annotated[int, Field(ge=1)]
Index = Annotated[int, Field(ge=0)]

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BOSTON_FEATURES = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT"]
FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz")
CIFAR10_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


@dataclass(frozen=True)
class KerasSet:
    """What is known about one Keras download dataset without loading it.

    Args:
        name: registry name (and Keras module name).
        task: binary, multiclass or regression.
        train_shape, test_shape: shapes of the published arrays.
        num_classes: number of classes (None for regression).
        layouts: the ways its files can lie in a data directory, each a tuple of
            relative paths that must all exist (cifar10: extracted batches or the archive).
        cache_layouts: the same inside Keras's ``datasets`` cache folder.
        origin: where Keras downloads it from.
        summary: one line for ``nnlab datasets``.
        word_index: the word index file of a text dataset.
    """

    name: str
    task: Task
    train_shape: tuple[int, ...]
    test_shape: tuple[int, ...]
    num_classes: int | None
    layouts: tuple[tuple[str, ...], ...]
    cache_layouts: tuple[tuple[str, ...], ...]
    origin: str
    summary: str
    word_index: str | None = None

    @property
    def files_hint(self) -> str:
        """The files to place, as a user reads them."""
        options = [layout[0] if len(layout) == 1 else
                   f"{Path(layout[0]).parent}/{{{', '.join(Path(p).name for p in layout)}}}"
                   for layout in self.layouts]
        return " or ".join(options)

    @property
    def origin_hint(self) -> str:
        """The download address of the file(s)."""
        return self.origin.replace("{file}", "")


KERAS_SETS: dict[str, KerasSet] = {s.name: s for s in [
    KerasSet("mnist", "multiclass", (60000, 28, 28), (10000, 28, 28), 10, (("mnist.npz",),),
             (("mnist.npz",),), ORIGIN + "mnist.npz", "70,000 28x28 handwritten digits (Keras download)"),
    KerasSet("fashion_mnist", "multiclass", (60000, 28, 28), (10000, 28, 28), 10,
             (tuple(f"fashion-mnist/{f}" for f in FASHION_FILES),),
             (tuple(f"fashion-mnist/{f}" for f in FASHION_FILES),), ORIGIN + "{file}",
             "70,000 28x28 Zalando clothing images, 10 classes (Keras download)"),
    KerasSet("cifar10", "multiclass", (50000, 32, 32, 3), (10000, 32, 32, 3), 10,
             (tuple(f"cifar-10-batches-py/{b}" for b in CIFAR10_BATCHES), ("cifar-10-python.tar.gz",)),
             (("cifar-10-batches-py-target_archive",),),  # Keras's get_file needs the archive it keeps
             "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
             "60,000 32x32 colour images, 10 classes (Keras download)"),
    KerasSet("imdb", "binary", (25000,), (25000,), 2, (("imdb.npz",),), (("imdb.npz",),), ORIGIN + "imdb.npz",
             "50,000 movie reviews as word-index sequences, positive/negative (Keras download)",
             word_index="imdb_word_index.json"),
    KerasSet("reuters", "multiclass", (8982,), (2246,), 46, (("reuters.npz",),), (("reuters.npz",),),
             ORIGIN + "reuters.npz", "11,228 newswires as word-index sequences, 46 topics (Keras download)",
             word_index="reuters_word_index.json"),
    KerasSet("boston_housing", "regression", (404, 13), (102, 13), None, (("boston_housing.npz",),),
             (("boston_housing.npz",),), ORIGIN + "boston_housing.npz",
             "506 Boston suburbs of the 1970s, 13 features, median house price (Keras download)"),
]}


# -- where the files are ------------------------------------------------------------------

def keras_cache_dirs() -> list[Path]:
    """Keras's ``datasets`` cache folder, where ``keras.utils.get_file`` keeps downloads (as a list).

    The same rule as Keras (``$KERAS_HOME``, else ``~/.keras``, else ``/tmp/.keras``
    when the home folder is not writable), without importing Keras.
    """
    config = sys.modules.get("keras.src.backend.config")
    if config is not None and hasattr(config, "keras_home"):
        home = Path(os.path.expanduser(config.keras_home()))
    elif "KERAS_HOME" in os.environ:
        home = Path(os.environ["KERAS_HOME"]).expanduser()
    else:
        base = Path.home() if os.access(Path.home(), os.W_OK) else Path("/tmp")
        home = base / ".keras"
    # get_file falls back to /tmp/.keras when the home folder cannot be written (Keras creates it on import).
    base = home if not home.exists() or os.access(home, os.W_OK) else Path("/tmp/.keras")
    return [base / "datasets"]


def data_dir_from(data_dir: str | os.PathLike | None) -> Path | None:
    """The data directory: the one given, else ``$NNLAB_DATA_DIR``, else None."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    return Path(chosen).expanduser() if chosen is not None else None


def find_layout(spec: KerasSet, root: Path, *, cache: bool = False) -> dict[str, Path] | None:
    """The files of ``spec`` under ``root``, by their base name, or None when they are not there.

    ``root`` may be a data directory, the subfolder of the files (``fashion-mnist/``,
    ``cifar-10-batches-py/``) or, for a one-file dataset, the file itself.

    Raises:
        DataError: when some files of a layout are there and others are missing.
    """
    layouts = spec.cache_layouts if cache else spec.layouts
    if root.is_file():
        single = [layout[0] for layout in layouts if len(layout) == 1]
        return {Path(single[0]).name: root} if single else None
    partial = None
    for layout in layouts:
        # The files in their Keras layout below root, or root being their own subfolder.
        for candidates in dict.fromkeys([tuple(root / p for p in layout),
                                         tuple(root / Path(p).name for p in layout)]):
            present = [c.is_file() for c in candidates]
            if all(present):
                return {Path(p).name: c for p, c in zip(layout, candidates)}
            if any(present) and len(layout) > 1 and partial is None:
                partial = [str(c) for c, ok in zip(candidates, present) if not ok]
    if partial:  # the user meant to place them: say which are missing rather than look elsewhere
        raise DataError(f"{spec.name}: some of its files are missing: {', '.join(partial)}", source=str(root))
    return None


def find_offline(spec: KerasSet, path: str | None = None,
                 data_dir: str | os.PathLike | None = None) -> tuple[str, Path, dict[str, Path]] | None:
    """Where ``spec`` can be read without the network, or None.

    Returns:
        ``(kind, root, files)``: kind is ``path``, ``data dir`` or ``keras cache``.
    """
    if path is not None:
        found = find_layout(spec, Path(path).expanduser())
        return ("path", Path(path), found) if found else None
    folder = data_dir_from(data_dir)
    if folder is not None:
        found = find_layout(spec, folder)
        if found:
            return "data dir", folder, found
    for cache in keras_cache_dirs():
        with contextlib.suppress(DataError):
            found = find_layout(spec, cache, cache=True)
            if found:
                return "keras cache", cache, found
    return None


# -- reading through Keras ----------------------------------------------------------------

_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _keras_reads_local(module: Any, files: dict[str, Path]) -> Iterator[list[str]]:
    """Within the block, ``module.load_data`` reads ``files`` instead of fetching them.

    Keras's loaders call ``get_file(fname, origin, file_hash, ...)`` and read what it
    returns; that call is the only thing replaced, so the reading, shuffling and
    splitting stay Keras's own. Yields a list that collects notes (hash differences).
    """
    notes: list[str] = []

    def local_file(fname: str | None = None, origin: str | None = None, *args: Any, file_hash: str | None = None,
                   **kwargs: Any) -> str:
        name = fname or os.path.basename(origin or "")
        if name not in files:
            raise DataError(f"Keras asked for '{name}', which nnlab did not expect (files: {sorted(files)})")
        local = files[name]
        if file_hash and local.is_file() and not matches_published(local, file_hash):
            notes.append(f"{local} {_HASH_NOTE} (its hash is not {file_hash[:12]}...); used as it is")
        return str(local)

    with _PATCH_LOCK:
        saved = module.get_file
        module.get_file = local_file
        try:
            yield notes
        finally:
            module.get_file = saved


@contextlib.contextmanager
def _download_guard() -> Iterator[None]:
    """Keras's download messages go to stderr (stdout may carry --json), and a silent
    network times out instead of hanging."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        socket.setdefaulttimeout(previous)


def _keras_module(name: str) -> Any:
    import importlib

    from nnlab.backend import keras

    keras()
    return importlib.import_module(f"keras.src.datasets.{name}")


def _is_download_failure(err: BaseException) -> bool:
    # get_file raises a bare Exception("URL fetch failure on ...") or, after a download, a hash ValueError.
    text = str(err)
    return isinstance(err, OSError) or "URL fetch failure" in text or "hash does not match" in text


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def damaged_file(files: Iterable[Path]) -> Path | None:
    """The first of ``files`` that fails a check of its container format, or None.

    Keras's readers fail with errors that do not say which of several files was bad
    (fashion-mnist has four); this finds it. Checks gzip streams to their end and idx
    headers against their length, zip archives' CRCs, and tar archives' members.
    """
    import gzip
    import zipfile

    for file in files:
        try:
            if file.name.endswith(".tar.gz"):
                with tarfile.open(file, "r:gz") as archive:
                    for _ in archive:
                        pass
            elif file.suffix == ".gz":
                with gzip.open(file, "rb") as stream:
                    data = stream.read()
                if "idx" in file.name and not _idx_is_whole(data):
                    return file
            elif file.suffix == ".npz":
                with zipfile.ZipFile(file) as archive:
                    if archive.testzip() is not None:
                        return file
            elif file.stat().st_size == 0:
                return file
        except Exception:  # any failure to read the container is the answer
            return file
    return None


def _idx_is_whole(data: bytes) -> bool:
    """An idx file (the MNIST format): magic, dimension sizes, then exactly that many bytes."""
    if len(data) < 4 or data[:2] != b"\x00\x00":
        return False
    dims = data[3]
    header = 4 + 4 * dims
    if len(data) < header:
        return False
    sizes = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return len(data) - header == int(np.prod(sizes, dtype=np.int64))


def load_arrays(name: str, read: Callable[[dict[str, Path] | None], tuple], *, path: str | None,
                data_dir: str | None, rows_fixed: bool = True) -> tuple[tuple, str, list[str], dict[str, str]]:
    """Find the files of dataset ``name`` and read them, in the documented order.

    Args:
        name: a key of :data:`KERAS_SETS`.
        read: ``read(files)`` returns Keras's ``((x_train, y_train), (x_test, y_test))`` and
            a list of notes; ``files`` maps Keras's file names to local files, or is None
            for "let Keras use its cache or download".
        path: ``dataset.path`` (a data directory or the file itself).
        data_dir: ``--data-dir`` (else ``$NNLAB_DATA_DIR``).
        rows_fixed: the loader's options keep every published row (no ``maxlen``), so a
            different number of rows means a different file.

    Returns:
        ``(arrays, source, notes, files)``: source says where the data came from; files
        maps each local file read to its SHA-256 (recorded in the run's env.json).

    Raises:
        DataError: nothing could be read; says which file to place where.
    """
    spec = KERAS_SETS[name]
    located = find_offline(spec, path, data_dir)
    if path is not None and located is None:
        raise DataError(f"{name}: no {spec.files_hint} there; place the file(s) Keras downloads from "
                        f"{spec.origin_hint} there, or remove dataset.path to use --data-dir, "
                        "Keras's cache or the download", source=str(path))
    if located is not None and located[0] != "keras cache":
        kind, root, files = located
        try:
            arrays, notes = read(files)
        except DataError:
            raise
        except Exception as err:  # a damaged or foreign file: name it, never a traceback
            shown = str(next(iter(files.values()))) if len(files) == 1 else str(damaged_file(files.values()) or root)
            raise DataError(f"cannot read it as Keras's {name} format ({_reason(err)})", source=shown) from None
        notes = _published_or_not(spec, arrays, notes, rows_fixed)
        for note in notes:
            log.warning("note: %s", note)
        return arrays, f"{kind} {root}", notes, _digests(files.values())
    # Keras's cache, then its download: Keras's own get_file checks the published hash.
    cached = located is not None
    try:
        with _download_guard():
            arrays, notes = read(None)
    except Exception as err:
        if cached and not _is_download_failure(err):
            raise DataError(f"{name}: Keras could not read its cached copy ({_reason(err)})",
                            source=str(next(iter(located[2].values())))) from None
        folder = data_dir_from(data_dir)
        looked = [str(folder)] if folder else []
        looked += [str(c) for c in keras_cache_dirs()[:1]]
        where = "the Keras cache copy could not be read" if cached else "no copy was found offline"
        raise DataError(
            f"{name}: {where} and the download failed ({_reason(err)}). Place {spec.files_hint} "
            f"(from {spec.origin_hint}) in a data directory and pass --data-dir DIR "
            f"(or set {DATA_DIR_ENV}, or dataset.path in the config); looked in: {', '.join(looked)}") from None
    # The files Keras read from its cache (or just downloaded there), hashed once: Keras checked them itself.
    read_files = located[2] if cached else next(
        (found for cache in keras_cache_dirs() for found in [_quiet_layout(spec, cache)] if found), {})
    return arrays, "keras cache" if cached else "keras download", notes, _digests(read_files.values())


def _quiet_layout(spec: KerasSet, cache: Path) -> dict[str, Path] | None:
    with contextlib.suppress(DataError):
        return find_layout(spec, cache, cache=True)
    return None


#: How a note about a file whose hash is not the published one ends (see _keras_reads_local).
_HASH_NOTE = "differs from the published file"


def _published_or_not(spec: KerasSet, arrays: tuple, notes: list[str], rows_fixed: bool) -> list[str]:
    """The notes worth printing: a file whose hash is not the published one is named only when its
    arrays are not the published ones either (another number of examples, another example shape).

    A file rebuilt from the same data (bench/make_boston_npz.py, a re-saved npz) has other
    bytes but the same arrays: its figures match the lesson's, and its hash is still
    recorded in the run's env.json.
    """
    different = [n for n in notes if _HASH_NOTE in n]
    if not different:
        return notes
    (x_train, _), (x_test, _) = arrays
    found_rows, found_shape = len(x_train) + len(x_test), tuple(x_train.shape[1:])
    published_rows, published_shape = spec.train_shape[0] + spec.test_shape[0], tuple(spec.train_shape[1:])
    unlike = []
    if rows_fixed and found_rows != published_rows:
        unlike.append(f"{found_rows:,} examples (published: {published_rows:,})")
    if found_shape != published_shape:
        unlike.append(f"examples of shape {found_shape} (published: {published_shape})")
    kept = [n for n in notes if n not in different]
    if unlike:
        file = different[0].split(f" {_HASH_NOTE}")[0]
        kept.append(f"{file} is not the published {spec.name} file: it has {' and '.join(unlike)}; "
                    "figures will not match the lesson's")
    return kept


def matches_published(file: Path, file_hash: str) -> bool:
    """Whether ``file`` is the published one: a SHA-256 (64 hex digits, as Keras gives for most
    datasets) is checked against the cached digest that env.json records anyway, so the file is
    not read once more for it; any other hash (MD5) by Keras's own ``validate_file``."""
    if len(file_hash) == 64:
        return sha256_of(file) == file_hash.lower()
    from keras.src.utils import file_utils

    return bool(file_utils.validate_file(str(file), file_hash))


def _digests(files: Iterable[Path]) -> dict[str, str]:
    """``{file: SHA-256}`` of the files a loader read, for env.json (cached: a file is hashed once)."""
    return {str(f): sha256_of(f) for f in files if f.is_file()}


def _via_keras(name: str, **kwargs: Any) -> Callable[[dict[str, Path] | None], tuple]:
    """A ``read`` function that calls ``keras.datasets.<name>.load_data(**kwargs)``."""

    def read(files: dict[str, Path] | None) -> tuple:
        module = _keras_module(name)
        if files is None:
            return module.load_data(**kwargs), []
        with _keras_reads_local(module, files) as notes:
            return module.load_data(**kwargs), notes

    return read


# -- cifar10: the one format read batch by batch here --------------------------------------

def _unpickler() -> type:
    from nnlab.backend import keras

    keras()  # imported quietly first: a bare import of keras.src prints TensorFlow's start-up logs
    try:
        from keras.src.datasets.npz_utils import RestrictedUnpickler
    except ImportError:  # Keras before its restricted unpickler: allow the same numpy globals
        import pickle

        allowed = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                   ("numpy._core.multiarray", "_reconstruct")}

        class RestrictedUnpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                if (module, name) in allowed:
                    return super().find_class(module, name)
                raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
    return RestrictedUnpickler


def read_cifar_batch(handle: io.BufferedIOBase) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR batch as Keras's ``cifar.load_batch`` reads it: (n, 3, 32, 32) uint8 and labels.

    Only numpy array reconstruction is unpickled (Keras's restricted unpickler).
    """
    batch = _unpickler()(handle, encoding="bytes").load()
    batch = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data = np.asarray(batch["data"], dtype="uint8")
    return data.reshape(data.shape[0], 3, 32, 32), np.asarray(batch["labels"], dtype="uint8")


def read_cifar10(files: dict[str, Path]) -> tuple:
    """CIFAR-10 from extracted batches or the archive, as ``keras.datasets.cifar10.load_data`` returns it.

    Any number of images per batch (Keras's own loader needs exactly 10,000).
    """
    from nnlab.backend import keras

    def batches(open_member: Callable[[str], Any], where: Callable[[str], str]) -> list[tuple]:
        out = []
        for batch in CIFAR10_BATCHES:
            try:
                with open_member(batch) as handle:
                    out.append(read_cifar_batch(handle))
            except Exception as err:
                raise DataError(f"cannot read it as a CIFAR batch ({_reason(err)})", source=where(batch)) from None
        return out

    if "data_batch_1" in files:
        parts = batches(lambda b: open(files[b], "rb"), lambda b: str(files[b]))
    else:
        archive = next(iter(files.values()))
        with tarfile.open(archive) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers()
                       if m.isfile() and Path(m.name).parent.name == "cifar-10-batches-py"}
            missing = [b for b in CIFAR10_BATCHES if b not in members]
            if missing:
                raise DataError(f"the archive has no cifar-10-batches-py/{missing[0]}", source=str(archive))
            parts = batches(lambda b: tar.extractfile(members[b]), lambda b: f"{archive}:{members[b].name}")
    x_train = np.concatenate([x for x, _ in parts[:5]])
    y_train = np.concatenate([y for _, y in parts[:5]]).reshape(-1, 1)
    x_test, y_test = parts[5][0], parts[5][1].reshape(-1, 1)
    if keras().backend.image_data_format() == "channels_last":
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test, y_test)


# -- words ----------------------------------------------------------------------------------

def find_word_index(name: str, path: str | None = None, data_dir: str | None = None, *,
                    download: bool = False) -> Path | None:
    """The word index file of ``imdb`` or ``reuters``: beside the data, in the data
    directory, in Keras's cache, or (with ``download``) fetched by Keras.

    Returns:
        The file, or None when it is nowhere to be had.
    """
    fname = KERAS_SETS[name].word_index
    if fname is None:
        return None
    places = []
    if path is not None:
        given = Path(path).expanduser()
        places.append((given.parent if given.is_file() else given) / fname)
    folder = data_dir_from(data_dir)
    if folder is not None:
        places.append(folder / fname)
    places += [cache / fname for cache in keras_cache_dirs()]
    for place in places:
        if place.is_file():
            return place
    if download:
        with contextlib.suppress(Exception), _download_guard():
            return Path(_keras_module(name).get_word_index())
    return None


def read_word_index(file: str | os.PathLike) -> dict[str, int]:
    """A Keras word index file: word -> rank (1 = most frequent)."""
    import json

    try:
        with open(file, encoding="utf-8") as handle:
            index = json.load(handle)
    except (OSError, ValueError) as err:
        raise DataError(f"not a readable word index ({_reason(err)})", source=str(file)) from None
    if not isinstance(index, dict) or not all(isinstance(v, int) for v in index.values()):
        raise DataError("a word index maps words to whole numbers", source=str(file))
    return index


def decode(sequence: Sequence[int], word_index: dict[str, int], *, index_from: int = 3,
           unknown: str = "?") -> str:
    """A word-index sequence back to words, as the lessons decode a review.

    Indices below ``index_from`` are reserved (0 padding, 1 start, 2 out of
    vocabulary) and, like words missing from the index, read as ``unknown``.

    Args:
        sequence: word indices as Keras's ``load_data`` returns them.
        word_index: word -> rank, from :func:`read_word_index`.
        index_from: the offset Keras added to every rank (3).
        unknown: what reserved and unknown indices print as.

    Returns:
        The words joined by spaces.
    """
    reverse = {rank + index_from: word for word, rank in word_index.items()}
    return " ".join(reverse.get(int(i), unknown) for i in sequence)


def encode_words(text: str, word_index: dict[str, int], *, num_words: int | None = None, index_from: int = 3,
                 start_char: int | None = 1, oov_char: int | None = 2) -> list[int]:
    """Text to the word-index sequence ``keras.datasets.imdb.load_data`` would give it.

    Lower-cased words (letters, digits, apostrophes) get their rank plus
    ``index_from``; words outside the index or the ``num_words`` most frequent are
    ``oov_char`` (or dropped when it is None); ``start_char`` opens the sequence.

    Returns:
        The word indices.
    """
    out = [start_char] if start_char is not None else []
    for word in re.findall(r"[a-z0-9']+", text.lower()):
        rank = word_index.get(word)
        index = None if rank is None else rank + index_from
        if index is None or (num_words is not None and index >= num_words):
            if oov_char is not None:
                out.append(oov_char)
        else:
            out.append(index)
    return out


# -- the registered datasets -----------------------------------------------------------------

def _images(name: str, arrays: tuple, source: str, notes: list[str], class_names: list[str],
            files: dict[str, str]) -> Dataset:
    (x_train, y_train), (x_test, y_test) = arrays
    return Dataset(name=name, task="multiclass", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=class_names, image_shape=tuple(int(d) for d in x_train.shape[1:]), source=source,
                   extras={"notes": notes, "files": files})


def _sequences(name: str, task: Task, arrays: tuple, source: str, notes: list[str], class_names: list[str],
               *, num_words: int | None, index_from: int, path: str | None, data_dir: str | None,
               files: dict[str, str]) -> Dataset:
    (x_train, y_train), (x_test, y_test) = arrays
    if not num_words:
        num_words = max((max(s) for s in (*x_train, *x_test) if len(s)), default=0) + 1
    word_index = find_word_index(name, path, data_dir)
    return Dataset(name=name, task=task, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=class_names, source=source,
                   extras={"notes": notes, "files": files, "sequences": True, "index_from": index_from,
                           # multi_hot width: Keras keeps indices below num_words
                           "vocabulary_size": int(num_words),
                           "word_index_file": str(word_index) if word_index else None})


@register("mnist", task="multiclass", summary=KERAS_SETS["mnist"].summary)
def mnist(path: str | None = None, data_dir: str | None = None) -> Dataset:
    """MNIST digits: uint8 images (n, 28, 28), labels 0..9, as ``keras.datasets.mnist.load_data``.

    Args:
        path: a data directory holding mnist.npz, or the file itself.
        data_dir: the data directory of ``--data-dir`` / NNLAB_DATA_DIR.
    """
    arrays, source, notes, files = load_arrays("mnist", _via_keras("mnist", path="mnist.npz"), path=path,
                                        data_dir=data_dir)
    return _images("mnist", arrays, source, notes, [str(d) for d in range(10)], files)


@register("fashion_mnist", task="multiclass", summary=KERAS_SETS["fashion_mnist"].summary)
def fashion_mnist(path: str | None = None, data_dir: str | None = None) -> Dataset:
    """Fashion-MNIST: uint8 images (n, 28, 28), 10 clothing classes.

    Args:
        path: a data directory holding fashion-mnist/ (the four idx .gz files), or that folder.
        data_dir: the data directory of ``--data-dir`` / NNLAB_DATA_DIR.
    """
    arrays, source, notes, files = load_arrays("fashion_mnist", _via_keras("fashion_mnist"), path=path,
                                        data_dir=data_dir)
    return _images("fashion_mnist", arrays, source, notes, list(FASHION_CLASSES), files)


@register("cifar10", task="multiclass", summary=KERAS_SETS["cifar10"].summary)
def cifar10(path: str | None = None, data_dir: str | None = None) -> Dataset:
    """CIFAR-10: uint8 images (n, 32, 32, 3), labels of shape (n, 1), 10 classes.

    Args:
        path: a data directory holding cifar-10-batches-py/ or cifar-10-python.tar.gz (or either itself).
        data_dir: the data directory of ``--data-dir`` / NNLAB_DATA_DIR.
    """

    def read(files: dict[str, Path] | None) -> tuple:
        if files is None:
            return _keras_module("cifar10").load_data(), []
        return read_cifar10(files), []

    arrays, source, notes, files = load_arrays("cifar10", read, path=path, data_dir=data_dir)
    return _images("cifar10", arrays, source, notes, list(CIFAR10_CLASSES), files)


@register("imdb", task="binary", summary=KERAS_SETS["imdb"].summary)
def imdb(path: str | None = None, data_dir: str | None = None, num_words: Count | None = None,
         skip_top: Index = 0, maxlen: Count | None = None, seed: int = 113, start_char: Index | None = 1,
         oov_char: Index | None = 2, index_from: Index = 3) -> Dataset:
    """IMDB reviews as word-index sequences (object arrays of lists), labels 0/1.

    The options are those of ``keras.datasets.imdb.load_data``, with the same defaults.

    Args:
        path: a data directory holding imdb.npz (and imdb_word_index.json), or the npz itself.
        data_dir: the data directory of ``--data-dir`` / NNLAB_DATA_DIR.
        num_words: keep the most frequent words only (the lessons: 10000).
    """
    options = dict(num_words=num_words, skip_top=skip_top, maxlen=maxlen, seed=seed, start_char=start_char,
                   oov_char=oov_char, index_from=index_from)
    arrays, source, notes, files = load_arrays("imdb", _via_keras("imdb", path="imdb.npz", **options), path=path,
                                               data_dir=data_dir, rows_fixed=maxlen is None)
    return _sequences("imdb", "binary", arrays, source, notes, ["negative", "positive"], num_words=num_words,
                      index_from=index_from, path=path, data_dir=data_dir, files=files)


@register("reuters", task="multiclass", summary=KERAS_SETS["reuters"].summary)
def reuters(path: str | None = None, data_dir: str | None = None, num_words: Count | None = None,
            skip_top: Index = 0, maxlen: Count | None = None, test_split: Fraction = 0.2, seed: int = 113,
            start_char: Index | None = 1, oov_char: Index | None = 2, index_from: Index = 3) -> Dataset:
    """Reuters newswires as word-index sequences, 46 topics.

    The options are those of ``keras.datasets.reuters.load_data``, with the same defaults.

    Args:
        path: a data directory holding reuters.npz (and reuters_word_index.json), or the npz itself.
        data_dir: the data directory of ``--data-dir`` / NNLAB_DATA_DIR.
        num_words: keep the most frequent words only (the lessons: 10000).
    """
    options = dict(num_words=num_words, skip_top=skip_top, maxlen=maxlen, test_split=test_split, seed=seed,
                   start_char=start_char, oov_char=oov_char, index_from=index_from)
    arrays, source, notes, files = load_arrays("reuters", _via_keras("reuters", path="reuters.npz", **options),
                                               path=path, data_dir=data_dir, rows_fixed=maxlen is None)
    names = list(_keras_module("reuters").get_label_names())
    return _sequences("reuters", "multiclass", arrays, source, notes, names, num_words=num_words,
                      index_from=index_from, path=path, data_dir=data_dir, files=files)


@register("boston_housing", task="regression", summary=KERAS_SETS["boston_housing"].summary)
def boston_housing(path: str | None = None, data_dir: str | None = None, test_split: Fraction = 0.2,
                   seed: int = 113) -> Dataset:
    """Boston housing: 13 float64 features, median price in k$, split as Keras splits it.

    Args:
        path: a data directory holding boston_housing.npz, or the file itself.
        data_dir: the data directory of ``--data-dir`` / NNLAB_DATA_DIR.
        test_split: fraction of the shuffled rows held out as the test part.
        seed: seed of Keras's shuffle.
    """
    arrays, source, notes, files = load_arrays(
        "boston_housing", _via_keras("boston_housing", path="boston_housing.npz", test_split=test_split, seed=seed),
        path=path, data_dir=data_dir)
    (x_train, y_train), (x_test, y_test) = arrays
    return Dataset(name="boston_housing", task="regression", x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=y_test, feature_names=list(BOSTON_FEATURES) if x_train.shape[1:] == (13,) else None,
                   source=source, extras={"notes": notes, "files": files})

"""Tiny files in the exact formats Keras downloads, for tests that must not touch the network.

    from keras_files import write_keras_files
    write_keras_files(tmp_path)            # every dataset, a few rows each
    write_imdb(tmp_path, train=40, test=30)

Each writer puts its files where a data directory (``--data-dir``) holds them and
returns the path of the main file (or folder). The layouts and encodings follow the
published files: npz object arrays of Python lists for imdb and reuters (word
indices from 1 = most frequent, no start character; Keras adds it), their word
index json, gzipped idx files for fashion_mnist, pickled (protocol 2, bytes keys)
batches for cifar10, npz of x_train/y_train/x_test/y_test for mnist and x/y for
boston_housing.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

#: A small vocabulary; rank = position + 1 (rank 1 is the most frequent word).
WORDS = ["the", "and", "a", "of", "to", "is", "br", "in", "it", "i", "this", "that", "was", "as", "for", "with",
         "movie", "but", "film", "on", "not", "you", "are", "his", "have", "he", "be", "one", "all", "at", "by",
         "an", "they", "who", "so", "from", "like", "her", "or", "just", "about", "it's", "out", "has", "if",
         "some", "there", "what", "good", "more", "when", "very", "up", "no", "time", "she", "even", "my",
         "would", "which", "only", "story", "really", "see", "their", "had", "can", "were", "me", "well"]


def _images(n: int, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _ragged(sequences: list[list[int]]) -> np.ndarray:
    # np.array(list of lists) would make a 2-D array when the lengths agree.
    out = np.empty(len(sequences), dtype=object)
    for i, s in enumerate(sequences):
        out[i] = list(s)
    return out


def _word_sequences(n: int, vocab: int, rng: np.random.Generator, *, min_len: int = 3,
                    max_len: int = 40) -> np.ndarray:
    lengths = rng.integers(min_len, max_len + 1, size=n)
    # Zipf-like ranks: frequent words first, as in the real files.
    return _ragged([list(map(int, np.minimum(rng.zipf(1.3, size=k), vocab))) for k in lengths])


def write_word_index(path: Path, vocab: int) -> Path:
    """A word index json of ``vocab`` words: word -> rank (the first WORDS, then w<rank>)."""
    words = WORDS[:vocab] + [f"w{r}" for r in range(len(WORDS) + 1, vocab + 1)]
    path.write_text(json.dumps({w: r for r, w in enumerate(words, start=1)}), encoding="utf-8")
    return path


def write_mnist(folder: Path, train: int = 24, test: int = 12, seed: int = 0) -> Path:
    """mnist.npz: x_train (n, 28, 28) uint8, y_train (n,) uint8, x_test, y_test."""
    rng = np.random.default_rng(seed)
    path = Path(folder) / "mnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x_train=_images(train, (28, 28), rng), y_train=rng.integers(0, 10, train, dtype=np.uint8),
                        x_test=_images(test, (28, 28), rng), y_test=rng.integers(0, 10, test, dtype=np.uint8))
    return path


def _idx(data: np.ndarray) -> bytes:
    # idx format: magic (0x0000, type 0x08 = ubyte, number of dimensions), big-endian sizes, then the bytes.
    header = struct.pack(">HBB", 0, 0x08, data.ndim) + struct.pack(f">{data.ndim}I", *data.shape)
    return header + data.astype(np.uint8).tobytes()


def write_fashion_mnist(folder: Path, train: int = 24, test: int = 12, seed: int = 0) -> Path:
    """fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (gzipped idx files)."""
    rng = np.random.default_rng(seed)
    sub = Path(folder) / "fashion-mnist"
    sub.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("t10k", test)):
        (sub / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(_images(n, (28, 28), rng))))
        (sub / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(rng.integers(0, 10, n))))
    return sub


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (protocol 2 BINSTRING), as the published CIFAR batches were
    pickled; Python 3's own protocol 2 would call ``_codecs.encode``, which Keras refuses to load."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _py2_pickle(obj: object) -> bytes:
    out = io.BytesIO()
    _Python2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


def cifar_batch(n: int, rng: np.random.Generator, label: str) -> bytes:
    """One pickled CIFAR batch: {'batch_label', 'labels', 'data' (n, 3072) uint8, 'filenames'}, Python 2 style."""
    batch = {b"batch_label": label.encode(), b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": _images(n, (3072,), rng), b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    return _py2_pickle(batch)


def write_cifar10(folder: Path, per_batch: int = 6, test: int = 10, seed: int = 0, *, archive: bool = False,
                  archive_name: str = "cifar-10-python.tar.gz", compress: bool = True) -> Path:
    """cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}, or the same inside a tar(.gz)."""
    rng = np.random.default_rng(seed)
    members = {f"data_batch_{i}": cifar_batch(per_batch, rng, f"training batch {i} of 5") for i in range(1, 6)}
    members["test_batch"] = cifar_batch(test, rng, "testing batch 1 of 1")
    members["batches.meta"] = _py2_pickle({b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer",
                                                            b"dog", b"frog", b"horse", b"ship", b"truck"]})
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if archive:
        path = folder / archive_name
        with tarfile.open(path, "w:gz" if compress else "w") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path
    sub = folder / "cifar-10-batches-py"
    sub.mkdir(exist_ok=True)
    for name, data in members.items():
        (sub / name).write_bytes(data)
    return sub


def write_imdb(folder: Path, train: int = 40, test: int = 30, vocab: int = 300, seed: int = 0) -> Path:
    """imdb.npz (x_train, y_train, x_test, y_test; x as object arrays of lists) and imdb_word_index.json."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "imdb.npz"
    np.savez(path, x_train=_word_sequences(train, vocab, rng), y_train=rng.integers(0, 2, train),
             x_test=_word_sequences(test, vocab, rng), y_test=rng.integers(0, 2, test))
    write_word_index(folder / "imdb_word_index.json", vocab)
    return path


def write_reuters(folder: Path, rows: int = 60, vocab: int = 300, seed: int = 0, classes: int = 46) -> Path:
    """reuters.npz (x as an object array of lists, y topic indices) and reuters_word_index.json."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reuters.npz"
    np.savez(path, x=_word_sequences(rows, vocab, rng), y=rng.integers(0, classes, rows))
    write_word_index(folder / "reuters_word_index.json", vocab)
    return path


def write_boston_housing(folder: Path, rows: int = 50, seed: int = 0) -> Path:
    """boston_housing.npz: x (n, 13) float64, y (n,) float64 (a linear target plus noise)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 13)) * rng.uniform(0.5, 50, 13) + rng.uniform(0, 100, 13)
    y = x @ rng.normal(scale=0.05, size=13) + 22 + rng.normal(scale=1.0, size=rows)
    path = Path(folder) / "boston_housing.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)
    return path


def write_keras_files(folder: Path) -> Path:
    """Every Keras download dataset, tiny, in one data directory. Returns the folder."""
    folder = Path(folder)
    write_mnist(folder)
    write_fashion_mnist(folder)
    write_cifar10(folder)
    write_imdb(folder)
    write_reuters(folder)
    write_boston_housing(folder)
    return folder


def keras_offline(monkeypatch, keras_home: Path, *, accept_any_hash: bool = False) -> list[str]:
    """Cut Keras off the network and point its cache at ``keras_home`` (for one test).

    Every download Keras attempts fails as it does on a machine without a network
    (``URLError``) and is recorded in the returned list. With ``accept_any_hash``,
    Keras takes the files in its cache as the published ones (their hashes differ).

    Returns:
        The URLs Keras tried to download.
    """
    import urllib.error

    from nnlab.backend import keras

    keras()
    from keras.src.backend import config
    from keras.src.utils import file_utils

    attempts: list[str] = []

    def no_network(url, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution (test: no network)")

    keras_home = Path(keras_home)
    (keras_home / "datasets").mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    monkeypatch.setattr(config, "_KERAS_DIR", str(keras_home))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.delenv("NNLAB_DATA_DIR", raising=False)
    if accept_any_hash:
        monkeypatch.setattr(file_utils, "validate_file", lambda *args, **kwargs: True)
    return attempts

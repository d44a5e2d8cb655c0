"""``nnlab datasets``: what the registry holds, what is available offline, and one example shown.

Listing reads no data and imports no TensorFlow: the Keras download datasets are
described by :data:`nnlab.datasets.keras_sets.KERAS_SETS` and found by file
checks (shapes are read from file headers where that is cheap); the generated and
scikit-learn datasets are loaded with their defaults, which takes milliseconds.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.datasets import registry
from nnlab.datasets.keras_sets import KERAS_SETS, KerasSet, decode, find_offline, find_word_index, read_word_index
from nnlab.errors import DataError, NnlabError


@dataclass
class CatalogRow:
    """One dataset of the registry, as ``nnlab datasets`` lists it."""

    name: str
    task: str
    train_shape: tuple[int, ...] | None
    test_shape: tuple[int, ...] | None
    classes: int | None
    source: str
    offline: bool
    summary: str


def catalog(data_dir: str | os.PathLike | None = None) -> list[CatalogRow]:
    """Every registered dataset with its task, shapes, classes and where it would come from now.

    Args:
        data_dir: the data directory (``--data-dir``; else ``$NNLAB_DATA_DIR``).

    Returns:
        One row per dataset, sorted by name.
    """
    rows = []
    for name in registry.names():
        spec = registry.get(name)
        if name in KERAS_SETS:
            rows.append(_keras_row(KERAS_SETS[name], spec.summary, data_dir))
            continue
        required = [p for p, param in spec.options.items() if param.default is param.empty]
        if required:  # the user's own file: nothing to look at before a config names it
            rows.append(CatalogRow(name, spec.task or "any", None, None, None,
                                   f"your file (dataset.{required[0]})", True, spec.summary))
            continue
        try:
            data = spec.load()
        except Exception as err:  # listing must not fail because one dataset cannot load
            rows.append(CatalogRow(name, spec.task or "?", None, None, None, f"unavailable: {err}", False,
                                   spec.summary))
            continue
        rows.append(CatalogRow(name, data.task, tuple(data.x_train.shape), tuple(data.x_test.shape),
                               data.num_classes, data.source, True, spec.summary))
    return rows


def _keras_row(spec: KerasSet, summary: str, data_dir: str | os.PathLike | None) -> CatalogRow:
    try:
        found = find_offline(spec, None, data_dir)
    except DataError as err:
        return CatalogRow(spec.name, spec.task, spec.train_shape, spec.test_shape, spec.num_classes,
                          f"incomplete: {err.message}", False, summary)
    train, test = spec.train_shape, spec.test_shape
    if found is None:
        host = spec.origin_hint.split("/")[2]
        return CatalogRow(spec.name, spec.task, train, test, spec.num_classes, f"download ({host})", False,
                          summary)
    kind, root, files = found
    shapes = _shapes_from_headers(spec, files)
    if shapes is not None:
        train, test = shapes
    return CatalogRow(spec.name, spec.task, train, test, spec.num_classes, f"{kind}: {root}", True, summary)


def _npy_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays in an npz file, read from their headers only."""
    shapes = {}
    with zipfile.ZipFile(file) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as handle:
                    version = np.lib.format.read_magic(handle)
                    read = (np.lib.format.read_array_header_1_0 if version[0] == 1
                            else np.lib.format.read_array_header_2_0)
                    shapes[member[:-4]] = read(handle)[0]
    return shapes


def _shapes_from_headers(spec: KerasSet, files: dict[str, Path]) -> tuple[tuple, tuple] | None:
    """(train shape, test shape) of local files, where the headers tell it cheaply; else None."""
    try:
        if spec.name == "fashion_mnist" and "train-images-idx3-ubyte.gz" in files:
            def idx_shape(path: Path) -> tuple[int, ...]:
                with gzip.open(path, "rb") as handle:
                    dims = handle.read(4)[3]
                    return struct.unpack(f">{dims}I", handle.read(4 * dims))
            return idx_shape(files["train-images-idx3-ubyte.gz"]), idx_shape(files["t10k-images-idx3-ubyte.gz"])
        npz = next((f for key, f in files.items() if key.endswith(".npz")), None)
        if npz is None:
            return None
        shapes = _npy_shapes(npz)
        if "x_train" in shapes:
            return shapes["x_train"], shapes["x_test"]
        # reuters and boston_housing: one array, split 80/20 by Keras's default test_split
        rows = shapes["x"][0]
        cut = int(rows * (1 - 0.2))
        return (cut, *shapes["x"][1:]), (rows - cut, *shapes["x"][1:])
    except (OSError, KeyError, ValueError, IndexError, struct.error, zipfile.BadZipFile, EOFError):
        return None


# -- one example ------------------------------------------------------------------------------

@dataclass
class Example:
    """One example of a dataset, ready to print."""

    name: str
    split: str
    index: int
    count: int
    label: Any
    label_name: str | None = None
    sequence: list[int] | None = None
    text: str | None = None
    image: np.ndarray | None = None
    features: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    source: str = ""


def example(name: str, index: int = 0, split: str = "train", data_dir: str | os.PathLike | None = None) -> Example:
    """Example ``index`` of the ``split`` part of dataset ``name``, decoded to words where it is text.

    Args:
        name: a registered dataset with no required options.
        index: position in the part.
        split: ``train`` or ``test``.
        data_dir: the data directory (``--data-dir``).

    Returns:
        The example.

    Raises:
        NnlabError: unknown dataset, index out of range, data not available.
    """
    try:
        spec = registry.get(name)
    except KeyError as err:
        raise NnlabError(err.args[0], source="nnlab datasets show") from None
    if split not in ("train", "test"):
        raise NnlabError(f"split must be train or test (got '{split}')", source="--split")
    options = {"data_dir": str(data_dir)} if data_dir is not None and "data_dir" in spec.options else {}
    required = [p for p, param in spec.options.items() if param.default is param.empty and p not in options]
    if required:
        raise NnlabError(f"dataset '{name}' needs {', '.join(required)}; use it through a config",
                         source="nnlab datasets show")
    data = spec.load(**options)
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    if not 0 <= index < len(x):
        raise NnlabError(f"{index} is out of range: the {split} part of {name} has {len(x)} examples "
                         f"(0 to {len(x) - 1})", source="--index")
    label = np.asarray(y[index]).reshape(-1)
    value: Any = label.item() if label.size == 1 else label.tolist()
    label_name = None
    if data.class_names and label.size == 1 and 0 <= int(value) < len(data.class_names):
        label_name = data.class_names[int(value)]
    out = Example(name, split, index, len(x), value, label_name, source=data.source)
    if data.extras.get("sequences"):
        out.sequence = [int(i) for i in x[index]]
        word_file = data.extras.get("word_index_file") or find_word_index(name, data_dir=str(data_dir) if data_dir
                                                                           else None, download=True)
        if word_file:
            out.text = decode(out.sequence, read_word_index(word_file), index_from=data.extras.get("index_from", 3))
        else:
            out.notes.append(f"place {KERAS_SETS[name].word_index} beside {name}.npz to see the words")
    elif data.image_shape is not None and np.asarray(x[index]).size == int(np.prod(data.image_shape)):
        out.image = np.asarray(x[index]).reshape(data.image_shape)
    else:
        values = np.asarray(x[index], dtype=float).reshape(-1)
        names = data.feature_names or [f"x{i}" for i in range(len(values))]
        out.features = dict(zip(names, values.tolist()))
    return out


SHADES = " .:-=+*#%@"


def ascii_image(image: np.ndarray) -> str:
    """A grey-level picture of an image in characters (two per pixel, darker is denser)."""
    img = np.asarray(image, dtype=float)
    if img.ndim == 3:
        img = img.mean(axis=-1)
    span = img.max() - img.min()
    levels = np.zeros_like(img, dtype=int) if span == 0 else ((img - img.min()) / span * (len(SHADES) - 1)).round()
    return "\n".join("".join(SHADES[int(v)] * 2 for v in row) for row in levels)


# -- printing ---------------------------------------------------------------------------------

def _shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else "x".join(str(d) for d in shape)


def print_catalog(rows: list[CatalogRow]) -> None:
    """The table of ``nnlab datasets`` (on a narrow terminal the sources follow the table)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from nnlab.views.console import console

    wide = console.width >= 120
    table = Table(show_header=True, header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1),
                  show_edge=False, pad_edge=False)
    for column, justify in (("name", "left"), ("task", "left"), ("train", "right"), ("test", "right"),
                            ("classes", "right"), ("offline", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    if wide:
        table.add_column("source", overflow="fold")
    for row in rows:
        cells = [row.name, row.task, _shape(row.train_shape), _shape(row.test_shape),
                 "-" if row.classes is None else str(row.classes), "[green]yes[/]" if row.offline else "[red]no[/]"]
        table.add_row(*cells, *([escape(row.source)] if wide else []))
    console.print(table)
    if not wide:
        width = max(len(r.name) for r in rows)
        for row in rows:
            console.print(f"  {row.name:<{width}}  {escape(row.source)}", soft_wrap=True)


def print_example(ex: Example) -> None:
    """What ``nnlab datasets show`` prints."""
    from rich.markup import escape

    from nnlab.views.console import console

    label = f"{ex.label} ({ex.label_name})" if ex.label_name else str(ex.label)
    console.print(f"[bold]{ex.name}[/] {ex.split} example {ex.index} of {ex.count}: label {escape(label)}")
    if ex.text is not None:
        console.print(escape(ex.text), soft_wrap=True)
    elif ex.sequence is not None:
        console.print(str(ex.sequence), soft_wrap=True)
    if ex.image is not None:
        console.print(f"image {_shape(ex.image.shape)}, values {ex.image.min()} to {ex.image.max()}")
        console.print(ascii_image(ex.image), markup=False, highlight=False)
    if ex.features is not None:
        console.print("  ".join(f"{k}={v:.4g}" for k, v in ex.features.items()), soft_wrap=True)
    for note in ex.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(f"[dim]source: {escape(ex.source)}[/]")

"""The user's own data: a CSV file with a target column, or an npz file of arrays."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from nnlab.datasets.base import Dataset, Task
from nnlab.datasets.digests import read_hashed
from nnlab.datasets.registry import register
from nnlab.datasets.scikit import split_seeded
from nnlab.errors import DataError

TestSize = Annotated[float, Field(gt=0, lt=1)]
#: At most this many distinct integer targets make a column a classification target.
MAX_INFERRED_CLASSES = 50


def infer_task(y: np.ndarray) -> Task:
    """binary, multiclass or regression, from the target values."""
    if y.dtype.kind in "fc" and not np.all(np.isfinite(y) & (np.round(y) == y)):
        return "regression"
    values = np.unique(y)
    if len(values) <= 2:
        return "binary"
    return "multiclass" if len(values) <= MAX_INFERRED_CLASSES else "regression"


def encode_labels(y: np.ndarray, task: Task) -> tuple[np.ndarray, list[str] | None]:
    """Regression targets to float32; class labels to 0..K-1 with their names."""
    if task == "regression":
        return y.astype("float32"), None
    classes, codes = np.unique(y, return_inverse=True)
    if y.dtype.kind in "iu" and classes.min() >= 0 and np.array_equal(classes, np.arange(len(classes))):
        return y.astype("int64"), [str(c) for c in classes]
    return codes.astype("int64"), [str(c) for c in classes]


@register("csv", task=None, summary="your CSV file: numeric feature columns and a target column")
def csv_file(path: str, target: str, task: Task | None = None, test_size: TestSize = 0.2,
             split_seed: int = 0, delimiter: str = ",") -> Dataset:
    """A CSV file with a header row; every column but ``target`` is a numeric feature.

    Args:
        path: the CSV file.
        target: name of the target column.
        task: binary, multiclass or regression; inferred from the target when omitted.
        test_size: fraction held out as the test part (seeded, stratified for classes).
        split_seed: seed of that split.
        delimiter: the column separator.

    Returns:
        The dataset.
    """
    file = Path(path)
    try:
        with read_hashed(file) as reading:  # hashed as it is read: env.json records the digest
            text = io.TextIOWrapper(reading.file, encoding="utf-8", newline="")
            rows = list(csv.reader(text, delimiter=delimiter))
            text.detach()
    except FileNotFoundError:
        raise DataError("file not found", source=str(file)) from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read as CSV: {err}", source=str(file)) from None
    if len(rows) < 2:
        raise DataError("needs a header row and at least one data row", source=str(file))
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if target not in header:
        raise DataError(f"no column named '{target}' (columns: {', '.join(header)})",
                        source=str(file), line=1, key="dataset.target")
    t = header.index(target)
    features, targets = [], []
    for line_no, row in enumerate(body, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"has {len(row)} fields, the header has {len(header)}", source=str(file),
                            line=line_no)
        values = []
        for i, cell in enumerate(row):
            if i == t:
                continue
            try:
                value = float(cell)
            except ValueError:
                raise DataError(f"column '{header[i]}' holds '{cell}', expected a number",
                                source=str(file), line=line_no) from None
            if not np.isfinite(value):
                raise DataError(f"column '{header[i]}' holds '{cell.strip()}', {NOT_FINITE}",
                                source=str(file), line=line_no)
            values.append(value)
        target_cell = row[t].strip()
        if target_cell.lower() in NON_FINITE_WORDS:
            raise DataError(f"the target column '{target}' holds '{target_cell}', {NOT_FINITE}",
                            source=str(file), line=line_no)
        features.append(values)
        targets.append(target_cell)
    x = np.asarray(features, dtype="float32")
    try:
        y = np.asarray([float(v) for v in targets])
    except ValueError:
        y = np.asarray(targets)
        task = task or ("binary" if len(set(targets)) == 2 else "multiclass")
    task = task or infer_task(y)
    y, class_names = encode_labels(y, task)
    x_train, x_test, y_train, y_test = split_seeded(x, y, test_size=test_size, split_seed=split_seed,
                                                    stratify=task != "regression")
    return Dataset(name=file.stem, task=task, x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=y_test, class_names=class_names,
                   feature_names=[h for i, h in enumerate(header) if i != t], source=str(file),
                   extras={"files": {str(reading.path): reading.sha256}})


@register("npz", task=None, summary="your .npz file: arrays x and y, optionally x_test and y_test")
def npz_file(path: str, task: Task | None = None, test_size: TestSize = 0.2, split_seed: int = 0,
             image_shape: list[int] | None = None) -> Dataset:
    """An ``.npz`` file with arrays ``x`` and ``y`` (and optionally ``x_test``, ``y_test``).

    Without ``x_test`` a seeded ``test_size`` split is taken. Never loads pickled objects.

    Returns:
        The dataset.
    """
    file = Path(path)
    arrays, digest = read_npz_hashed(file)
    missing = {"x", "y"} - set(arrays)
    if missing:
        raise DataError(f"has arrays {sorted(arrays)}; needs 'x' and 'y' (and optionally 'x_test', "
                        "'y_test')", source=str(file))
    check_arrays(file, arrays)
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y):
        raise DataError(f"'x' has {len(x)} rows but 'y' has {len(y)}", source=str(file))
    has_test = "x_test" in arrays and "y_test" in arrays
    all_y = np.concatenate([y, arrays["y_test"]]) if has_test else y
    task = task or infer_task(all_y)
    encoded, class_names = encode_labels(all_y, task)
    y = encoded[: len(y)]
    if has_test:
        x_train, y_train, x_test, y_test = x, y, arrays["x_test"], encoded[len(y):]
    else:
        x_train, x_test, y_train, y_test = split_seeded(x, y, test_size=test_size, split_seed=split_seed,
                                                        stratify=task != "regression")
    return Dataset(name=file.stem, task=task, x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=y_test, class_names=class_names,
                   image_shape=tuple(image_shape) if image_shape else None, source=str(file),
                   extras={"files": digest})


#: The end of the message for a value that is NaN or infinite (a loss of NaN would say "diverged").
NOT_FINITE = "which is not a finite number: fill or drop those rows before training"
#: What Python's float() reads as NaN or infinity.
NON_FINITE_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def check_arrays(file: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuse arrays that cannot be right, naming the array and the first bad row.

    Features (``x``, ``x_test``) must be numbers, finite, with the same shape per row in both
    parts; targets (``y``, ``y_test``) finite when numeric (string class labels are fine);
    the test part complete (both arrays) and as long in ``x_test`` as in ``y_test``.

    Raises:
        DataError: the file, the array, the row (and column) and what was found.
    """
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, missing = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise DataError(f"has '{have}' but no '{missing}': give both arrays of the test part, or neither "
                        "(then a test_size split is taken)", source=str(file))
    for name in ("x", "y", "x_test", "y_test"):
        if name not in arrays:
            continue
        array = arrays[name]
        if array.ndim == 0:
            raise DataError(f"array '{name}' is a single value, expected one row per example", source=str(file))
        if array.dtype.kind not in "biuf" and (name.startswith("x") or array.dtype.kind not in "US"):
            what = "strings" if array.dtype.kind in "US" else f"values of type {array.dtype}"
            expected = "numbers" if name.startswith("x") else "numbers or class-label strings"
            raise DataError(f"array '{name}' holds {what}; nnlab needs {expected} there", source=str(file))
        if array.dtype.kind == "f":
            bad = ~np.isfinite(array)
            if bad.any():
                where = np.argwhere(bad)[0]
                inside = [int(i) for i in where[1:]]
                place = f"row {where[0]}" + (f", column {inside[0]}" if len(inside) == 1 else
                                             f", position {tuple(inside)}" if inside else "")
                value = array[tuple(where)]
                raise DataError(f"array '{name}' holds {value} at {place} (rows counted from 0), {NOT_FINITE}",
                                source=str(file))
    if "x_test" in arrays:
        x, x_test, y_test = arrays["x"], arrays["x_test"], arrays["y_test"]
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"'x_test' rows have shape {x_test.shape[1:]} but 'x' rows have {x.shape[1:]}: both "
                            "parts need the same features", source=str(file))
        if len(x_test) != len(y_test):
            raise DataError(f"'x_test' has {len(x_test)} rows but 'y_test' has {len(y_test)}", source=str(file))


def read_npz(file: Path) -> dict[str, np.ndarray]:
    """Every array of an npz file, refusing pickled objects and naming the file on any error."""
    return read_npz_hashed(file)[0]


def read_npz_hashed(file: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """As :func:`read_npz`, hashing the file as it is read (one read: :func:`nnlab.datasets.digests.read_hashed`).

    Returns:
        The arrays, and ``{resolved path: SHA-256}`` for env.json.
    """
    try:
        with read_hashed(file) as reading, np.load(reading.file, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        return arrays, {str(reading.path): reading.sha256}
    except FileNotFoundError:
        raise DataError("file not found", source=str(file)) from None
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise DataError("holds pickled Python objects, which nnlab never loads; save plain numeric "
                            "arrays", source=str(file)) from None
        raise DataError(f"not a readable .npz file: {err}", source=str(file)) from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"not a readable .npz file (corrupt or truncated): {err}", source=str(file)) from None

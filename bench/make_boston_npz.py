"""Write Keras's boston_housing.npz from the copy of the data that scikit-learn 1.1.3 shipped.

Keras downloads boston_housing.npz (x: 506 x 13 float64, y: 506 float64, the StatLib
rows in their original order). scikit-learn removed the data set in 1.2, but its
1.1.3 wheel on PyPI still holds sklearn/datasets/data/boston_house_prices.csv with
the same 506 rows. On a machine that reaches PyPI but not Keras's storage, this
script builds the npz so that ``nnlab train boston --data-dir FOLDER`` runs on the
real data.

    python bench/make_boston_npz.py /tmp/boston_data                 # pip downloads the wheel
    python bench/make_boston_npz.py /tmp/boston_data --wheel FILE.whl  # or uses one you have

It checks the result against the first rows of Keras's split that the lesson prints
(train_targets starts 15.2, 42.3, 50.0).
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

CSV_MEMBER = "sklearn/datasets/data/boston_house_prices.csv"


def download_wheel(folder: Path) -> Path:
    """``pip download scikit-learn==1.1.3 --no-deps`` into ``folder``; returns the wheel."""
    subprocess.run([sys.executable, "-m", "pip", "download", "scikit-learn==1.1.3", "--no-deps", "--only-binary",
                    ":all:", "-d", str(folder), "-q"], check=True)
    return next(folder.glob("scikit_learn-1.1.3-*.whl"))


def read_boston_csv(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """x (506, 13) and y (506,) as float64 from the CSV inside the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(CSV_MEMBER).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    n, features = int(rows[0][0]), int(rows[0][1])  # first line: "506,13,,,"; second: the column names
    values = np.asarray([[float(v) for v in row[: features + 1]] for row in rows[2: 2 + n]], dtype="float64")
    return values[:, :features], values[:, features]


def keras_split_targets(y: np.ndarray, seed: int = 113, test_split: float = 0.2) -> np.ndarray:
    """The training targets ``keras.datasets.boston_housing.load_data`` would return for ``y``."""
    indices = np.arange(len(y))
    np.random.RandomState(seed).shuffle(indices)
    return y[indices][: int(len(y) * (1 - test_split))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where boston_housing.npz is written")
    parser.add_argument("--wheel", type=Path, help="a scikit-learn 1.1.3 wheel you already have")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        x, y = read_boston_csv(wheel)
    assert x.shape == (506, 13) and y.shape == (506,), (x.shape, y.shape)
    first = keras_split_targets(y)[:3]
    if not np.allclose(first, [15.2, 42.3, 50.0]):
        print(f"warning: Keras's split would start with {first}, not the lesson's 15.2, 42.3, 50.0", file=sys.stderr)
    args.folder.mkdir(parents=True, exist_ok=True)
    out = args.folder / "boston_housing.npz"
    np.savez(out, x=x, y=y)
    print(f"wrote {out}: x {x.shape} {x.dtype}, y {y.shape} {y.dtype}; Keras's training targets start {first}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

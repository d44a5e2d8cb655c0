"""The dataset registry and the datasets of issue 2: spiral, scikit-learn's, CSV and npz files."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab import datasets
from nnlab.errors import DataError


def lesson_spiral(N, K, seed):
    """The lesson's listing, verbatim apart from the seed."""
    np.random.seed(seed)
    D = 2
    X = np.zeros((N * K, D))
    y = np.zeros(N * K, dtype="uint8")
    for j in range(K):
        ix = range(N * j, N * (j + 1))
        r = np.linspace(0.0, 1, N)
        t = np.linspace(j * 4, (j + 1) * 4, N) + np.random.randn(N) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


@pytest.mark.parametrize("n, k, seed", [(100, 3, 0), (37, 5, 11)])
def test_spiral_equals_the_lesson_formula(n, k, seed):
    data = datasets.get("spiral").load(points_per_class=n, classes=k, seed=seed)
    x, y = lesson_spiral(n, k, seed)
    np.testing.assert_allclose(data.x_train, x.astype("float32"))
    np.testing.assert_array_equal(data.y_train, y)
    assert data.task == "multiclass" and data.num_classes == k
    assert data.x_test.shape == (n * k, 2)
    assert not np.allclose(data.x_test, data.x_train), "the test part is a fresh draw"


def test_registry_lists_and_suggests():
    assert {"spiral", "digits", "iris", "wine", "breast_cancer", "diabetes", "csv", "npz"} <= set(datasets.names())
    with pytest.raises(KeyError, match="did you mean 'digits'"):
        datasets.get("digts")


def test_adding_a_dataset_is_one_decorated_function():
    from nnlab.datasets.registry import _REGISTRY

    @datasets.register("test_ones", task="regression", summary="ones")
    def ones(rows: int = 4):
        z = np.ones((rows, 2), "float32")
        return datasets.Dataset("test_ones", "regression", z, z[:, 0], z, z[:, 0])

    try:
        assert datasets.get("test_ones").load(rows=6).x_train.shape == (6, 2)
        with pytest.raises(Exception, match="valid integer"):
            datasets.get("test_ones").load(rows="six")
    finally:
        del _REGISTRY["test_ones"]


@pytest.mark.parametrize("name, task, classes, features", [
    ("digits", "multiclass", 10, 64), ("iris", "multiclass", 3, 4), ("wine", "multiclass", 3, 13),
    ("breast_cancer", "binary", 2, 30), ("diabetes", "regression", None, 10)])
def test_scikit_learn_datasets_are_split_with_a_fixed_seed(name, task, classes, features):
    a = datasets.get(name).load()
    b = datasets.get(name).load()
    assert a.task == task and a.num_classes == classes and a.input_shape == (features,)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    total = len(a.x_train) + len(a.x_test)
    assert abs(len(a.x_test) - 0.2 * total) <= 1
    assert a.x_train.dtype == np.float32


def test_csv_file_with_target_column(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{x:.3f},{y:.3f},{'yes' if x > y else 'no'}" for x, y in rng.random((50, 2))]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    data = datasets.get("csv").load(path=str(path), target="label")
    assert data.task == "binary" and data.class_names == ["no", "yes"]
    assert data.input_shape == (2,) and len(data.x_train) + len(data.x_test) == 50
    numeric = tmp_path / "numeric.csv"
    numeric.write_text("a,b,price\n" + "".join(f"{i},{i % 7},{i * 1.5 + 0.25}\n" for i in range(60)))
    regression = datasets.get("csv").load(path=str(numeric), target="price")
    assert regression.task == "regression" and regression.y_train.dtype == np.float32


def test_csv_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n1,2,0\n1,oops,1\n")
    with pytest.raises(DataError) as info:
        datasets.get("csv").load(path=str(path), target="y")
    assert info.value.line == 3 and "oops" in str(info.value) and "bad.csv" in str(info.value)
    with pytest.raises(DataError, match="no column named 'z'"):
        datasets.get("csv").load(path=str(path), target="z")


def test_npz_file_with_and_without_test_arrays(tmp_path):
    x = np.arange(40, dtype="float32").reshape(20, 2)
    y = np.arange(20) % 3
    np.savez(tmp_path / "split.npz", x=x, y=y, x_test=x[:5], y_test=y[:5])
    data = datasets.get("npz").load(path=str(tmp_path / "split.npz"))
    assert data.task == "multiclass" and len(data.x_test) == 5
    np.savez(tmp_path / "whole.npz", x=x, y=y.astype("float32") + 0.5)
    data = datasets.get("npz").load(path=str(tmp_path / "whole.npz"))
    assert data.task == "regression" and len(data.x_test) == 4


def test_npz_refuses_pickles_and_corrupt_files(tmp_path):
    np.savez(tmp_path / "objects.npz", x=np.array([[1], [1, 2]], dtype=object), y=np.zeros(2))
    with pytest.raises(DataError, match="pickled"):
        datasets.get("npz").load(path=str(tmp_path / "objects.npz"))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "objects.npz").read_bytes()[:40])
    with pytest.raises(DataError, match="corrupt or truncated|not a readable"):
        datasets.get("npz").load(path=str(tmp_path / "cut.npz"))


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.array([[1.0, 2.0], [np.nan, 1.0], [0.0, 1.0]]), "y": np.array([0, 1, 0])},
     "array 'x' holds nan at row 1, column 0"),
    ({"x": np.ones((3, 2)), "y": np.array([0.5, np.inf, 1.0])}, "array 'y' holds inf at row 1"),
    ({"x": np.ones((3, 2, 2)), "y": np.zeros(3), "x_test": np.array([[[1.0, 2.0], [3.0, -np.inf]]]),
      "y_test": np.zeros(1)}, r"array 'x_test' holds -inf at row 0, position \(1, 1\)"),
    ({"x": np.array([["a", "b"], ["c", "d"]]), "y": np.zeros(2)}, "array 'x' holds strings; nnlab needs numbers"),
    ({"x": np.ones((4, 3)), "y": np.zeros(4), "x_test": np.ones((2, 5)), "y_test": np.zeros(2)},
     r"'x_test' rows have shape \(5,\) but 'x' rows have \(3,\)"),
    ({"x": np.ones((4, 3)), "y": np.zeros(4), "x_test": np.ones((2, 3)), "y_test": np.zeros(3)},
     "'x_test' has 2 rows but 'y_test' has 3"),
    ({"x": np.ones((4, 3)), "y": np.zeros(4), "x_test": np.ones((2, 3))}, "has 'x_test' but no 'y_test'"),
    ({"x": np.ones((4, 3)), "y": np.zeros(4), "y_test": np.zeros(2)}, "has 'y_test' but no 'x_test'"),
    ({"x": np.float64(1.0), "y": np.zeros(4)}, "is a single value"),
])
def test_npz_data_that_cannot_be_right_is_refused_at_load(tmp_path, arrays, message):
    """Each names the file, the array and the first bad row, before any run folder exists."""
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as info:
        datasets.get("npz").load(path=str(path))
    assert "data.npz" in str(info.value)


def test_npz_class_labels_may_be_strings(tmp_path):
    np.savez(tmp_path / "labels.npz", x=np.arange(12, dtype="float32").reshape(6, 2),
             y=np.array(["cat", "dog", "cat", "dog", "cat", "dog"]))
    data = datasets.get("npz").load(path=str(tmp_path / "labels.npz"))
    assert data.task == "binary" and data.class_names == ["cat", "dog"]


@pytest.mark.parametrize("body, line, message", [
    ("1,2,0\n1,nan,1\n", 3, "column 'b' holds 'nan', which is not a finite number"),
    ("1,2,0\n1e999,2,1\n", 3, "column 'a' holds '1e999', which is not a finite number"),
    ("1,2,0.5\n1,2,-inf\n", 3, "the target column 'y' holds '-inf'"),
])
def test_csv_values_that_are_not_finite_are_refused_at_their_line(tmp_path, body, line, message):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n" + body)
    with pytest.raises(DataError, match=message) as info:
        datasets.get("csv").load(path=str(path), target="y")
    assert info.value.line == line and "bad.csv" in str(info.value)


def test_bad_data_exits_2_without_a_traceback_or_a_run_folder(cli, write_config, tmp_path):
    data = tmp_path / "data.npz"
    np.savez(data, x=np.ones((20, 3)), y=np.arange(20) % 2, x_test=np.ones((5, 4)), y_test=np.zeros(5))
    path = write_config(f"""
name: bad
dataset: {{name: npz, path: {data}}}
model: {{layers: [{{Dense: {{units: 2, activation: softmax}}}}]}}
optimizer: sgd
loss: sparse_categorical_crossentropy
training: {{epochs: 1}}
""")
    result = cli("train", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "x_test" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

"""The Keras download datasets offline: data directories, Keras's cache, equality with keras.datasets,
the error when nothing is found, word decoding, ``nnlab datasets``, and every lesson config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from keras_files import (keras_offline, write_boston_housing, write_cifar10, write_fashion_mnist, write_imdb,
                         write_keras_files, write_mnist, write_reuters)
from nnlab import datasets
from nnlab.errors import DataError

REPO = Path(__file__).resolve().parent.parent
KERAS_NAMES = ["mnist", "fashion_mnist", "cifar10", "imdb", "reuters", "boston_housing"]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty Keras cache; returns the list of attempted downloads."""
    return keras_offline(monkeypatch, tmp_path / "keras_home")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data directory holding every Keras dataset, tiny."""
    return write_keras_files(tmp_path_factory.mktemp("keras_data"))


def assert_same(a, b):
    """Equal arrays, ragged object arrays of lists included."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.dtype == object:
        assert all(list(x) == list(y) for x, y in zip(a, b))
    else:
        np.testing.assert_array_equal(a, b)


# -- where the data comes from ---------------------------------------------------------------

@pytest.mark.parametrize("name, train, test, x_dtype", [
    ("mnist", (24, 28, 28), (12, 28, 28), np.uint8), ("fashion_mnist", (24, 28, 28), (12, 28, 28), np.uint8),
    ("cifar10", (30, 32, 32, 3), (10, 32, 32, 3), np.uint8), ("imdb", (40,), (30,), object),
    ("reuters", (48,), (12,), object), ("boston_housing", (40, 13), (10, 13), np.float64)])
def test_each_dataset_loads_from_a_data_directory_without_the_network(offline, data_dir, name, train, test,
                                                                      x_dtype):
    data = datasets.get(name).load(data_dir=str(data_dir))
    assert data.x_train.shape == train and data.x_test.shape == test
    assert data.x_train.dtype == x_dtype
    assert data.source == f"data dir {data_dir}"
    assert offline == [], "nothing may be downloaded when the data directory has the files"


def test_the_environment_variable_names_a_data_directory(offline, data_dir, monkeypatch):
    monkeypatch.setenv("NNLAB_DATA_DIR", str(data_dir))
    assert datasets.get("mnist").load().source == f"data dir {data_dir}"


def test_path_may_name_the_file_itself_in_any_size(offline, tmp_path):
    file = write_imdb(tmp_path / "a", train=7, test=5)
    renamed = tmp_path / "my_reviews.npz"
    shutil.copy(file, renamed)
    data = datasets.get("imdb").load(path=str(renamed))
    assert len(data.x_train) == 7 and len(data.x_test) == 5
    # Other arrays than the published ones: the note says what differs.
    assert any("is not the published imdb file" in n and "12 examples (published: 50,000)" in n
               for n in data.extras["notes"])
    assert list(data.extras["files"]) == [str(renamed)] and len(data.extras["files"][str(renamed)]) == 64


def test_a_rebuilt_file_with_the_published_arrays_gets_no_note(offline, tmp_path):
    # Other bytes (np.savez of the same rows), the published shape: figures match, so nothing to say.
    write_boston_housing(tmp_path / "d", rows=506)
    data = datasets.get("boston_housing").load(data_dir=str(tmp_path / "d"))
    assert len(data.x_train) == 404 and not any("published" in n for n in data.extras["notes"])
    short = write_boston_housing(tmp_path / "e", rows=50)
    data = datasets.get("boston_housing").load(data_dir=str(tmp_path / "e"))
    assert any(f"{short} is not the published boston_housing file: it has 50 examples" in n
               for n in data.extras["notes"])


def test_keras_cache_comes_after_the_data_directory(monkeypatch, tmp_path):
    home = tmp_path / "keras_home"
    attempts = keras_offline(monkeypatch, home, accept_any_hash=True)
    write_mnist(home / "datasets", train=9, test=3)
    data = datasets.get("mnist").load(data_dir=str(tmp_path / "empty"))
    assert data.source == "keras cache" and len(data.x_train) == 9 and attempts == []
    write_mnist(tmp_path / "dir", train=5, test=2)
    assert len(datasets.get("mnist").load(data_dir=str(tmp_path / "dir")).x_train) == 5


def test_download_is_the_last_resort_and_its_failure_says_what_to_place(offline, tmp_path):
    with pytest.raises(DataError) as caught:
        datasets.get("imdb").load(data_dir=str(tmp_path / "empty"))
    message = str(caught.value)
    assert offline and offline[0].endswith("/imdb.npz"), "Keras's download was tried last"
    for part in ("Place imdb.npz", "--data-dir", "NNLAB_DATA_DIR", str(tmp_path / "empty"), "download failed"):
        assert part in message
    assert "Traceback" not in message

    with pytest.raises(DataError, match=r"fashion-mnist/\{train-labels-idx1-ubyte.gz, .*t10k-images"):
        datasets.get("fashion_mnist").load()


def test_a_refusal_through_the_cli_is_one_message_and_exit_code_2(offline, tmp_path, cli):
    (tmp_path / "empty").mkdir()
    result = cli("train", "imdb", "--data-dir", tmp_path / "empty", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "imdb.npz" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # A data directory that does not exist is a typo: refused at once, for every command.
    runs = ["--runs-dir", tmp_path / "runs"]
    for command in (["train", "imdb", *runs], ["kfold", "boston", *runs], ["datasets"], ["datasets", "show", "digits"]):
        result = cli(*command, "--data-dir", tmp_path / "nowhere")
        assert result.exit_code == 2, command
        assert "--data-dir" in result.stderr and "does not exist" in result.stderr


def test_a_missing_file_of_several_is_named(offline, tmp_path):
    sub = write_fashion_mnist(tmp_path)
    (sub / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        datasets.get("fashion_mnist").load(data_dir=str(tmp_path))


def test_path_may_be_the_files_own_folder_and_a_complete_layout_wins(offline, tmp_path):
    sub = write_fashion_mnist(tmp_path / "a", train=6, test=4)
    assert len(datasets.get("fashion_mnist").load(path=str(sub)).x_test) == 4
    batches = write_cifar10(tmp_path / "b")
    write_cifar10(tmp_path / "b", archive=True)
    (batches / "data_batch_3").unlink()  # a half-extracted folder beside the whole archive
    assert datasets.get("cifar10").load(data_dir=str(tmp_path / "b")).x_train.shape == (30, 32, 32, 3)


def test_dataset_path_without_the_files_is_refused_without_a_download(offline, tmp_path):
    with pytest.raises(DataError, match="no cifar-10-batches-py/.* or cifar-10-python.tar.gz there"):
        datasets.get("cifar10").load(path=str(tmp_path))
    assert offline == []


def test_a_damaged_file_is_named(offline, tmp_path):
    (tmp_path / "boston_housing.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="boston_housing.npz: cannot read it as Keras's boston_housing format"):
        datasets.get("boston_housing").load(data_dir=str(tmp_path))


def test_a_pickle_that_does_more_than_build_arrays_is_refused(offline, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    sub = write_cifar10(tmp_path)
    (sub / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match="test_batch.*Refusing to deserialize"):
        datasets.get("cifar10").load(data_dir=str(tmp_path))


# -- the same arrays as keras.datasets -------------------------------------------------------

@pytest.mark.parametrize("name, writer, options", [
    ("mnist", write_mnist, {}),
    ("fashion_mnist", write_fashion_mnist, {}),
    ("imdb", write_imdb, {}),
    ("imdb", write_imdb, {"num_words": 50, "skip_top": 2, "maxlen": 30, "seed": 7}),
    ("reuters", write_reuters, {}),
    ("reuters", write_reuters, {"num_words": 40, "test_split": 0.3, "index_from": 2}),
    ("boston_housing", write_boston_housing, {}),
    ("boston_housing", write_boston_housing, {"test_split": 0.25, "seed": 3}),
])
def test_equal_to_keras_datasets_on_the_same_files(monkeypatch, tmp_path, name, writer, options):
    import keras

    home = tmp_path / "keras_home"
    attempts = keras_offline(monkeypatch, home, accept_any_hash=True)
    writer(home / "datasets")  # Keras's cache, read by Keras itself
    writer(tmp_path / "data")  # the same files in a data directory, read by nnlab
    (kx_train, ky_train), (kx_test, ky_test) = getattr(keras.datasets, name).load_data(**options)
    ours = datasets.get(name).load(data_dir=str(tmp_path / "data"), **options)
    assert ours.source.startswith("data dir")
    for mine, theirs in ((ours.x_train, kx_train), (ours.y_train, ky_train), (ours.x_test, kx_test),
                         (ours.y_test, ky_test)):
        assert_same(mine, theirs)
    assert attempts == []


def test_cifar10_equals_keras_on_a_full_size_archive(monkeypatch, tmp_path):
    """Keras's loader needs exactly 5 x 10,000 training images; nnlab reads the batches itself."""
    import keras

    home = tmp_path / "keras_home"
    attempts = keras_offline(monkeypatch, home, accept_any_hash=True)
    archive = write_cifar10(tmp_path / "data", per_batch=10000, test=20, archive=True, compress=False)
    shutil.copy(archive, home / "datasets" / "cifar-10-batches-py-target_archive")
    (kx_train, ky_train), (kx_test, ky_test) = keras.datasets.cifar10.load_data()
    ours = datasets.get("cifar10").load(data_dir=str(tmp_path / "data"))
    for mine, theirs in ((ours.x_train, kx_train), (ours.y_train, ky_train), (ours.x_test, kx_test),
                         (ours.y_test, ky_test)):
        assert_same(mine, theirs)
    assert attempts == []


def test_cifar10_batches_and_archive_read_alike(offline, tmp_path):
    write_cifar10(tmp_path / "dir", seed=4)
    write_cifar10(tmp_path / "tar", seed=4, archive=True)
    a = datasets.get("cifar10").load(data_dir=str(tmp_path / "dir"))
    b = datasets.get("cifar10").load(path=str(tmp_path / "tar" / "cifar-10-python.tar.gz"))
    assert_same(a.x_train, b.x_train)
    assert_same(a.y_test, b.y_test)
    assert a.y_train.shape == (30, 1) and a.class_names[0] == "airplane"


# -- words -------------------------------------------------------------------------------------

def test_decode_is_the_lessons_decoding_and_encode_inverts_it(offline, data_dir):
    from nnlab.datasets.keras_sets import decode, encode_words, read_word_index

    data = datasets.get("imdb").load(data_dir=str(data_dir))
    word_index = read_word_index(data.extras["word_index_file"])
    reverse_word_index = {value: key for (key, value) in word_index.items()}
    review = data.x_train[0]
    lesson = " ".join([reverse_word_index.get(i - 3, "?") for i in review])
    assert decode(review, word_index) == lesson
    assert encode_words("The movie, and THE film!", word_index) == [1, 4, 20, 5, 4, 22]
    assert encode_words("the zzzz film", word_index, num_words=10) == [1, 4, 2, 2]


def test_datasets_show_prints_a_decoded_review(offline, data_dir, cli):
    result = cli("datasets", "show", "imdb", "--index", "0", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    from nnlab.datasets.keras_sets import decode, read_word_index

    data = datasets.get("imdb").load(data_dir=str(data_dir))
    words = decode(data.x_train[0], read_word_index(data_dir / "imdb_word_index.json"))
    assert words.split()[1] in result.stdout and f"label {data.y_train[0]}" in result.stdout
    assert cli("datasets", "show", "imdb", "--index", "99", "--data-dir", data_dir).exit_code == 2


def test_datasets_lists_what_is_available_offline(offline, data_dir, cli):
    from nnlab.datasets.catalog import catalog

    rows = {r.name: r for r in catalog(data_dir)}
    assert all(rows[n].offline and rows[n].source == f"data dir: {data_dir}" for n in KERAS_NAMES)
    assert rows["mnist"].train_shape == (24, 28, 28) and rows["reuters"].classes == 46
    assert rows["fashion_mnist"].test_shape == (12, 28, 28)
    empty = {r.name: r for r in catalog(data_dir.parent / "nothing_here")}
    assert not any(empty[n].offline for n in KERAS_NAMES)
    assert empty["imdb"].train_shape == (25000,) and empty["spiral"].offline
    result = cli("datasets", "--json", "--data-dir", data_dir)
    assert result.exit_code == 0
    assert {r["name"] for r in json.loads(result.stdout)} >= set(KERAS_NAMES)


def test_listing_imports_no_tensorflow(data_dir):
    import subprocess
    import sys

    probe = ("import sys; from nnlab.cli import app; from typer.testing import CliRunner; "
             f"r = CliRunner().invoke(app, ['datasets', '--data-dir', {str(data_dir)!r}]); "
             "assert r.exit_code == 0, r.output; assert 'imdb' in r.output; "
             "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr


# -- the lesson configs --------------------------------------------------------------------------

#: Parameters the lessons print (fashion_mnist_cnn: 125,770) and what the others add up to.
PARAMS = {"fashion_mnist": 101_770, "fashion_mnist_slp": 7_960, "fashion_mnist_wide": 39_760,
          "fashion_mnist_mlp": 42_310, "fashion_mnist_cnn": 125_770, "cifar10_mlp": 394_634, "imdb": 160_305,
          "reuters": 647_214, "reuters_bottleneck": 640_554, "boston": 5_121, "mnist": 101_770}


def _fitting(config):
    """The config with its validation holdout shrunk to fit the tiny files."""
    holdout = config.training.validation_holdout
    return config.with_overrides(["training.validation_holdout=5"]) if holdout else config


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_validates_and_builds_against_its_dataset(offline, data_dir, path):
    from nnlab.config import load_config
    from nnlab.validation import check_config

    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "each config opens with a comment naming its lesson's figure"
    config = _fitting(load_config(path))
    report = check_config(config, data_dir=data_dir)
    if path.stem in PARAMS:
        assert f"{PARAMS[path.stem]:,} parameters" in report


def test_the_lesson_configs_are_all_there():
    names = {p.stem for p in (REPO / "configs").glob("*.yaml")}
    assert set(PARAMS) <= names


@pytest.mark.parametrize("name, overrides", [
    ("imdb", ["training.epochs=2", "training.validation_holdout=10"]),
    ("fashion_mnist_cnn", ["training.epochs=2"]),
])
def test_train_runs_the_lesson_configs_end_to_end_on_tiny_files(offline, data_dir, tmp_path, cli, name, overrides):
    sets = [a for o in overrides for a in ("--set", o)]
    result = cli("train", name, *sets, "--data-dir", data_dir, "--runs-dir", tmp_path / "runs", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 2
    assert metrics["params"] == PARAMS[name]
    assert metrics["dataset"] == ("imdb" if name == "imdb" else "fashion_mnist")
    run = next((tmp_path / "runs").iterdir())
    assert (run / "model.keras").is_file() and (run / "history.csv").is_file()
    assert "accuracy" in metrics["test"]
    assert offline == []


# -- damaged files -----------------------------------------------------------------------------

def _damage(file: Path, how: str) -> None:
    data = file.read_bytes()
    if how == "truncated":
        file.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        file.write_bytes(b"\x00\x01not this format\xff" * 20)
    else:  # "empty"
        file.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
@pytest.mark.parametrize("name, writer, damaged", [
    ("mnist", write_mnist, "mnist.npz"),
    ("fashion_mnist", write_fashion_mnist, "fashion-mnist/train-images-idx3-ubyte.gz"),
    ("fashion_mnist", write_fashion_mnist, "fashion-mnist/t10k-labels-idx1-ubyte.gz"),
    ("cifar10", lambda folder: write_cifar10(folder, archive=True), "cifar-10-python.tar.gz"),
    ("cifar10", write_cifar10, "cifar-10-batches-py/data_batch_2"),
    ("imdb", write_imdb, "imdb.npz"),
    ("reuters", write_reuters, "reuters.npz"),
    ("boston_housing", write_boston_housing, "boston_housing.npz"),
])
def test_a_damaged_file_of_every_format_is_named_without_a_traceback(offline, tmp_path, name, writer, damaged,
                                                                      how):
    writer(tmp_path / "data")
    target = tmp_path / "data" / damaged
    assert target.is_file()
    _damage(target, how)
    with pytest.raises(DataError) as caught:
        datasets.get(name).load(data_dir=str(tmp_path / "data"))
    message = str(caught.value)
    assert target.name in message
    assert "Traceback" not in message and "\n" not in message.strip()
    assert offline == []  # a damaged local file is reported, not silently replaced by a download


def test_a_damaged_gz_through_the_cli_is_exit_2_and_no_run_folder(offline, tmp_path, cli):
    write_fashion_mnist(tmp_path / "data")
    _damage(tmp_path / "data" / "fashion-mnist" / "train-labels-idx1-ubyte.gz", "truncated")
    result = cli("train", "fashion_mnist_mlp", "--data-dir", tmp_path / "data", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2
    assert "train-labels-idx1-ubyte.gz" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

"""What the commands print fits an 80-column (and a 120-column) terminal without losing anything.

Each view is rendered from real results twice: at the terminal's width and at a width
nothing needs to fold. The two must hold the same words: a number cut to ``0.9…``, a
column squeezed to nothing, a header or a word broken across lines all change them.
(nnlab compare and nnlab show are checked the same way in tests/test_views_width.py.)
"""

from __future__ import annotations

import re
from collections import Counter
from types import SimpleNamespace

import pytest

from nnlab.views.console import console, err_console

WIDE = 1000
BOX = re.compile(r"[─-╿▀-▟━┃┏┓┗┛┣┫┳┻╋]")


def words(text: str) -> Counter:
    return Counter(BOX.sub(" ", text).split())


def render(width: int, show) -> str:
    """What ``show()`` prints on nnlab's consoles at ``width`` columns."""
    saved = console.width, err_console.width
    console.width = err_console.width = width
    try:
        with console.capture() as out, err_console.capture() as err:
            show()
    finally:
        console.width, err_console.width = saved
    return out.get() + err.get()


def path_at_end(line: str) -> bool:
    """A line ending in a file path: it is kept whole (to be copied), and only the terminal can fold it."""
    last = line.split()[-1] if line.split() else ""
    return "/" in last and len(last) > 30


def assert_fits(show, width: int, may_leave_out: tuple[str, ...] = ()) -> str:
    """Rendered at ``width`` and at a width nothing folds in: the same words, no cut, no line too long.

    Args:
        may_leave_out: words the narrow rendering may leave out (it must then say where they are).
    """
    narrow, wide = render(width, show), render(WIDE, show)
    too_long = [line for line in narrow.splitlines() if len(line) > width and not path_at_end(line)]
    assert not too_long, f"lines wider than {width}: {too_long[:3]}"
    assert "…" not in narrow, f"something was cut at {width} columns:\n{narrow}"
    lost, gained = words(wide) - words(narrow), words(narrow) - words(wide)
    lost = Counter({w: n for w, n in lost.items() if w not in may_leave_out})
    gained -= words("(each trial's run folder is in sweep.json and summary.md; a wider terminal shows them here)")
    assert not lost and not gained, f"at {width} columns {dict(lost)} became {dict(gained)}:\n{narrow}"
    return narrow


DIGITS = """
name: tiny_digits
dataset: {name: digits, preprocessing: {scale: 16}}
model:
  layers:
    - Dense: {units: 16, activation: relu}
    - Dense: {units: 10, activation: softmax}
optimizer: adam
loss: sparse_categorical_crossentropy
metrics: [accuracy, {SparseTopKCategoricalAccuracy: {k: 3, name: top3}}]
training: {epochs: 2, batch_size: 64, validation_split: 0.2}
kfold: {k: 2, monitor: val_accuracy}
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from nnlab.config import config_from_text
    from nnlab.executors import LocalExecutor
    from nnlab.crossval.run import run_kfold
    from nnlab.sweeps import run as sweeps
    from nnlab.sweeps.space import build_trials
    from nnlab.training.run import train

    tmp = tmp_path_factory.mktemp("width")
    config = config_from_text(DIGITS, "tiny_digits.yaml")
    trained = train(config, runs_dir=tmp / "runs")
    folds = run_kfold(config, runs_dir=tmp / "runs", final=True)
    points = [{"model.layers.0.Dense.units": 8, "optimizer": {"name": "adam", "learning_rate": 0.01}},
              {"model.layers.0.Dense.units": 32, "optimizer": {"name": "sgd", "learning_rate": 0.1}}]
    swept = sweeps.run_sweep(config, build_trials(config, points), LocalExecutor(), runs_dir=tmp / "runs",
                             metric="val_accuracy")
    return SimpleNamespace(train=trained, kfold=folds, sweep=swept)


@pytest.mark.parametrize("width", [80, 120])
def test_the_run_summary_fits(results, width):
    from nnlab.views.summaries import run_summary

    r = results.train
    text = assert_fits(lambda: run_summary(r.metrics, str(r.run.path), r.history), width)
    assert "top3" in text and "accuracy" in text and "baseline" in text


@pytest.mark.parametrize("width", [80, 120])
def test_the_kfold_summary_fits(results, width):
    from nnlab.views.summaries import kfold_summary

    text = assert_fits(lambda: kfold_summary(results.kfold), width)
    assert "val_accuracy" in text and "best epoch" in text and "final model" in text


@pytest.mark.parametrize("width", [80, 120])
def test_the_sweep_table_fits(results, width):
    from nnlab.views.summaries import sweep_summary

    folders = tuple(o.folder.rsplit("/", 1)[-1] for o in results.sweep.outcomes) + ("run", "folder")
    text = assert_fits(lambda: sweep_summary(results.sweep), width, may_leave_out=folders)
    flat = " ".join(text.split())
    assert "trials ranked by val_accuracy" in flat and "units: model.layers.0.Dense.units" in flat
    assert all(f in text for f in folders[:2]) or "run folder is in sweep.json" in flat


@pytest.mark.parametrize("width", [80, 120])
def test_the_progress_bar_keeps_its_count_and_time(width):
    from nnlab.views.progress import format_logs, progress_bars

    bars = progress_bars()
    task = bars.add_task("", total=40, label="fashion_mnist_cnn", logs="")
    bars.update(task, completed=12, logs=format_logs({"loss": 0.3123, "accuracy": 0.8812, "val_loss": 0.3344,
                                                       "val_accuracy": 0.8766, "val_top3": 0.9901}, bar=True))
    text = assert_fits(lambda: console.print(bars.make_tasks_table(bars.tasks)), width)
    assert "12/40" in text and "0:00:0" in text


def cli_at(cli, width: int, *args: str) -> str:
    saved = console.width, err_console.width
    console.width = err_console.width = width
    try:
        return cli(*args).output
    finally:
        console.width, err_console.width = saved


@pytest.mark.parametrize("width", [80, 120])
def test_datasets_validate_and_errors_fit(cli, width):
    from nnlab.datasets.catalog import catalog, print_catalog

    rows = catalog(None)
    narrow, wide = render(width, lambda: print_catalog(rows)), render(WIDE, lambda: print_catalog(rows))
    # A narrow terminal gets the sources as a list under the table: the same words, laid out again.
    assert "…" not in narrow and all(len(line) <= width for line in narrow.splitlines()), narrow
    assert set(words(wide)) - set(words(narrow)) <= {"source"}, narrow
    ok = cli_at(cli, width, "validate", "digits")
    assert ok.startswith("ok ") and all(len(line) <= width for line in ok.splitlines())
    for args in (["validate", "digits"], ["validate", "digits", "--set", "training.epoch=3"],
                 ["validate", "digits", "--set", "loss=mse"], ["train", "nosuchconfig"]):
        narrow, wide = cli_at(cli, width, *args), cli_at(cli, WIDE, *args)
        # An error is one line, wrapped by the terminal itself: nothing is cut or lost at any width.
        assert "…" not in narrow and words(narrow) == words(wide), (args, narrow)

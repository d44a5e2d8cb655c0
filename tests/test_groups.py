"""``nnlab compare --group-by`` and ``--versus``: every figure checked against scipy on the same
per-run values, Holm's adjustment by hand, the sentences' wording and direction, n = 1, kinds
kept apart, k-fold runs paired over their folds, bad input, the formats, 80 columns."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from nnlab.cli import app
from nnlab.stats import holm

from conftest import REPO

UNITS = "model.layers.0.Dense.units"
#: Test accuracies per width: 16 and 64 differ beyond noise, 32 does not differ from 16, 128 ran once.
ACCURACY = {16: [0.9361, 0.9450, 0.9556, 0.9400, 0.9500], 32: [0.9420, 0.9600, 0.9480],
            64: [0.9694, 0.9750, 0.9722, 0.9700, 0.9730], 128: [0.9700]}
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def make_run(root: Path, number: int, *, units: int, accuracy: float | None, loss: float | None = None,
             kind: str = "train", status: str = "completed", repeat: int | None = None, seed: int = 0,
             kfold: dict | None = None, name: str = "digits") -> Path:
    """A run folder as ``nnlab train --seeds`` (or ``nnlab kfold``) writes it: metrics.json
    with kind, status, group, repeat, metrics and directions; config.yaml; kfold.json for k-fold."""
    suffix = "_kfold" if kind == "kfold" else ""
    folder = root / f"20250101T{number // 3600:02d}{number // 60 % 60:02d}{number % 60:02d}Z_{name}{suffix}"
    folder.mkdir(parents=True)
    test = {} if accuracy is None else {"accuracy": accuracy, "loss": 1 - accuracy if loss is None else loss}
    metrics = {"run_id": folder.name, "name": name, "kind": kind, "dataset": "digits", "task": "multiclass",
               "status": status, "group": f"{units:012x}", "train_rows": 1437,
               "test": test, "validation": {"accuracy": 0.9, "loss": 0.3},
               "directions": {"loss": "min", "accuracy": "max"}}
    if repeat is not None:
        metrics["repeat"] = repeat
    (folder / "metrics.json").write_text(json.dumps(metrics))
    config = {"name": name, "seed": seed, "dataset": {"name": "digits"},
              "model": {"layers": [{"Dense": {"units": units, "activation": "relu"}}, {"Dense": {"units": 10}}]},
              "optimizer": {"name": "adam", "learning_rate": 0.001}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if kfold is not None:
        (folder / "kfold.json").write_text(json.dumps(kfold))
    return folder


def write_widths(root: Path) -> Path:
    """The repeats of four widths (:data:`ACCURACY`), interleaved in start order."""
    number = 0
    for units, values in ACCURACY.items():
        for repeat, accuracy in enumerate(values):
            number += 1
            make_run(root, number, units=units, accuracy=accuracy, repeat=repeat, seed=repeat)
    return root


@pytest.fixture
def widths(tmp_path) -> Path:
    return write_widths(tmp_path / "runs")


def as_json(*args) -> list[dict]:
    result = invoke("compare", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by_units(items: list[dict]) -> dict[int, dict]:
    return {item[UNITS]: item for item in items}


def hedges_g(a: list[float], b: list[float]) -> float:
    """Hedges' g with its exact small-sample correction, written out here to check nnlab's."""
    df = len(a) + len(b) - 2
    pooled = math.sqrt(((len(a) - 1) * statistics.variance(a) + (len(b) - 1) * statistics.variance(b)) / df)
    correction = math.gamma(df / 2) / (math.sqrt(df / 2) * math.gamma((df - 1) / 2))
    return (statistics.mean(a) - statistics.mean(b)) / pooled * correction


# -- the figures, against scipy ----------------------------------------------------------------------

def test_group_figures_are_scipys_on_the_same_values(widths):
    groups = by_units(as_json(widths, "--group-by", UNITS))
    assert list(groups) == [16, 32, 64, 128]  # in key order
    for units, values in ACCURACY.items():
        item = groups[units]
        figures = item["test_accuracy"]
        assert item["n"] == len(values) and item["kind"] == "train" and len(item["runs"]) == len(values)
        assert figures["values"] == values  # in run order
        assert figures["mean"] == pytest.approx(statistics.mean(values), abs=1e-12)
        assert figures["min"] == min(values) and figures["max"] == max(values)
        if len(values) < 2:
            assert figures["std"] is None and figures["ci_low"] is None and figures["ci_high"] is None
            continue
        assert figures["std"] == pytest.approx(statistics.stdev(values), rel=1e-12)  # sample std, ddof 1
        low, high = stats.t.interval(0.95, len(values) - 1, loc=statistics.mean(values), scale=stats.sem(values))
        assert figures["ci_low"] == pytest.approx(low, rel=1e-12)
        assert figures["ci_high"] == pytest.approx(high, rel=1e-12)


def test_versus_figures_are_scipys_on_the_same_values(widths):
    groups = by_units(as_json(widths, "--group-by", UNITS, "--versus", "16"))
    reference = ACCURACY[16]
    assert groups[16]["versus"] is None
    raw = {}
    for units in (32, 64):
        values, versus = ACCURACY[units], groups[units]["versus"]
        welch = stats.ttest_ind(values, reference, equal_var=False)
        interval = welch.confidence_interval(0.95)
        assert versus["metric"] == "test_accuracy" and versus["reference"] == {UNITS: 16}
        assert versus["difference"] == pytest.approx(statistics.mean(values) - statistics.mean(reference), abs=1e-12)
        assert versus["ci_low"] == pytest.approx(interval.low, rel=1e-10)
        assert versus["ci_high"] == pytest.approx(interval.high, rel=1e-10)
        assert versus["p_t"] == pytest.approx(welch.pvalue, rel=1e-10)
        assert versus["p_rank"] == pytest.approx(stats.mannwhitneyu(values, reference).pvalue, rel=1e-10)
        assert versus["hedges_g"] == pytest.approx(hedges_g(values, reference), rel=1e-10)
        assert versus["paired"] is False and versus["n"] == len(values) and versus["n_reference"] == 5
        raw[units] = welch.pvalue
    # Holm over the two comparisons that could be tested (128 ran once: no test, not counted)
    small, large = sorted(raw.values())
    assert groups[64]["versus"]["p_holm"] == pytest.approx(2 * raw[64], rel=1e-10) and raw[64] == small
    assert groups[32]["versus"]["p_holm"] == pytest.approx(max(2 * small, large), rel=1e-10)
    lone = groups[128]["versus"]
    assert lone["p_t"] is None and lone["p_rank"] is None and lone["p_holm"] is None and lone["ci_low"] is None
    assert "at least 2" in lone["why"] and lone["difference"] == pytest.approx(0.97 - statistics.mean(reference))


def test_holm_step_down_on_a_hand_checked_example():
    # sorted: 0.005*4 = 0.02; 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04, raised to 0.06 (step-down)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.02, None, 0.01]) == pytest.approx([0.02, None, 0.02])  # None kept, not counted
    assert holm([0.04]) == [0.04] and holm([]) == []


# -- what it says --------------------------------------------------------------------------------------

def test_the_sentences_name_the_winner_in_the_metrics_direction(widths):
    result = invoke("compare", widths, "--group-by", UNITS, "--versus", "16")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    beats = next(line for line in lines if line.startswith("units=64 "))
    p = stats.ttest_ind(ACCURACY[64], ACCURACY[16], equal_var=False).pvalue
    assert beats.startswith("units=64 beats units=16: 0.0266 higher test_accuracy (95% CI 0.0171 to 0.0361; ")
    assert f"Welch p = {p:.1e}" in beats and "Holm p = 0.002" in beats and beats.endswith("n = 5 and 5)")
    same = next(line for line in lines if line.startswith("units=32 "))
    assert same.startswith("units=32 against units=16: no difference detectable at n = 3 and 5 (")
    assert re.search(r"about \d+ repeats per group would detect a difference of this size", same)
    # A lower-is-better metric: the lower mean wins, said from the winner's side.
    result = invoke("compare", widths, "--group-by", UNITS, "--versus", "64", "--metric", "test_loss")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("units=64 beats units=16"))
    assert "0.0266 lower test_loss" in line and line.endswith("n = 5 and 5)")
    assert "units=16 beats" not in result.stdout
    # The same metric read the other way: higher accuracy, the reference winning.
    result = invoke("compare", widths, "--group-by", UNITS, "--versus", "units=64")
    assert "units=64 beats units=16: 0.0266 higher test_accuracy" in result.stdout


def test_a_group_of_one_shows_dashes_and_why_never_nan(widths):
    outputs = []
    for fmt in ("table", "markdown", "csv", "json"):
        result = invoke("compare", widths, "--group-by", UNITS, "--versus", "16", "--format", fmt)
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout + result.stderr)
    table = outputs[0]
    row = next(line for line in table.splitlines() if line.split()[:2] == ["128", "1"])
    assert "0.9700 ± -" in row and row.split().count("-") >= 1
    assert "note: units=128: one run: no spread or interval (repeat it with --seeds)" in table
    assert "a test needs at least 2 in each" in table
    assert all("nan" not in out.lower() for out in outputs)
    rows = {r[UNITS]: r for r in csv.DictReader(io.StringIO(invoke("compare", widths, "--group-by", UNITS,
                                                                      "--format", "csv").stdout))}
    assert rows["128"]["test_accuracy_std"] == "" and rows["128"]["test_accuracy_n"] == "1"
    assert float(rows["16"]["test_accuracy_std"]) == pytest.approx(statistics.stdev(ACCURACY[16]))


def test_runs_lacking_a_metric_or_not_completed_are_counted_out(tmp_path):
    root = tmp_path / "runs"
    for i, accuracy in enumerate([0.90, 0.92, None]):
        make_run(root, i, units=16, accuracy=accuracy, repeat=i)
    make_run(root, 10, units=16, accuracy=0.10, status="failed")
    result = invoke("compare", root, "--group-by", UNITS, "--columns", "test_accuracy")
    assert result.exit_code == 0, result.output
    assert "note: 1 run without test_accuracy counted out of its figures (units=16: 1)" in result.stdout
    assert "note: 1 run not completed (failed 1) left out" in result.stdout
    (item,) = as_json(root, "--group-by", UNITS, "--columns", "test_accuracy")
    assert item["n"] == 3 and item["test_accuracy"]["n"] == 2 and item["test_accuracy"]["missing"] == 1
    assert item["test_accuracy"]["values"] == [0.90, 0.92]
    # a --filter on status chooses the statuses instead
    (item,) = as_json(root, "--group-by", UNITS, "--filter", "status=failed")
    assert item["n"] == 1 and item["test_accuracy"]["values"] == [0.10]


def test_kinds_are_never_averaged_together(tmp_path):
    root = tmp_path / "runs"
    folds = {"k": 2, "shuffle": False, "seed": 0, "folds": [
        {"fold": 1, "status": "completed", "validation": {"accuracy": 0.5, "loss": 1.0}},
        {"fold": 2, "status": "completed", "validation": {"accuracy": 0.6, "loss": 0.9}}]}
    for i in range(3):
        make_run(root, i, units=16, accuracy=0.90 + i / 100, repeat=i)
        make_run(root, 10 + i, units=16, accuracy=0.50 + i / 100, repeat=i, kind="kfold", kfold=folds)
    items = as_json(root, "--group-by", UNITS)
    assert [(i["kind"], i["n"]) for i in items] == [("train", 3), ("kfold", 3)]
    assert items[0]["test_accuracy"]["mean"] == pytest.approx(0.91)
    assert items[1]["test_accuracy"]["mean"] == pytest.approx(0.51)
    result = invoke("compare", root, "--group-by", UNITS)
    assert "by model.layers.0.Dense.units and kind" in result.stdout
    assert "the groups split by kind too (train, kfold): runs of different kinds are never averaged" in result.stdout
    # with kind itself a key nothing more needs saying
    result = invoke("compare", root, "--group-by", f"kind,{UNITS}")
    assert "split by kind" not in result.stdout and result.exit_code == 0


def test_kfold_groups_over_the_same_folds_are_paired(tmp_path):
    root = tmp_path / "runs"
    per_fold = {16: [0.80, 0.84, 0.79, 0.83, 0.81], 64: [0.86, 0.88, 0.85, 0.90, 0.86]}

    def kfold(values, seed=0, shuffle=False):
        # as nnlab kfold writes it: the folds, and their mean (the run's val_accuracy)
        return {"k": len(values), "shuffle": shuffle, "seed": seed,
                "folds": [{"fold": i + 1, "status": "completed", "validation": {"accuracy": v, "loss": 1 - v}}
                          for i, v in enumerate(values)],
                "mean": {"accuracy": statistics.mean(values), "loss": 1 - statistics.mean(values)}}

    for n, units in enumerate(per_fold):
        make_run(root, n, units=units, accuracy=None, kind="kfold", kfold=kfold(per_fold[units]))
    items = by_units(as_json(root, "--group-by", UNITS, "--versus", "16", "--metric", "val_accuracy"))
    versus = items[64]["versus"]
    paired = stats.ttest_rel(per_fold[64], per_fold[16])
    assert versus["paired"] is True and versus["n"] == 5
    assert versus["p_t"] == pytest.approx(paired.pvalue, rel=1e-10)
    assert versus["p_rank"] == pytest.approx(stats.wilcoxon(per_fold[64], per_fold[16]).pvalue, rel=1e-10)
    interval = paired.confidence_interval(0.95)
    assert (versus["ci_low"], versus["ci_high"]) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert "same folds (k=5, not shuffled)" in versus["pairing"]
    result = invoke("compare", root, "--group-by", UNITS, "--versus", "16", "--metric", "val_accuracy")
    assert "paired t p = " in result.stdout and "over 5 shared folds" in result.stdout
    assert "paired t, Wilcoxon (5 folds)" in result.stdout
    # Shuffled with different seeds, the folds differ: repeats of each, tested unpaired (Welch).
    other = tmp_path / "other"
    for n, units in enumerate(per_fold):
        for repeat in range(2):
            make_run(other, 10 * n + repeat, units=units, accuracy=None, kind="kfold", repeat=repeat,
                     kfold=kfold([v + repeat / 100 for v in per_fold[units]], seed=repeat, shuffle=True))
    versus = by_units(as_json(other, "--group-by", UNITS, "--versus", "16", "--metric", "val_accuracy"))[64]["versus"]
    assert versus["paired"] is False and "not paired" in versus["pairing"]
    means = {u: [statistics.mean(per_fold[u]) + r / 100 for r in range(2)] for u in per_fold}
    assert versus["p_t"] == pytest.approx(stats.ttest_ind(means[64], means[16], equal_var=False).pvalue, rel=1e-9)


def test_group_by_group_and_several_keys(widths):
    items = as_json(widths, "--group-by", "group")
    assert [i["group"] for i in items] == [f"{u:012x}" for u in sorted(ACCURACY)]
    items = as_json(widths, "--group-by", f"optimizer.name,{UNITS}", "--versus", "adam,16")
    assert {i[UNITS] for i in items} == set(ACCURACY) and all(i["optimizer.name"] == "adam" for i in items)
    assert by_units(items)[64]["versus"]["p_t"] is not None
    # groups ordered by a metric's mean, in its direction
    ordered = as_json(widths, "--group-by", UNITS, "--sort", "test_accuracy")
    assert [i[UNITS] for i in ordered] == [64, 128, 32, 16]


# -- bad input -------------------------------------------------------------------------------------------

def test_bad_input_exits_2_with_what_to_do(widths):
    result = invoke("compare", widths, "--group-by", "model.layers.0.Dense.unit")
    assert result.exit_code == 2 and "--group-by" in result.stderr
    assert "did you mean 'model.layers.0.Dense.units'" in result.stderr
    result = invoke("compare", widths, "--group-by", "datset")
    assert result.exit_code == 2 and "did you mean 'dataset'" in result.stderr
    result = invoke("compare", widths, "--group-by", UNITS, "--versus", "17")
    assert result.exit_code == 2 and "--versus 17" in result.stderr
    assert "no group has model.layers.0.Dense.units=17 (the groups are: 16, 32, 64, 128)" in result.stderr
    result = invoke("compare", widths, "--versus", "16")
    assert result.exit_code == 2 and "add --group-by KEY" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
    result = invoke("compare", widths, "--group-by", UNITS, "--versus", "16", "--metric", "test_acuracy")
    assert result.exit_code == 2 and "did you mean 'test_accuracy'" in result.stderr


# -- formats and the terminal ----------------------------------------------------------------------------

def test_json_shape(widths):
    items = as_json(widths, "--group-by", UNITS, "--versus", "16")
    for item in items:
        assert {UNITS, "kind", "n", "runs", "test_accuracy", "versus"} <= set(item)
        assert {"mean", "std", "ci_low", "ci_high", "min", "max", "values", "n"} <= set(item["test_accuracy"])
    versus = by_units(items)[64]["versus"]
    assert {"reference", "metric", "difference", "ci_low", "ci_high", "p_t", "p_rank", "p_holm", "hedges_g",
            "tests", "says"} <= set(versus)
    assert versus["says"].startswith("units=64 beats units=16")
    assert "versus" not in as_json(widths, "--group-by", UNITS)[0]  # only when asked
    result = invoke("compare", widths, "--group-by", UNITS, "--format", "markdown")
    lines = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 4 and len({line.count("|") for line in lines}) == 1


def on_terminal(width: int, *args) -> tuple[str, str]:
    env = {"COLUMNS": str(width), "TTY_COMPATIBLE": "1", "NO_COLOR": "1", "FORCE_COLOR": None}
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)


def test_the_group_tables_fit_80_columns_whole(widths):
    from test_views_width import assert_readable

    args = ("compare", widths, "--group-by", UNITS, "--versus", "16", "--columns", "test_accuracy,test_loss")
    full = invoke(*args).stdout
    out, _ = on_terminal(80, *args)
    assert "…" not in out
    assert all(len(line.rstrip()) <= 80 for line in out.splitlines()), out
    tables = assert_readable(out, full, 80)
    assert len(tables) > 2  # the two metrics' columns went to tables of their own, each led by units and n
    assert all(t.headers[:2] == ["units", "n"] for t in tables if "n" in t.headers)
    assert "0.9719 ± 0.0023" in out and "0.9691 to 0.9747" in out


# -- what it imports -------------------------------------------------------------------------------------

def test_group_by_imports_neither_keras_nor_scipy_unless_a_figure_needs_it(tmp_path, widths):
    single = tmp_path / "single"
    for units in (16, 32):
        make_run(single, units, units=units, accuracy=0.9)
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from nnlab.cli import app\n"
        "r = CliRunner().invoke(app, sys.argv[1:])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'scipy', 'numpy'}\n"
        "             | {m for m in sys.modules} & {'scipy.stats'}))\n"
    )

    def heavy(*args):
        done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert heavy("compare", widths) == "[]"  # the plain listing: no numpy, no scipy
    assert heavy("compare", single, "--group-by", UNITS) == "[]"  # one run a group: no interval to compute
    # Intervals take Student t's quantile from scipy.special; scipy.stats only when a test is asked for.
    assert heavy("compare", widths, "--group-by", UNITS) == "['numpy', 'scipy']"
    assert heavy("compare", widths, "--rows", UNITS, "--cols", "name") == "['numpy', 'scipy']"
    assert heavy("compare", widths, "--group-by", UNITS, "--versus", "16") == "['numpy', 'scipy', 'scipy.stats']"

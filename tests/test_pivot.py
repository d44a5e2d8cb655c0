"""``nnlab compare --rows KEY --cols KEY``, ``--format latex`` and ``--group-by ... --plot``: the
pivot's cells against statistics on the same values, the best of each column, LaTeX that
parses as a tabular of the right shape with its special characters escaped, and each group's
mean curve with its band."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from pathlib import Path

import pytest

from nnlab.stats import mean_curve
from test_groups import ACCURACY, UNITS, invoke, make_run, write_widths

#: A second dataset's accuracies per width (its best width is 32, not 64).
OTHER = {16: [0.81, 0.83, 0.82], 32: [0.88, 0.86], 64: [0.84, 0.85, 0.86]}


@pytest.fixture
def grid(tmp_path) -> Path:
    root = write_widths(tmp_path / "runs")
    number = 100
    for units, values in OTHER.items():
        for repeat, accuracy in enumerate(values):
            number += 1
            make_run(root, number, units=units, accuracy=accuracy, repeat=repeat, seed=repeat, name="fashion_mnist")
    return root


def run_ok(*args) -> str:
    result = invoke("compare", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def cell(values: list[float]) -> str:
    std = f"{statistics.stdev(values):.4f}" if len(values) > 1 else "-"
    return f"{statistics.mean(values):.4f} ± {std} ({len(values)})"


def test_pivot_cells_are_mean_std_n_and_the_best_of_each_column_is_marked(grid):
    out = run_ok(grid, "--rows", UNITS, "--cols", "name")
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert set(lines) == {"16", "32", "64", "128"}
    for units, values in ACCURACY.items():
        assert cell(values) in lines[str(units)]
    for units, values in OTHER.items():
        assert cell(values) in lines[str(units)]
    assert "-" == lines["128"].split()[-1]  # no fashion_mnist run of 128 units
    # The best of each column carries the star: 64 units for digits, 32 for fashion_mnist.
    assert lines["64"].count("*") == 1 and cell(ACCURACY[64]) + " *" in lines["64"]
    assert cell(OTHER[32]) + " *" in lines["32"]
    assert "*" not in lines["16"] + lines["128"]
    assert "highest mean of each column" in out


def test_pivot_best_follows_the_metrics_direction(grid):
    # Loss is 1 - accuracy here: the lowest loss is the best, in the same cells as the highest accuracy.
    out = run_ok(grid, "--rows", UNITS, "--cols", "name", "--metric", "test_loss", "--format", "markdown")
    bold = re.findall(r"\*\*([^*]+)\*\*", out.split("\n\n", 1)[1])
    losses = {units: [1 - a for a in values] for units, values in ACCURACY.items()}
    others = {units: [1 - a for a in values] for units, values in OTHER.items()}
    assert sorted(bold) == sorted([cell(losses[64]), cell(others[32])])
    assert "lowest mean of each column" in out


def test_pivot_json_and_csv_carry_every_figure(grid):
    items = json.loads(run_ok(grid, "--rows", UNITS, "--cols", "name", "--format", "json"))
    assert len(items) == 4 + 3
    for item in items:
        values = (ACCURACY if item["name"] == "digits" else OTHER)[item[UNITS]]
        figures = item["test_accuracy"]
        assert figures["values"] == values and item["n"] == len(values) == len(item["runs"])
        assert figures["mean"] == pytest.approx(statistics.mean(values))
        if len(values) > 1:
            assert figures["std"] == pytest.approx(statistics.stdev(values))
        assert item["best"] == ((item["name"], item[UNITS]) in {("digits", 64), ("fashion_mnist", 32)})
    rows = list(csv.DictReader(io.StringIO(run_ok(grid, "--rows", UNITS, "--cols", "name", "--format", "csv"))))
    assert len(rows) == 7 and set(rows[0]) >= {UNITS, "name", "n", "test_accuracy_mean", "test_accuracy_std", "best"}
    first = next(r for r in rows if r["name"] == "fashion_mnist" and r[UNITS] == "32")
    assert float(first["test_accuracy_mean"]) == pytest.approx(0.87) and first["best"] == "true"


def parse_tabular(text: str) -> tuple[str, list[list[str]]]:
    """A booktabs tabular's column spec and its rows of cells (header first), as LaTeX splits them:
    rows end in ``\\\\``, cells are split on ``&`` that is not escaped."""
    match = re.search(r"\\begin\{tabular\}\{([lrc]+)\}\n\\toprule\n(.*?)\\bottomrule\n\\end\{tabular\}", text, re.S)
    assert match, text
    spec, body = match.groups()
    rows = []
    for line in body.splitlines():
        if line == r"\midrule":
            continue
        assert line.endswith(r" \\"), line
        rows.append([c.strip() for c in re.split(r"(?<!\\)&", line[:-3])])
    return spec, rows


def test_latex_group_table_and_pivot_parse_as_tabulars_of_the_right_shape(grid):
    out = run_ok(grid, "--group-by", UNITS, "--filter", "name=digits", "--format", "latex")
    spec, rows = parse_tabular(out)
    assert len(rows) == 1 + len(ACCURACY)  # the header and one row per group
    assert all(len(r) == len(spec) == 2 + 4 for r in rows)  # units, n, and the metric's four columns
    assert rows[0] == ["units", "n", r"test\_accuracy", r"95\% CI", "min", "max"]
    assert spec.startswith("rr") and rows[3][2] == rf"{statistics.mean(ACCURACY[64]):.4f} \ensuremath{{\pm}} " \
                                                   f"{statistics.stdev(ACCURACY[64]):.4f}"
    assert "note:" not in out  # notes go to stderr, the tabular can be pasted as it is
    pivot = run_ok(grid, "--rows", UNITS, "--cols", "name", "--format", "latex")
    spec, rows = parse_tabular(pivot)
    assert len(spec) == 3 and len(rows) == 5 and all(len(r) == 3 for r in rows)
    assert rows[0] == ["units", "name=digits", r"name=fashion\_mnist"]
    bold = {(r[0], i) for r in rows for i, c in enumerate(r) if c.startswith(r"\textbf{")}
    assert bold == {("64", 1), ("32", 2)}  # digits' best is 64 units, fashion_mnist's 32


def test_latex_escapes_what_latex_reads_as_commands(tmp_path):
    root = tmp_path / "runs"
    for number, name in enumerate(["a&b_c", "50%#{x}", "tilde~hat^"], start=1):
        make_run(root, number, units=16, accuracy=0.9, name=name)
        make_run(root, number + 10, units=16, accuracy=0.8, name=name)
    out = run_ok(root, "--group-by", "name", "--format", "latex")
    _, rows = parse_tabular(out)
    names = sorted(r[0] for r in rows[1:])
    assert names == sorted([r"a\&b\_c", r"50\%\#\{x\}", r"tilde\textasciitilde{}hat\textasciicircum{}"])
    assert all(len(r) == len(rows[0]) for r in rows)  # no & split a cell
    plain = run_ok(root, "--format", "latex")  # the runs table too
    _, rows = parse_tabular(plain)
    assert len(rows) == 7 and len({len(r) for r in rows}) == 1


def test_pivot_bad_options_are_refused_with_exit_2(grid):
    cases = [
        (["--rows", UNITS], "--cols is missing"),
        (["--cols", "name"], "--rows is missing"),
        (["--rows", UNITS, "--cols", "name", "--group-by", "name"], "--rows and --cols are the grouping"),
        (["--rows", UNITS, "--cols", "name", "--versus", "16"], "--group-by KEY --versus"),
        (["--rows", UNITS, "--cols", "name", "--columns", "test_loss"], "--metric"),
        (["--rows", UNITS, "--cols", UNITS], "the same key"),
        (["--rows", "model.layers.0.Dense.unit", "--cols", "name"], f"did you mean '{UNITS}'"),
        (["--rows", UNITS, "--cols", "nmae"], "did you mean"),
        (["--rows", UNITS, "--cols", "name", "--metric", "test_acuracy"], "test_accuracy"),
        (["--rows", UNITS, "--cols", "name", "--format", "tex"], "latex"),
    ]
    for args, says in cases:
        result = invoke("compare", grid, *args)
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_mean_curve_is_the_mean_and_std_of_the_runs_that_reached_each_epoch():
    curves = [[1.0, 0.5, 0.25, 0.2], [0.9, 0.6, 0.3], [1.1, 0.4, float("nan"), 0.1]]
    band = mean_curve(curves)
    assert band.epochs == [1, 2, 3, 4] and band.n == [3, 3, 2, 2]
    assert band.mean == pytest.approx([1.0, 0.5, 0.275, 0.15])
    assert band.std[0] == pytest.approx(statistics.stdev([1.0, 0.9, 1.1]))
    assert band.std[2] == pytest.approx(statistics.stdev([0.25, 0.3]))
    assert mean_curve([[0.5, 0.4]]).std == [None, None]


def test_group_plot_draws_one_band_per_group_with_its_n(grid, monkeypatch, tmp_path):
    for folder in grid.iterdir():
        epochs = 4 if folder.name.endswith("05Z_digits") else 5  # one run stopped early
        lines = ["epoch,loss,val_loss,val_accuracy"] + [f"{e},{1 / e},{1.2 / e},{0.9 - 0.1 / e}"
                                                         for e in range(1, epochs + 1)]
        (folder / "history.csv").write_text("\n".join(lines) + "\n")
    drawn = {}

    def record(bands, metric, path, **_):
        drawn.update(bands=bands, metric=metric)
        Path(path).write_bytes(b"\x89PNG")
        return Path(path)

    monkeypatch.setattr("nnlab.plots.group_curves", record)
    figure = tmp_path / "groups.png"
    result = invoke("compare", grid, "--group-by", UNITS, "--filter", "name=digits", "--versus", "16",
                    "--plot", figure)
    assert result.exit_code == 0, result.output
    # With --versus the compared test metric is drawn as its validation curve.
    assert drawn["metric"] == "val_accuracy"
    labels = [b[0] for b in drawn["bands"]]
    assert labels == [f"units={u} (n = {len(v)})" for u, v in ACCURACY.items()]
    assert f"4 group curves of {drawn['metric']} (mean ± 1 std): {figure}" in result.output
    assert "ran 4 to 5 epochs" in result.output  # the group with the early stop says so


def test_group_plot_writes_a_png(grid, tmp_path):
    for folder in grid.iterdir():
        lines = ["epoch,loss,val_loss"] + [f"{e},{1 / e},{1.2 / e}" for e in range(1, 6)]
        (folder / "history.csv").write_text("\n".join(lines) + "\n")
    figure = tmp_path / "bands.png"
    run_ok(grid, "--group-by", UNITS, "--plot", figure)
    assert figure.read_bytes()[:4] == b"\x89PNG" and figure.stat().st_size > 10_000

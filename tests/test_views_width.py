"""``nnlab compare`` and ``nnlab show`` on the real 0.1.0 run folders, as a terminal 80 and 120
columns wide shows them: no column shrunk to nothing, no number or word cut, no header
broken, nothing lost without a note.

The CLI runs in-process with COLUMNS set and TTY_COMPATIBLE=1, so rich takes the captured
stdout for a terminal of that width: the code path a user at a terminal gets (compare lays
a pipe out at full width instead). Each narrow rendering is checked against the full-width
one (compare piped, show at 1000 columns).
"""

from __future__ import annotations

import itertools
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.cells import cell_len, chop_cells
from typer.testing import CliRunner

from nnlab.cli import app

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs_v0_1_0"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
BOX = "│┃─━┏┓┗┛┡┩┣┫╇╈┳┻╋├┤┬┴┼└┘┌┐╭╮╰╯═║╞╡╪"
TOKEN_SPLIT = re.compile(rf"[\s{re.escape(BOX)}]+")
WIDTHS = (80, 120)

TRAIN, INTERRUPTED = "20261201T082845Z_digits", "20261201T082852Z_digits"
KFOLD, KFOLD_FINAL = "20261201T082859Z_digits_kfold", "20261201T082905Z_digits_kfold"
SWEEP, TRIAL = "20261201T082914Z_digits_sweep", "20261201T082914Z_digits"
FAILED, DIVERGED = "20261201T082923Z_digits", "20261201T082929Z_digits"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A copy of the fixture runs root (compare writes its index into it)."""
    runs = tmp_path_factory.mktemp("width") / "runs"
    shutil.copytree(FIXTURES, runs)
    return runs


def render(root: Path, monkeypatch, *args: str, width: int | None) -> tuple[str, str]:
    """stdout and stderr (escape codes removed) of ``nnlab ARGS`` on a terminal ``width`` wide,
    or piped (``width`` None)."""
    monkeypatch.chdir(root.parent)  # paths print as runs/...: short, as from a project folder
    env = ({"COLUMNS": str(width), "TTY_COMPATIBLE": "1", "NO_COLOR": "1", "FORCE_COLOR": None} if width else
           {"COLUMNS": None, "TTY_COMPATIBLE": "0", "FORCE_COLOR": None})
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)


# -- the checks -------------------------------------------------------------------------------------

@dataclass
class Table:
    """A table parsed back from text: its headers and, per column, the cell of every line."""

    headers: list[str]
    columns: list[list[str]]


def tokens(text: str) -> list[str]:
    """Words, numbers and paths: the text split at blanks and box-drawing lines."""
    return [t for t in TOKEN_SPLIT.split(text) if t]


def cut_tokens(narrow: str, full: str) -> list[str]:
    """Tokens of the narrow rendering that the full-width one lacks: a number or word
    truncated (``0.9…``, ``0.32``), folded (``val_acc`` + ``uracy``), or a header cut."""
    whole = set(tokens(full))
    return [t for t in tokens(narrow) if t not in whole]


def ellipsized(text: str) -> list[str]:
    """Tokens ending or starting in '…' (a lone '…', the gap row of skipped epochs, is fine)."""
    return [t for t in tokens(text) if "…" in t and t != "…"]


def split_words(text: str, width: int) -> list[str]:
    """Words a terminal ``width`` wide splits across two lines: lines longer than the terminal
    wrap at exactly ``width`` cells, wherever that falls."""
    broken = []
    for line in text.splitlines():
        if cell_len(line) <= width:
            continue
        pieces = chop_cells(line, width)
        for before, after in itertools.pairwise(pieces):
            if before[-1:].strip() and after[:1].strip():
                broken.append(before.split()[-1] + "|" + after.split()[0])
    return broken


def parse_tables(text: str) -> list[Table]:
    """The tables in a rendering: rich's boxed ones (show) and ``box.SIMPLE_HEAD`` ones (compare)."""
    lines = text.splitlines()
    tables = []
    for n, line in enumerate(lines):
        if line.lstrip().startswith("┏"):
            tables.append(_boxed(lines, n))
        elif line.strip() and set(line.strip()) == {"─"} and n > 0 and lines[n - 1].strip():
            tables.append(_simple(lines, n))
    return tables


def _boxed(lines: list[str], top: int) -> Table:
    """The boxed table whose top edge is ``lines[top]``: columns lie between its ┳ marks."""
    header_lines, body = [], []
    for line in lines[top + 1:]:
        mark = line.lstrip()[:1]
        if mark == "┃":
            header_lines.append(line)
        elif mark == "│":
            body.append(line)
        elif mark not in ("┡", "├"):
            break
    edge = lines[top]
    bounds = [i for i, ch in enumerate(edge) if ch in "┏┳┓"]
    if not edge.rstrip().endswith("┓"):  # a table cut at the right (as 0.1.0 wrote summary.txt)
        bounds.append(max(map(len, [edge, *header_lines, *body])))

    def cells(line: str) -> list[str]:
        return [line[a + 1:b].strip() for a, b in itertools.pairwise(bounds)]

    heads = [" ".join(parts).strip() for parts in zip(*map(cells, header_lines))] if header_lines else []
    return Table(heads, [list(column) for column in zip(*map(cells, body))] if body else [[] for _ in heads])


def _simple(lines: list[str], rule: int) -> Table:
    """The table whose header rule is ``lines[rule]``: columns are what the blank gutters
    (blank on every line, header included) leave between them."""
    header = lines[rule - 1]
    body = []
    for line in lines[rule + 1:]:
        if not line.strip() or (set(line.strip()) == {"─"}):
            break
        body.append(line)
    if body and len(lines) > rule + len(body) + 1 and set(lines[rule + len(body) + 1].strip()) == {"─"}:
        body = body[:-1]  # the next table's header
    block = [header, *body]
    width = max(map(len, block))
    block = [line.ljust(width) for line in block]
    blank = [all(line[i] == " " for line in block) for i in range(width)]
    spans, start = [], None
    for i, gutter in enumerate([*blank, True]):
        if not gutter and start is None:
            start = i
        elif gutter and start is not None:
            spans.append((start, i))
            start = None
    return Table([block[0][a:b].strip() for a, b in spans], [[line[a:b].strip() for line in block[1:]]
                                                              for a, b in spans])


def empty_columns(tables: list[Table]) -> list[str]:
    """Headers whose cells are all blank or '…': a column shrunk to nothing."""
    return [h for t in tables for h, cells in zip(t.headers, t.columns)
            if h and cells and all(c in ("", "…") for c in cells)]


def broken_headers(narrow: list[Table], full: list[Table]) -> list[str]:
    """Headers (their lines joined) that no full-width table has: broken inside a word, or cut."""
    whole = {h for t in full for h in t.headers}
    return [h for t in narrow for h in t.headers if h and h not in whole]


def assert_readable(narrow: str, full: str, width: int) -> list[Table]:
    """Every check at once; returns the narrow rendering's tables."""
    tables = parse_tables(narrow)
    problems = {
        "cut or folded tokens": cut_tokens(narrow, full),
        "ellipsized": ellipsized(narrow),
        "words split across lines": split_words(narrow, width),
        "empty columns": empty_columns(tables),
        "broken headers": broken_headers(tables, parse_tables(full)),
    }
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, f"at {width} columns: {problems}\n{narrow}"
    return tables


# -- the checks catch what they are for ------------------------------------------------------------

def test_the_checks_catch_cut_numbers_empty_columns_and_broken_words():
    full = ("run_id     status      test_accuracy   best_val_loss\n"
            "──────────────────────────────────────────────────\n"
            "run_a      completed          0.9512          0.2345\n")
    # as rich squeezes a table: ellipsized headers and numbers, or a header folded mid-word
    squeezed = ("run_id     status      test_…   best…\n"
                "─────────────────────────────────────\n"
                "run_a      completed   0.95…    0.2…\n")
    assert ellipsized(squeezed) and cut_tokens(squeezed, full)
    cropped = "run_id   status      test_accuracy\n──────────────────────────\nrun_a    completed   0.95\n"
    assert cut_tokens(cropped, full) == ["0.95"]
    folded = "┏━━━━━━━━━━┓\n┃ test_acc ┃\n┃ uracy    ┃\n┡━━━━━━━━━━┩\n│   0.9512 │\n└──────────┘\n"
    assert broken_headers(parse_tables(folded), parse_tables(full)) == ["test_acc uracy"]
    empty = ("run_id    status      test_accuracy\n"
             "────────────────────────────────────\n"
             "run_a     completed                \n")
    assert empty_columns(parse_tables(empty)) == ["test_accuracy"]
    assert empty_columns(parse_tables("┏━━━━━━━┳━━━┓\n┃ epoch ┃ x ┃\n┡━━━━━━━╇━━━┩\n│     … │   │\n└───────┴───┘\n"))
    assert split_words("x" * 70 + " baseline_accuracy", 80) == ["baseline_|accuracy"]  # the terminal wraps at 80
    assert not split_words("x" * 79 + " word", 80)  # broken at the blank: fine
    table = parse_tables(full)[0]
    assert table.headers == ["run_id", "status", "test_accuracy", "best_val_loss"]
    assert not (ellipsized(full) or empty_columns([table]) or split_words(full, 80))


# -- compare -----------------------------------------------------------------------------------------

NOTE = re.compile(r"note: (\d+) more columns? \((.*?)\): widen the terminal or pick them with --columns (\S+)")


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_of_every_kind_fits_the_terminal(root, monkeypatch, width):
    full, full_err = render(root, monkeypatch, "compare", "--runs-dir", "runs", width=None)
    assert "note:" not in full_err  # a pipe gets every column, at full width
    (full_table,) = parse_tables(full)
    columns = [h for h in full_table.headers if h]  # ('started' reads as two: date and time)
    out, err = render(root, monkeypatch, "compare", "--runs-dir", "runs", width=width)
    (table,) = assert_readable(out, full, width)
    assert all(cell_len(line.rstrip()) <= width for line in out.splitlines())
    shown = [h for h in table.headers if h]
    assert shown[:2] == ["run_id", "status"] or shown[:3] == ["run_id", "kind", "status"]
    assert "test_accuracy" in shown and "baseline_accuracy" in shown
    assert len(table.columns[0]) == 9  # every run is listed
    # What did not fit is named in one note, with the way to get it.
    note = " ".join(err.split())
    match = NOTE.search(note)
    assert match, err
    hidden, listed = int(match.group(1)), [n for n in match.group(2).split(", ") if n != "..."]
    assert len(shown) + hidden == len(columns)
    assert set(listed) <= set(columns) - set(shown) and listed
    assert match.group(3).split(",")[1] == listed[0]


# -- show --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("run", [TRAIN, KFOLD, KFOLD_FINAL, SWEEP, TRIAL, FAILED, INTERRUPTED, DIVERGED])
def test_show_of_every_kind_is_readable_at_80_and_120_columns(root, monkeypatch, run):
    full, _ = render(root, monkeypatch, "show", run, "--runs-dir", "runs", width=1000)
    for width in WIDTHS:
        out, _ = render(root, monkeypatch, "show", run, "--runs-dir", "runs", width=width)
        tables = assert_readable(out, full, width)
        assert "per epoch" in out or run in (SWEEP,)
        if run in (KFOLD, KFOLD_FINAL):
            folds = next(t for t in tables if t.headers[:1] == ["fold"])
            assert folds.headers == ["fold", "epochs", "val_accuracy", "val_loss"]
            assert folds.columns[0] == ["1", "2", "mean", "std"]
            assert folds.columns[3] == ["2.1454", "2.1717", "2.1586", "0.0131"]
            epochs = [t for t in tables if t.headers[:1] == ["epoch"]]
            shown = {h for t in epochs for h in t.headers[1:]}
            assert shown == {"loss", "val_loss", "accuracy", "val_accuracy"}  # every metric, mean ± std
            assert "2.1586 ± 0.0131" in out

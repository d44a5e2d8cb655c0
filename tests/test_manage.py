"""Run management: ``nnlab tag``, ``note``, ``rm`` (the trash, ``--list``, ``--purge``) and ``restore``,
and what compare, show and report make of tags, notes and removed runs. Run folders are
written directly (no training)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnlab.cli import app
from nnlab.store.format import INDEX, METRICS, TAGS, TRASH, TRASH_RECORD_SUFFIX

from conftest import assert_imports_nothing_heavy
from test_compare import make_run

A, B, C = "20250101T100000Z_alpha", "20250101T110000Z_beta", "20250101T120000Z_gamma"


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)


@pytest.fixture
def runs(tmp_path) -> Path:
    """A runs root of three finished runs (gamma failed)."""
    root = tmp_path / "runs"
    make_run(root, "20250101T100000Z", "alpha", test={"loss": 0.40, "accuracy": 0.91})
    make_run(root, "20250101T110000Z", "beta", test={"loss": 0.20, "accuracy": 0.95})
    make_run(root, "20250101T120000Z", "gamma", test={"loss": 0.70, "accuracy": 0.72}, status="failed")
    return root


def listed(runs: Path, *args) -> list[dict]:
    """compare's rows as CSV (run ids and the columns asked for)."""
    result = invoke("compare", runs, "--format", "csv", *args)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (the index left out: a listing may rewrite it)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != INDEX}


def one_error(result) -> str:
    """The one error line of a refused command (exit code 2), without a traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


# -- tags -----------------------------------------------------------------------------------------

def test_tags_are_set_and_removed_beside_metrics_json_which_is_never_rewritten(runs):
    metrics = (runs / A / METRICS).read_bytes()
    result = invoke("tag", A, B[:18], "lesson=4", "student=ann", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert f"tagged {runs / A}: lesson=4, student=ann" in result.stdout.replace(str(Path.cwd()) + "/", "")
    saved = json.loads((runs / A / TAGS).read_text())
    assert saved["tags"] == {"lesson": "4", "student": "ann"} and saved["updated"]
    assert (runs / A / METRICS).read_bytes() == metrics
    assert json.loads((runs / B / TAGS).read_text())["tags"] == {"lesson": "4", "student": "ann"}

    result = invoke("tag", A, "--remove", "student", "--remove", "colour", "lesson=5", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert "lesson=5" in result.stdout and "it had no tag colour" in result.stdout
    assert json.loads((runs / A / TAGS).read_text())["tags"] == {"lesson": "5"}
    assert invoke("tag", A, "--runs-dir", runs).stdout.strip().endswith(": lesson=5")  # no change: prints them
    invoke("tag", A, "--remove", "lesson", "--runs-dir", runs)
    assert not (runs / A / TAGS).exists()  # nothing left: no file
    assert (runs / A / METRICS).read_bytes() == metrics


@pytest.mark.parametrize("args, says", [
    (["bad key=4"], "'bad key' is not a tag key"),
    (["=4"], "'' is not a tag key"),
    (["lesson>3=4"], "'lesson>3' is not a tag key"),
    (["tag.=4"], "'tag.' is not a tag key"),
    (["lesson="], "tag lesson has no value"),
    (["lesson=" + "x" * 201], "at most 200"),
    (["lesson=a\tb"], "one line of text"),
    (["--remove", "a=b"], "'a=b' is not a tag key"),
    (["lesson=4", "--remove", "lesson"], "both set and removed"),
    (["--filter", "lesson"], "expected KEY=VALUE"),
])
def test_bad_tags_are_refused_with_one_message_and_change_nothing(runs, args, says):
    before = tree(runs)
    error = one_error(invoke("tag", A, *args, "--runs-dir", runs))
    assert says in error, error
    assert tree(runs) == before


def test_tag_needs_runs_and_names_a_missing_one(runs):
    assert "name the runs" in one_error(invoke("tag", "lesson=4", "--runs-dir", runs))
    assert "no run 'nosuch'" in one_error(invoke("tag", "nosuch", "lesson=4", "--runs-dir", runs))


def test_compare_filters_sorts_and_groups_by_tags(runs):
    invoke("tag", A, "lesson=4", "student=ann", "--runs-dir", runs)
    invoke("tag", B, "lesson=10", "student=bob", "--runs-dir", runs)
    invoke("tag", C, "lesson=4", "student=ann", "--runs-dir", runs)
    assert [r["run_id"] for r in listed(runs, "--filter", "tag.lesson=4")] == [A, C]
    assert [r["run_id"] for r in listed(runs, "--filter", "tag.lesson>5")] == [B]  # numbers compare as numbers
    assert [r["run_id"] for r in listed(runs, "--filter", "tag.student=b*")] == [B]
    rows = listed(runs, "--sort", "tag.lesson", "--asc", "--columns", "run_id,tag.lesson,tags")
    assert [r["tag.lesson"] for r in rows] == ["4", "4", "10"]
    assert json.loads(rows[0]["tags"]) == {"lesson": "4", "student": "ann"}
    assert "tags" in listed(runs)[0]  # a default column once runs have tags

    grouped = invoke("compare", runs, "--group-by", "tag.student", "--filter", "status=*", "--format", "json")
    assert grouped.exit_code == 0, grouped.output
    assert {g["tag.student"]: g["runs"] for g in json.loads(grouped.stdout)} == {"ann": [A, C], "bob": [B]}

    error = one_error(invoke("compare", runs, "--filter", "tag.lessn=4"))
    assert "no run has the tag 'lessn'" in error and "did you mean 'tag.lesson'" in error


def test_a_changed_tag_is_seen_through_the_index(runs):
    invoke("tag", A, "lesson=4", "--runs-dir", runs)
    assert [r["run_id"] for r in listed(runs, "--filter", "tag.lesson=4")] == [A]
    index = json.loads((runs / INDEX).read_text())
    assert index["folders"][A]["tags"]["tag.lesson"] == "4"  # cached under tags.json's own signature
    metrics_mtime = (runs / A / METRICS).stat().st_mtime_ns
    invoke("tag", A, "lesson=5", "--runs-dir", runs)
    assert (runs / A / METRICS).stat().st_mtime_ns == metrics_mtime
    assert listed(runs, "--filter", "tag.lesson=4") == []
    assert [r["run_id"] for r in listed(runs, "--filter", "tag.lesson=5")] == [A]
    (runs / A / TAGS).unlink()  # removed by hand
    assert "tag.lesson" not in listed(runs, "--columns", "all")[0]


def test_a_damaged_tags_file_never_stops_a_listing_and_is_not_overwritten(runs):
    (runs / A / TAGS).write_text('{"tags": {"lesson": "4"')
    (runs / B / TAGS).write_text(json.dumps({"tags": {"ok": "1", "bad key": "2", "nested": {"a": 1}}, "note": 3}))
    result = invoke("compare", runs, "--format", "csv", "--columns", "run_id,tag.ok")
    assert result.exit_code == 0, result.output
    assert [r["run_id"] for r in csv.DictReader(io.StringIO(result.stdout))] == [A, B, C]
    assert f"{A}: {TAGS} is not valid JSON" in result.stderr
    assert f"{B}: {TAGS}: left out what is not well formed: tag 'bad key', tag 'nested', note" in result.stderr
    assert "1" in result.stdout  # B's good tag is kept
    shown = invoke("show", A, "--runs-dir", runs)
    assert shown.exit_code == 0 and "is not valid JSON" in shown.stdout
    damaged = (runs / A / TAGS).read_bytes()
    assert "fix or delete it first" in one_error(invoke("tag", A, C, "lesson=5", "--runs-dir", runs))
    assert (runs / A / TAGS).read_bytes() == damaged and not (runs / C / TAGS).exists()  # all or none


def test_tag_chooses_runs_with_compare_s_filter(runs):
    result = invoke("tag", "reviewed=yes", "--filter", "status=completed", "--runs-dir", runs, "--dry-run")
    assert result.exit_code == 0 and "would tag" in result.stdout and "nothing was changed" in result.stdout
    assert not any((runs / r / TAGS).exists() for r in (A, B, C))
    assert invoke("tag", "reviewed=yes", "--filter", "status=completed", "--runs-dir", runs).exit_code == 0
    assert [r["run_id"] for r in listed(runs, "--filter", "tag.reviewed=yes")] == [A, B]
    # With RUN: those of them that match.
    assert invoke("tag", A, C, "step=2", "--filter", "status=failed", "--runs-dir", runs).exit_code == 0
    assert [r["run_id"] for r in listed(runs, "--filter", "tag.step=2")] == [C]
    nothing = invoke("tag", "x=1", "--filter", "name=nosuch", "--runs-dir", runs)
    assert nothing.exit_code == 0 and "no runs match the filters" in nothing.stderr


# -- notes ----------------------------------------------------------------------------------------

def test_a_note_is_set_appended_printed_and_cleared(runs):
    metrics = (runs / A / METRICS).read_bytes()
    assert invoke("note", A, "dropout helps", "--runs-dir", runs).exit_code == 0
    assert invoke("note", A, "try 0.3 next", "--append", "--runs-dir", runs).exit_code == 0
    assert invoke("note", A, "--runs-dir", runs).stdout == "dropout helps\ntry 0.3 next\n"
    invoke("tag", A, "lesson=4", "--runs-dir", runs)
    assert json.loads((runs / A / TAGS).read_text())["note"] == "dropout helps\ntry 0.3 next"
    assert invoke("note", A, "replaced", "--runs-dir", runs).exit_code == 0
    assert listed(runs, "--columns", "run_id,note")[0]["note"] == "replaced"
    assert invoke("note", A, "--clear", "--runs-dir", runs).exit_code == 0
    assert json.loads((runs / A / TAGS).read_text()) == {"tags": {"lesson": "4"},
                                                          "updated": json.loads((runs / A / TAGS).read_text())["updated"]}
    assert "has no note" in invoke("note", A, "--runs-dir", runs).stdout
    assert (runs / A / METRICS).read_bytes() == metrics
    assert "the note is empty" in one_error(invoke("note", A, "  ", "--runs-dir", runs))
    assert "--clear removes the note" in one_error(invoke("note", A, "x", "--clear", "--runs-dir", runs))
    assert "at most 10,000" in one_error(invoke("note", A, "x" * 10_001, "--runs-dir", runs))


def test_show_and_report_show_tags_and_the_note(runs, tmp_path):
    invoke("tag", A, "lesson=4", "student=<ann>", "--runs-dir", runs)
    invoke("note", A, "first line\nsecond <line>", "--runs-dir", runs)
    shown = invoke("show", A, "--runs-dir", runs, env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "tags: lesson=4, student=<ann>" in shown.stdout
    assert "note: first line\n      second <line>" in shown.stdout

    page = tmp_path / "report.html"
    result = invoke("report", runs, "-o", page)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert '<span class="tag">student=&lt;ann&gt;</span>' in html and '<span class="tag">lesson=4</span>' in html
    assert "first line\nsecond &lt;line&gt;" in html  # escaped, its lines kept (pre-wrap)
    assert "lesson=4, student=&lt;ann&gt;" in html  # the runs table's tags column


# -- rm, the trash, restore -------------------------------------------------------------------------

def test_rm_moves_runs_to_the_trash_which_compare_report_and_last_skip(runs, tmp_path):
    files = tree(runs / C)
    result = invoke("rm", "last", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert "removed 1 run to the trash" in result.stdout
    assert not (runs / C).exists() and tree(runs / TRASH / C) == files
    record = json.loads((runs / TRASH / (C + TRASH_RECORD_SUFFIX)).read_text())
    assert record["run_id"] == C and record["removed"] and record["with_sweep"] is None
    assert [r["run_id"] for r in listed(runs)] == [A, B]
    assert invoke("show", "last", "--runs-dir", runs).stdout.count(B) >= 1
    result = invoke("report", runs, "-o", tmp_path / "r.html")
    assert result.exit_code == 0 and C not in (tmp_path / "r.html").read_text()

    listing = invoke("rm", "--list", "--runs-dir", runs)
    assert listing.exit_code == 0 and C in listing.stdout and "failed" in listing.stdout

    assert invoke("restore", C, "--runs-dir", runs).exit_code == 0
    assert tree(runs / C) == files and not (runs / TRASH / (C + TRASH_RECORD_SUFFIX)).exists()
    assert [r["run_id"] for r in listed(runs)] == [A, B, C]
    assert "is empty" in invoke("rm", "--list", "--runs-dir", runs).stdout


def test_restore_refuses_a_name_taken_again_and_the_trash_never_clashes(runs):
    import shutil

    copy = runs.parent / "copy"
    shutil.copytree(runs / A, copy)
    assert invoke("rm", A, "--runs-dir", runs).exit_code == 0
    shutil.copytree(copy, runs / A)  # a folder of that name again
    error = one_error(invoke("restore", A, "--runs-dir", runs))
    assert "exists again" in error and "nothing was restored" in error
    assert invoke("rm", A, "--runs-dir", runs).exit_code == 0  # removed again: it goes in as A~2
    assert (runs / TRASH / A).is_dir() and (runs / TRASH / f"{A}~2").is_dir()
    assert "in the trash as" in invoke("rm", "--list", "--runs-dir", runs).stdout
    assert invoke("restore", A, "--runs-dir", runs).exit_code == 0  # the latest removed
    assert not (runs / TRASH / f"{A}~2").exists() and (runs / A).is_dir()
    assert "exists again" in one_error(invoke("restore", A, "--runs-dir", runs))
    assert "is not in the trash" in one_error(invoke("restore", B, "--runs-dir", runs))


def test_purge_deletes_for_good_only_with_purge_and_older_than_chooses(runs):
    assert invoke("rm", A, B, "--runs-dir", runs).exit_code == 0
    record = runs / TRASH / (A + TRASH_RECORD_SUFFIX)
    old = json.loads(record.read_text())
    old["removed"] = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat(timespec="seconds")
    record.write_text(json.dumps(old))
    before = tree(runs)
    assert "add --purge" in one_error(invoke("rm", "--older-than", "30d", "--runs-dir", runs))
    assert "an age such as 30d" in one_error(invoke("rm", "--purge", "--older-than", "a month", "--runs-dir", runs))
    assert "not the runs named" in one_error(invoke("rm", C, "--purge", "--runs-dir", runs))
    dry = invoke("rm", "--purge", "--older-than", "30d", "--dry-run", "--runs-dir", runs)
    assert dry.exit_code == 0 and "would delete" in dry.stdout and tree(runs) == before
    result = invoke("rm", "--purge", "--older-than", "30d", "--runs-dir", runs)
    assert result.exit_code == 0 and "deleted 1 run for good" in result.stdout
    assert not (runs / TRASH / A).exists() and not record.exists() and (runs / TRASH / B).is_dir()
    assert "holds nothing removed more than 30d ago" in invoke("rm", "--purge", "--older-than", "30d",
                                                               "--runs-dir", runs).stdout
    assert invoke("rm", "--purge", "--runs-dir", runs).exit_code == 0
    assert os.listdir(runs / TRASH) == [] and (runs / C).is_dir()


def test_dry_run_changes_nothing(runs):
    before = tree(runs)
    result = invoke("rm", A, B, "--dry-run", "--runs-dir", runs)
    assert result.exit_code == 0 and result.stdout.count("would move") == 2
    assert tree(runs) == before and not (runs / TRASH).exists()
    invoke("rm", A, "--runs-dir", runs)
    before = tree(runs)
    assert "would restore" in invoke("restore", A, "--dry-run", "--runs-dir", runs).stdout
    assert invoke("note", B, "x", "--dry-run", "--runs-dir", runs).exit_code == 0
    assert tree(runs) == before


def test_rm_chooses_runs_with_compare_s_filter(runs):
    invoke("tag", A, "lesson=4", "--runs-dir", runs)
    result = invoke("rm", "--filter", "status=failed", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(runs / TRASH)) == [C, C + TRASH_RECORD_SUFFIX]
    assert invoke("rm", "--filter", "tag.lesson=4", "--runs-dir", runs).exit_code == 0
    assert [r["run_id"] for r in listed(runs)] == [B]
    assert "name the runs" in one_error(invoke("rm", "--runs-dir", runs))
    assert "unknown key" in one_error(invoke("rm", "--filter", "colour=red", "--runs-dir", runs))


def _running(folder: Path, pid: int) -> None:
    from nnlab.store.liveness import host_name, process_start

    metrics = json.loads((folder / METRICS).read_text())
    metrics.update(status="running", pid=pid, host=host_name(), process_start=process_start(pid),
                   heartbeat=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    (folder / METRICS).write_text(json.dumps(metrics))


def test_a_running_run_is_refused_and_a_lost_one_is_not(runs):
    _running(runs / A, os.getpid())  # this process: alive
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _running(runs / B, int(dead.stdout))  # gone: lost
    error = one_error(invoke("rm", A, B, "--runs-dir", runs))
    assert f"{A} (it is running, pid {os.getpid()} on this host" in error and "Nothing was removed" in error
    assert (runs / A).is_dir() and (runs / B).is_dir()
    assert "cannot remove" in one_error(invoke("rm", "--filter", "status=running", "--runs-dir", runs))
    result = invoke("rm", B, "--runs-dir", runs)
    assert result.exit_code == 0 and "it was lost" in result.stdout and (runs / TRASH / B).is_dir()
    assert invoke("tag", A, "lesson=1", "--runs-dir", runs).exit_code == 0  # tagging a running run is safe


def test_a_sweep_goes_to_the_trash_with_its_trials_and_comes_back_with_them(runs):
    sweep = runs / "20250101T130000Z_grid_sweep"
    sweep.mkdir()
    (sweep / METRICS).write_text(json.dumps({"run_id": sweep.name, "name": "grid", "kind": "sweep",
                                             "dataset": "digits", "status": "completed", "trials": 2}))
    trials = [make_run(runs, f"20250101T13000{i}Z", f"grid_t{i}", sweep_id=sweep.name, trial=i) for i in (1, 2)]
    assert invoke("rm", trials[0].name, "--dry-run", "--runs-dir", runs).stdout.count("still lists it") == 1
    result = invoke("rm", sweep.name, "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert result.stdout.count(f"(a trial of {sweep.name})") == 2 and "removed 3 runs" in result.stdout
    assert [r["run_id"] for r in listed(runs)] == [A, B, C]
    assert invoke("restore", sweep.name[:20], "--runs-dir", runs).exit_code == 0
    assert all(t.is_dir() for t in trials) and sweep.is_dir()
    assert os.listdir(runs / TRASH) == []


def test_a_fold_of_a_kfold_run_and_a_folder_in_the_trash_are_refused(runs):
    fold = runs / A / "folds" / "fold_1"
    fold.mkdir(parents=True)
    (fold / METRICS).write_text((runs / A / METRICS).read_text())
    assert "part of another run" in one_error(invoke("rm", fold, "--runs-dir", runs))
    invoke("rm", B, "--runs-dir", runs)
    assert "in the trash already" in one_error(invoke("rm", runs / TRASH / B, "--runs-dir", runs))


def test_the_commands_never_import_tensorflow(runs):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from nnlab.cli import app\n"
        f"root = {str(runs)!r}\n"
        "for args in (['tag', 'last', 'lesson=4'], ['note', 'last', 'text'], ['tag', '--filter', 'tag.lesson=4', 'a=b'],\n"
        "             ['rm', 'last'], ['rm', '--list'], ['restore', 'last'], ['rm', '--filter', 'status=failed'],\n"
        "             ['rm', '--purge']):\n"
        "    r = CliRunner().invoke(app, args + ['--runs-dir', root])\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
    )
    assert_imports_nothing_heavy(code)

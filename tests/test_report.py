"""``nnlab report``: one HTML file that loads nothing from anywhere, checked in a real headless
Chromium (Debian's ``chromium``, driven by Playwright): no console errors, one table row per
run, sorting by a header, every chart drawn, a legend click hiding its line, a run's section
drawing its charts when opened, and config values made to break the page (``<script>``,
``</textarea>``, quotes, ``javascript:``) shown as text, never run. Also bad input: no runs, an
output folder that is missing, --versus without --group-by."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from test_groups import ACCURACY, UNITS, invoke, make_run, write_widths

XSS_NAME = "<script>window.__xss = 1</script>"
XSS_DESCRIPTION = "</textarea></pre><img src=x onerror=\"window.__xss = 2\"> 'quotes' \"double\" javascript:alert(3)"


def png(path: Path, colour: str = "red") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (300, 200), colour).save(path)


def history(folder: Path, epochs: int, final: float, name: str = "history.csv") -> None:
    lines = ["epoch,loss,accuracy,val_loss,val_accuracy"]
    lines += [f"{e},{1.5 / e:.5f},{final - 0.3 / e:.5f},{1.6 / e:.5f},{final - 0.35 / e:.5f}" for e in range(1, epochs + 1)]
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")


@pytest.fixture
def report_runs(tmp_path) -> Path:
    """Repeats of four widths with curves and a picture, one with diagnostics, a k-fold run with
    its folds, a sweep folder, a run whose config is made to break the page, and a damaged folder."""
    root = write_widths(tmp_path / "runs")
    for folder in sorted(root.iterdir()):
        metrics = json.loads((folder / "metrics.json").read_text())
        history(folder, 6, metrics["test"]["accuracy"])
        png(folder / "plots" / "test_predictions.png")
        metrics["plots"] = ["plots/test_predictions.png"]
        (folder / "metrics.json").write_text(json.dumps(metrics))
    first = sorted(root.iterdir())[0]
    (first / "diagnostics.json").write_text(json.dumps(
        {"confusion_matrix": {"labels": ["0", "1", "2"], "counts": [[5, 1, 0], [0, 6, 0], [2, 0, 4]]}}))
    kfold = make_run(root, 900, units=64, accuracy=0.97, kind="kfold", kfold={
        "k": 3, "shuffle": False, "seed": 0, "monitor": "val_loss", "best": {"epoch": 4, "value": 0.3},
        "folds": [{"fold": i, "status": "completed", "validation": {"accuracy": 0.9, "loss": 0.3}}
                  for i in range(3)]})
    for i in range(3):
        history(kfold / "folds" / f"fold_{i + 1}", 6, 0.9 + i / 100)
    history(kfold, 6, 0.91, "history_mean.csv")
    evil = make_run(root, 950, units=8, accuracy=0.5, name="evil")
    config = yaml.safe_load((evil / "config.yaml").read_text())
    config.update(name=XSS_NAME, description=XSS_DESCRIPTION)
    (evil / "config.yaml").write_text(yaml.safe_dump(config))
    metrics = json.loads((evil / "metrics.json").read_text())
    metrics.update(name=XSS_NAME, message=XSS_DESCRIPTION)
    (evil / "metrics.json").write_text(json.dumps(metrics))
    history(evil, 3, 0.5)
    sweep = root / "20250101T000000Z_digits_widths_sweep"
    sweep.mkdir()
    trials = sorted(p for p in root.iterdir() if p.name.endswith("_digits"))
    (sweep / "metrics.json").write_text(json.dumps({
        "run_id": sweep.name, "name": "digits_widths", "kind": "sweep", "status": "completed",
        "metric": "test_accuracy", "direction": "max", "trials": 4, "trial_statuses": {"completed": 4}}))
    (sweep / "sweep.json").write_text(json.dumps({
        "sweep_id": sweep.name, "metric": "test_accuracy", "direction": "max", "ranking": [2, 3, 1, 0],
        "trials": [{"index": i, "params": {UNITS: units}, "status": "completed", "folder": str(trials[i]),
                    "metrics": {"test": {"accuracy": sum(v) / len(v)}}}
                   for i, (units, v) in enumerate(ACCURACY.items())]}))
    broken = root / "20250101T235959Z_broken"
    broken.mkdir()
    (broken / "metrics.json").write_text('{"run_id": "x", "status": "comp')
    return root


def report(*args) -> str:
    result = invoke("report", *args)
    assert result.exit_code == 0, result.output
    return result.output


def test_report_writes_one_file_that_says_what_it_holds(report_runs, tmp_path):
    out = tmp_path / "page.html"
    said = report(report_runs, "-o", out, "--group-by", UNITS, "--versus", "16")
    assert f"{out}" in said and "MB" in said
    html = out.read_text()
    # Nothing is loaded from anywhere: no external script, style sheet, picture or font.
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=[\"']?(https?:)?//", html)
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    assert html.count("<details class=\"run\"") == 17  # every run listed (the damaged one says so) but the sweep
    assert "nnlab 0.1.0" in html and str(report_runs) in html
    assert XSS_NAME not in html and "&lt;script&gt;window.__xss" in html  # escaped as text
    assert not list(tmp_path.glob(".page.html.*"))  # written atomically: no partial file left


def test_report_bad_input_exits_2_and_writes_nothing(tmp_path, report_runs):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ([empty, "-o", tmp_path / "a.html"], "no runs"),
        ([report_runs, "-o", tmp_path / "missing" / "a.html"], "does not exist"),
        ([report_runs, "-o", tmp_path / "a.txt"], ".html"),
        ([report_runs, "-o", tmp_path / "a.html", "--versus", "16"], "--group-by"),
        ([report_runs, "-o", tmp_path / "a.html", "--group-by", "model.layers.0.Dense.unit"], "did you mean"),
        ([report_runs, "-o", tmp_path / "a.html", "--filter", "name=nothing"], "no runs"),
    ]
    for args, says in cases:
        result = invoke("report", *args)
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output and "Traceback" not in result.output, (args, result.output)
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob("missing"))


def test_report_without_altair_says_how_to_install(monkeypatch, report_runs, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "altair" else real(name, *a))
    result = invoke("report", report_runs, "-o", tmp_path / "a.html")
    assert result.exit_code == 2 and "pip install 'nnlab[report]'" in result.output
    assert not (tmp_path / "a.html").exists()


# -- in a real browser ---------------------------------------------------------------------------------

def chromium() -> str | None:
    return os.environ.get("NNLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    executable = chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium: .ci/run installs Debian's chromium package for these tests")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, path: Path):
    """The page from file://, every request that is not the file itself or a data: URI refused
    and recorded, console errors and dialogs recorded."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))

    def route(r):
        if r.request.url.startswith(("file://", "data:")):
            return r.continue_()
        seen["requests"].append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('[data-chart]').length > 0 && "
                           "document.querySelectorAll('[data-chart]').length == "
                           "document.querySelectorAll('[data-chart][data-drawn]').length", timeout=20_000)
    return page, seen


def test_report_in_a_browser(browser, report_runs, tmp_path):
    out = tmp_path / "report.html"
    report(report_runs, "-o", out, "--group-by", UNITS, "--versus", "16")
    page, seen = open_page(browser, out)
    # One row per run folder listed: 14 repeats, the k-fold run, the evil run, the sweep, the damaged one.
    rows = page.locator("#runs-table tbody tr")
    assert rows.count() == 18
    assert page.locator("#runs-table tbody tr", has_text="unreadable").count() == 1
    # Clicking a header sorts by it (numbers by value), again reverses.
    headers = page.locator("#runs-table thead th")
    names = [headers.nth(i).text_content() for i in range(headers.count())]
    column = names.index("test_accuracy")

    def column_values():
        cells = page.locator(f"#runs-table tbody tr td:nth-child({column + 1})").all_text_contents()
        return [float(c) for c in cells if c.strip() not in ("-", "")]

    headers.nth(column).click()
    ascending = column_values()
    assert ascending == sorted(ascending) and len(ascending) == 16
    headers.nth(column).click()
    assert column_values() == sorted(ascending, reverse=True)
    # The filter box keeps the rows that hold every word typed.
    page.fill("#run-filter", "evil")
    assert page.locator("#runs-table tbody tr:not([hidden])").count() == 1
    page.fill("#run-filter", "")
    # Every chart is drawn as an SVG with marks in it.
    charts = page.locator("[data-chart]")
    assert charts.count() >= 4 + 4 + 1  # curves and group bands per history column, the sweep's parallel axes
    for i in range(charts.count()):
        assert charts.nth(i).evaluate("el => el.querySelectorAll('svg path, svg line').length") > 3
    # The group table and the tests, with the sentences in words.
    assert page.locator("#groups-table tbody tr").count() == 6  # 8 (the evil run), four widths, the k-fold run apart
    sentences = page.locator("#groups .sentences li").all_text_contents()
    assert any(s.startswith("units=64 (train) beats units=16 (train)") for s in sentences), sentences
    # Clicking a legend entry hides that run's line, and only that one.
    curves = page.locator('[data-chart="curves:val_loss"]')
    opacities = "el => Object.fromEntries(Array.from(el.querySelectorAll('g.mark-line path'))" \
                ".map(p => [p.__data__.datum.run, p.getAttribute('opacity')]))"
    before = curves.evaluate(opacities)
    assert set(before.values()) == {"1"} and len(before) == 16  # every run with a history has its line
    label = sorted(before)[2]
    curves.locator("g.role-legend-label text").get_by_text(label, exact=True).click()
    page.wait_for_timeout(300)
    after = curves.evaluate(opacities)
    assert after[label] == "0" and all(v == "1" for k, v in after.items() if k != label)
    # A run's section draws its charts and pictures when opened.
    section = page.locator("details.run").first
    section.locator("summary").click()
    page.wait_for_function("document.querySelector('details.run .charts [data-drawn]') !== null")
    assert section.locator(".charts svg").count() >= 2  # its own curves and its confusion matrix
    assert section.locator("img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    kfold = page.locator("details.run", has_text="kfold")
    kfold.locator("summary").click()
    page.wait_for_function("Array.from(document.querySelectorAll('details.run [data-template^=\"folds:\"]'))"
                           ".some(el => el.dataset.drawn)")
    # The evil run's name and description are text on the page, and nothing of them ran.
    evil = page.locator("details.run", has_text="evil")
    evil.locator("summary").click()
    page.wait_for_timeout(300)
    assert XSS_NAME in evil.text_content() and "javascript:alert(3)" in evil.text_content()
    assert page.evaluate("window.__xss") is None and seen["dialogs"] == []
    assert seen["errors"] == [] and seen["requests"] == []
    page.close()


def test_a_report_of_a_real_sweep_opens_without_errors(browser, tmp_path, cli, write_config):
    """A real (tiny) sweep with repeats: the report has its ranking, parallel coordinates and groups."""
    config = write_config(Path(__file__).parent.parent.joinpath("configs", "digits_widths.yaml").read_text()
                          .replace("epochs: 40", "epochs: 2").replace("[16, 32, 64, 128]", "[8, 16]"))
    runs = tmp_path / "runs"
    result = cli("sweep", str(config), "--seeds", "2", "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    out = tmp_path / "sweep.html"
    report("--runs-dir", runs, "-o", out, "--group-by", UNITS, "--versus", "8")
    page, seen = open_page(browser, out)
    assert page.locator("#runs-table tbody tr").count() == 5  # 2 widths x 2 seeds and the sweep folder
    assert page.locator("#sweeps table tbody tr").count() == 2
    assert page.locator('[data-chart^="parallel:"] svg').count() == 1
    assert page.locator("#groups-table tbody tr").count() == 2
    assert seen["errors"] == [] and seen["requests"] == []
    page.close()


def test_json_blocks_cannot_close_their_script(tmp_path):
    from nnlab.reporting.page import json_block

    block = json_block("x", {"name": "</script><script>alert(1)</script>", "amp": "a&b"})
    assert block.count("</script>") == 1 and "<script>alert" not in block
    body = block[block.index(">") + 1:block.rindex("<")]
    assert json.loads(body) == {"name": "</script><script>alert(1)</script>", "amp": "a&b"}

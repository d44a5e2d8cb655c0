"""What a report shows, read from the run folders: the runs table, the groups and their tests,
the learning curves, each sweep's ranking and parameters, and every run's own section.

The figures are compare's (:mod:`nnlab.views.compare`, :mod:`nnlab.views.groups`): the same
columns, cells, groups and sentences; this module only gathers them as data for the page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.errors import NnlabError
from nnlab.store import format as runfile
from nnlab.store.reading import Run, read_history, read_kfold, read_metrics, read_sweep, read_text_file
from nnlab.views.compare import cell, default_columns, show_value, values
from nnlab.views.style import number, params_label, status_style

#: At most this many runs' curves are overlaid in one chart (the first listed).
MAX_CURVE_RUNS = 40
#: At most this many learning-curve charts (the validation columns first).
MAX_CURVE_CHARTS = 6
#: Pictures the page redraws as interactive charts are not embedded again.
REDRAWN = (runfile.CONFUSION_MATRIX_PLOT, runfile.ROC_CURVE_PLOT, runfile.RESIDUALS_PLOT)
#: At most this many pictures are embedded (the first listed runs' first): about 15 KB each as
#: thumbnails, so a report stays under 5 MB and is written in seconds; later ones list their files.
MAX_PICTURES = 120


@dataclass
class Table:
    """Cells of a table as the page shows them, and the raw values it sorts by."""

    headers: list[str]
    rows: list[list[str]]
    right: list[bool]
    sort: list[list[Any]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # a CSS class per row (the status colour)
    bold: set[tuple[int, int]] = field(default_factory=set)
    links: list[str | None] = field(default_factory=list)  # the anchor of each row's run section


@dataclass
class RunSection:
    """One run's section: its config, what differs from the reference, metrics, pictures, charts."""

    anchor: str
    run_id: str
    label: str
    status: str
    kind: str | None
    message: str | None
    config_text: str | None
    differences: list[tuple[str, str, str]]
    reference: str | None
    metrics: Table | None
    baseline: list[tuple[str, str]]
    pictures: list[tuple[str, str]]  # (file name, data URI)
    picture_files: list[str]  # files not embedded
    charts: list[dict[str, Any]]  # {"template": name, "rows": [...], "title": ...}
    facts: list[tuple[str, str]]
    warning: str | None = None
    tags: list[tuple[str, str]] = field(default_factory=list)  # the user's (nnlab tag), in their order
    note: str | None = None  # the user's note (nnlab note)


@dataclass
class SweepSection:
    """A sweep's ranking and its parameters against the ranking metric."""

    sweep_id: str
    metric: str
    direction: str | None
    ranking: Table
    parallel: list[dict[str, Any]]
    note: str | None = None


@dataclass
class Report:
    """Everything the page shows."""

    title: str
    header: list[tuple[str, str]]
    table: Table
    groups: dict[str, Any] | None
    curves: dict[str, list[dict[str, Any]]]
    bands: dict[str, list[dict[str, Any]]]
    curve_note: str | None
    sweeps: list[SweepSection]
    runs: list[RunSection]
    warnings: list[str]
    fold_metrics: list[str] = field(default_factory=list)


def run_label(run: Run, keys: list[str]) -> str:
    """A run as the charts name it: a trial by its parameters (and repeat), any other run by its id."""
    params = run.fields.get("trial_params")
    if isinstance(params, dict) and params:
        label = params_label(params, keys)
        repeat = run.fields.get("repeat")
        return f"{label} (repeat {repeat})" if repeat is not None else label
    return run.run_id


def runs_table(runs: list[Run], anchors: dict[str, str]) -> Table:
    """The runs table of ``nnlab compare``: the same columns and cells; unreadable folders as such."""
    columns = default_columns(runs)
    rows = values(runs, columns)
    cells = [[cell(c, row.get(c), row) for c in columns] for row in rows]
    numeric = [any(isinstance(row.get(c), (int, float)) and not isinstance(row.get(c), bool) for row in rows)
               for c in columns]
    sort = [[row.get(c) if isinstance(row.get(c), (int, float, str)) else None for c in columns] for row in rows]
    classes = [f"status-{status_style(r.fields.get('status'))}" for r in runs]
    return Table(columns, cells, numeric, sort, classes, links=[anchors.get(r.run_id) for r in runs])


def group_section(runs: list[Run], *, group_by: str, versus: str | None, metric: str | None,
                  filters: list) -> tuple[dict[str, Any], Any]:
    """The group table and the tests against ``versus``, as compare --group-by computes them.

    Returns:
        ``{"title", "table", "versus_title", "versus", "sentences", "notes"}`` and the
        :class:`nnlab.views.groups.GroupTable`.
    """
    from nnlab.views.groups import (group_cells, group_table, group_title, parse_group_keys, split_by_kind,
                                    versus_cells, versus_title)

    keys = parse_group_keys(group_by)
    table = group_table(runs, keys=keys, filters=filters, versus=versus, metric=metric)
    section: dict[str, Any] = {"title": group_title(table), "notes": table.notes, "keys": keys,
                               "table": None, "versus": None, "versus_title": None, "sentences": []}
    if table.groups:
        headers, rows, right, _, _ = group_cells(table.groups, keys, table.metrics)
        section["table"] = Table(headers, rows, right)
    if table.comparisons:
        headers, rows, right, _ = versus_cells(table.comparisons, keys, split_by_kind(table.groups, keys))
        section["versus"] = Table(headers, rows, right)
        section["versus_title"] = versus_title(table)
        section["sentences"] = [c.sentence for c in table.comparisons]
    return section, table


def _history_columns(histories: dict[str, dict[str, list[float]]]) -> list[str]:
    counts: dict[str, int] = {}
    for history in histories.values():
        for column in history:
            if column != "epoch":
                counts[column] = counts.get(column, 0) + 1
    # history_mean.csv's spread columns (val_loss_std) and its means under their own names are not curves.
    plain = [c for c in counts if not (c.endswith(("_std", "_mean")) and c.rsplit("_", 1)[0] in counts)]
    ordered = sorted(plain, key=lambda c: (not c.startswith("val_"), c != "val_loss" and c != "loss", c))
    return ordered[:MAX_CURVE_CHARTS]


def curve_rows(runs: list[Run], histories: dict[str, dict[str, list[float]]], labels: dict[str, str],
               columns: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per history column, one row per run and epoch: ``{run, epoch, value}``."""
    charts: dict[str, list[dict[str, Any]]] = {c: [] for c in columns}
    for run in runs:
        history = histories.get(run.run_id) or {}
        epochs = history.get("epoch")
        for column in columns:
            for i, value in enumerate(history.get(column) or []):
                if value is None or value != value:  # NaN is no point on a line
                    continue
                epoch = int(epochs[i]) if epochs and i < len(epochs) else i + 1
                charts[column].append({"run": labels[run.run_id], "epoch": epoch, "value": float(value)})
    return charts


def band_rows(table: Any, histories: dict[str, dict[str, list[float]]], columns: list[str]) -> dict[str, list]:
    """Per history column, each group's mean and ±1 std per epoch: ``{group, epoch, mean, std, low, high, n}``."""
    from nnlab.views.groups import group_bands

    charts: dict[str, list] = {}
    for column in columns:
        rows = [{"group": label, "epoch": epoch, "mean": mean, "std": std, "low": mean - (std or 0.0),
                 "high": mean + (std or 0.0), "n": n}
                for label, band in group_bands(table.groups, table.keys, histories, column)
                for epoch, mean, std, n in zip(band.epochs, band.mean, band.std, band.n)]
        if rows:
            charts[column] = rows
    return charts


def sweep_section(run: Run) -> SweepSection | None:
    """A sweep folder's ranking (mean ± std and n per trial when repeated) and its parallel coordinates."""
    try:
        sweep = read_sweep(run.path)
    except (NnlabError, RecursionError):
        return None
    if sweep is None or not isinstance(sweep.get("trials"), list):
        return None
    metric, direction = str(sweep.get("metric") or "score"), sweep.get("direction")
    stats = sweep.get("trial_stats") if isinstance(sweep.get("trial_stats"), list) else None
    trials = [t for t in sweep["trials"] if isinstance(t, dict)]
    keys = list(dict.fromkeys(k for t in trials if isinstance(t.get("params"), dict) for k in t["params"]))
    shorts = [params_label({k: ""}, keys)[:-1] for k in keys]
    if stats:
        entries = [(s.get("trial"), s.get("params") or {}, s.get("mean"), s) for s in stats if isinstance(s, dict)]
        headers = ["rank", "trial", *shorts, f"{metric} mean ± std", "95% CI", "n", "runs"]
        rows = []
        for rank, (trial, params, mean, s) in enumerate(entries, start=1):
            ci = "-" if s.get("ci_low") is None else f"{number(s.get('ci_low'))} to {number(s.get('ci_high'))}"
            rows.append([str(rank), str(trial), *(show_value(params.get(k)) for k in keys),
                         f"{number(mean)} ± {number(s.get('std'))}", ci, str(s.get("n", "-")),
                         str(s.get("statuses", ""))])
        right = [True, True, *[False] * len(keys), True, True, True, False]
    else:
        ranking = sweep.get("ranking") if isinstance(sweep.get("ranking"), list) else []
        by_index = {t.get("index"): t for t in trials}
        ordered = [by_index[i] for i in ranking if i in by_index] + [t for t in trials if t.get("index") not in ranking]
        entries = [(t.get("index"), t.get("params") or {}, _trial_value(t, metric), t) for t in ordered]
        headers = ["rank", "trial", *shorts, metric, "status"]
        rows = [[str(rank) if t.get("index") in ranking else "-", str(trial), *(show_value(params.get(k)) for k in keys),
                 number(value), str(t.get("status", ""))]
                for rank, (trial, params, value, t) in enumerate(entries, start=1)]
        right = [True, True, *[False] * len(keys), True, False]
    parallel = parallel_rows([(trial, params, value) for trial, params, value, _ in entries], keys, shorts, metric)
    return SweepSection(run.run_id, metric, direction, Table(headers, rows, right), parallel)


def _trial_value(trial: dict[str, Any], metric: str) -> float | None:
    from nnlab.metric_names import value_of

    metrics = trial.get("metrics")
    if not isinstance(metrics, dict):
        return None
    try:
        value = value_of(metrics, metric)
    except (KeyError, TypeError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parallel_rows(entries: list[tuple[Any, dict, float | None]], keys: list[str], shorts: list[str],
                  metric: str) -> list[dict[str, Any]]:
    """Parallel coordinates: per trial and axis (each parameter, then the metric) its value scaled
    0 to 1 on that axis (numbers by value, anything else by its place in order of first use)."""
    axes = [(k, s) for k, s in zip(keys, shorts)] + [(None, metric)]
    positions: dict[str, dict[Any, float]] = {}
    for key, short in axes:
        raw = [(e[2] if key is None else e[1].get(key)) for e in entries]
        numbers = [v for v in raw if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers and len(numbers) == len([v for v in raw if v is not None]):
            low, high = min(numbers), max(numbers)
            positions[short] = {v: (0.5 if high == low else (v - low) / (high - low)) for v in numbers}
        else:
            order = list(dict.fromkeys(show_value(v) for v in raw))
            positions[short] = {t: (0.5 if len(order) == 1 else i / (len(order) - 1)) for i, t in enumerate(order)}
    rows = []
    for trial, params, score in entries:
        if score is None:
            continue
        for key, short in axes:
            value = score if key is None else params.get(key)
            place = positions[short].get(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
                else positions[short].get(show_value(value))
            if place is None:
                place = positions[short].get(show_value(value), 0.5)
            rows.append({"trial": str(trial), "axis": short, "position": place, "value": show_value(value)
                         if key is not None else number(score), "score": score})
    return rows


def _flat(run: Run) -> dict[str, Any]:
    return run.config() if run.readable else {}


def differences(run: Run, reference: Run | None) -> list[tuple[str, str, str]]:
    """The config keys whose values differ from the reference run's: ``(key, this run, reference)``."""
    if reference is None or reference is run:
        return []
    mine, theirs = _flat(run), _flat(reference)
    keys = sorted(set(mine) | set(theirs))
    return [(k, show_value(mine.get(k)), show_value(theirs.get(k))) for k in keys if mine.get(k) != theirs.get(k)]


def metrics_table(metrics: dict[str, Any]) -> tuple[Table | None, list[tuple[str, str]]]:
    """Final metrics per part (train, validation, test) beside the baseline's figures."""
    parts = [p for p in ("train", "validation", "test") if isinstance(metrics.get(p), dict) and metrics[p]]
    names = list(dict.fromkeys(k for p in parts for k in metrics[p]))
    baseline = metrics.get("baseline") if isinstance(metrics.get("baseline"), dict) else {}
    base = [(str(k), number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else show_value(v))
            for k, v in baseline.items() if k != "name"]
    if not names:
        return None, base
    rows = [[name, *(number(metrics[p].get(name)) for p in parts)] for name in names]
    return Table(["metric", *parts], rows, [False, *[True] * len(parts)]), base


def fold_chart(run: Run) -> tuple[dict[str, Any] | None, str | None]:
    """A k-fold run's per-fold validation curves of its monitor with the mean and best epoch."""
    try:
        kfold = read_kfold(run.path)
    except NnlabError:
        return None, None
    if not kfold or not isinstance(kfold.get("folds"), list):
        return None, None
    monitor = str(kfold.get("monitor") or "val_loss")
    rows = []
    for i in range(len(kfold["folds"])):
        history = read_history(run.path / runfile.fold_folder(i), monitor)
        for epoch, value in enumerate(history.get(monitor) or [], start=1):
            if value == value:
                rows.append({"fold": str(i + 1), "epoch": epoch, "value": value})
    mean = read_history(run.path, monitor, prefer_mean=True).get(monitor) or []
    rows += [{"fold": "mean", "epoch": e, "value": v} for e, v in enumerate(mean, start=1) if v == v]
    best = kfold.get("best") if isinstance(kfold.get("best"), dict) else {}
    if isinstance(best.get("epoch"), int):
        rows.append({"best": best["epoch"]})
    if not rows:
        return None, None
    return {"template": f"folds:{monitor}", "rows": rows}, monitor


def diagnostic_charts(run: Run) -> list[dict[str, Any]]:
    """The run's diagnostics (confusion matrix, ROC curve, residuals) as chart data."""
    from nnlab.store.reading import read_diagnostics

    data = read_diagnostics(run.path)
    charts = []
    matrix = data.get("confusion_matrix") if isinstance(data.get("confusion_matrix"), dict) else None
    if matrix and isinstance(matrix.get("counts"), list) and isinstance(matrix.get("labels"), list):
        labels = [str(label) for label in matrix["labels"]]
        rows = []
        for i, counts in enumerate(matrix["counts"]):
            if not isinstance(counts, list) or i >= len(labels):
                continue
            total = sum(c for c in counts if isinstance(c, (int, float))) or 1
            rows += [{"true": labels[i], "predicted": labels[j], "count": c, "share": c / total}
                     for j, c in enumerate(counts) if j < len(labels) and isinstance(c, (int, float))]
        if rows:
            charts.append({"template": "confusion", "rows": rows})
    roc = data.get("roc") if isinstance(data.get("roc"), dict) else None
    if roc and isinstance(roc.get("fpr"), list) and isinstance(roc.get("tpr"), list):
        rows = [{"fpr": f, "tpr": t} for f, t in zip(roc["fpr"], roc["tpr"])]
        title = f"ROC curve (AUC {number(roc.get('auc'))})" if roc.get("auc") is not None else None
        charts.append({"template": "roc", "rows": rows, "title": title})
    residual = data.get("residuals") if isinstance(data.get("residuals"), dict) else None
    if residual and isinstance(residual.get("predicted"), list) and isinstance(residual.get("residual"), list):
        rows = [{"predicted": p, "residual": r} for p, r in zip(residual["predicted"], residual["residual"])]
        charts.append({"template": "residuals", "rows": rows})
    return charts


def pictures(run: Run, metrics: dict[str, Any], embed: bool, history_columns: set[str],
             redrawn: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """The run's own PNGs to embed (``embed``: ``(name, path)``; :func:`embed_pictures` makes the
    thumbnails), else listed by path. Learning curves (and, when the page draws them, the
    diagnostics charts) are drawn by the page instead."""
    plots = [p for p in (metrics.get("plots") or []) if isinstance(p, str)]
    if not plots and (run.path / runfile.PLOTS).is_dir():
        plots = [f"{runfile.PLOTS}/{p.name}" for p in sorted((run.path / runfile.PLOTS).glob("*.png"))]
    embedded, listed = [], []
    for relative in plots:
        name = Path(relative).name
        stem = Path(relative).stem
        if stem in history_columns or (redrawn and name in REDRAWN):
            continue
        path = run.path / relative
        (embedded.append((name, str(path))) if embed and path.is_file() else listed.append(relative))
    return embedded, listed


def embed_pictures(sections: list[RunSection], limit: int = MAX_PICTURES) -> int:
    """Turn the sections' picture paths into thumbnails, the first ``limit`` of them, on all cores
    (Pillow works outside the GIL); the others, and any that cannot be read, are listed by file.

    Returns:
        How many pictures were left out for the limit.
    """
    from concurrent.futures import ThreadPoolExecutor

    from nnlab.reporting.assets import thumbnail

    paths = [path for s in sections for _, path in s.pictures]
    if not paths:
        return 0
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        uris = dict(zip(paths[:limit], pool.map(thumbnail, paths[:limit])))
    for section in sections:
        kept = []
        for name, path in section.pictures:
            if uris.get(path):
                kept.append((name, uris[path]))
            else:
                # The path is <run folder>/plots/<name>: the section lists it as plots/<name>.
                section.picture_files.append(str(Path(path).relative_to(Path(path).parent.parent)))
        section.pictures = kept
    return max(0, len(paths) - limit)


def run_section(run: Run, index: int, *, label: str, reference: Run | None, history: dict[str, list[float]],
                embed_pictures: bool) -> RunSection:
    """One run's section (never raises for a damaged folder: what cannot be read is said)."""
    anchor = f"run-{index}"
    status = str(run.fields.get("status", "unknown"))
    tags = run.fields.get("tags") if isinstance(run.fields.get("tags"), dict) else {}
    tag_pairs = [(str(k), str(v)) for k, v in tags.items()]
    note = run.fields.get("note") if isinstance(run.fields.get("note"), str) else None
    if not run.readable:
        return RunSection(anchor, run.run_id, label, status, None, run.warning, None, [], None, None, [], [], [],
                          [], [], run.warning, tag_pairs, note)
    try:
        metrics = read_metrics(run.path)
    except NnlabError as err:
        metrics = {}
        run.warning = run.warning or err.message
    try:
        config_text = read_text_file(run.path, runfile.CONFIG)
    except NnlabError as err:
        config_text = f"(config.yaml cannot be read: {err.message})"
    table, baseline = metrics_table(metrics)
    charts = []
    if history:
        columns = _history_columns({run.run_id: history})
        rows = [{"run": c, "epoch": e, "value": v} for c in columns
                for e, v in enumerate(history[c], start=1) if v == v]
        if rows:
            charts.append({"template": "curves:run", "rows": rows, "title": "this run's learning curves"})
    fold, _ = fold_chart(run) if run.fields.get("kind") == "kfold" else (None, None)
    if fold:
        charts.append(fold)
    diagnostics = diagnostic_charts(run)
    charts += diagnostics
    embedded, listed = pictures(run, metrics, embed_pictures, set(history), bool(diagnostics))
    facts = [(k, show_value(run.fields.get(k))) for k in ("kind", "dataset", "task", "started", "epochs_run", "params",
                                                     "sweep_id", "trial", "group", "repeat")
             if run.fields.get(k) is not None]
    if isinstance(metrics.get("roc_auc"), (int, float)):
        facts.append(("test ROC AUC", number(metrics["roc_auc"])))
    if isinstance(metrics.get("per_class"), list) and metrics["per_class"]:
        per_class = [c for c in metrics["per_class"] if isinstance(c, dict)]
        worst = sorted(per_class, key=lambda c: c.get("f1", 1.0) if isinstance(c.get("f1"), (int, float)) else 1.0)
        facts.append(("lowest F1", ", ".join(f"{c.get('class')} {number(c.get('f1'))}" for c in worst[:3])))
    return RunSection(anchor, run.run_id, label, status, run.fields.get("kind"), metrics.get("message"),
                      config_text, differences(run, reference), reference.run_id if reference else None, table,
                      baseline, embedded, listed, charts, facts, run.warning, tag_pairs, note)


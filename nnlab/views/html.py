"""Run folders as HTML fragments for a notebook's output cells (``_repr_html_`` of :mod:`nnlab.api`'s objects).

What they show is what the terminal and the report show, through the same rules: the final metrics
table of :func:`nnlab.reporting.content.metrics_table` with the comparable baseline figure beside each
metric (:data:`nnlab.store.reading.BASELINE_ALIASES`), the k-fold table of ``nnlab kfold``, the sweep
ranking of the report (:func:`nnlab.reporting.content.sweep_section`), and the run's own pictures
(learning curves, the lesson's figures) embedded as thumbnails. Every value is escaped; a fragment
needs no script and no network, so it shows in Jupyter, Colab, VS Code and a saved notebook alike.
Nothing heavy is imported: Pillow for the thumbnails, matplotlib only to draw a group's curves.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any, Iterable, Sequence

from nnlab.errors import NnlabError
from nnlab.views.style import duration, number, status_style

#: Scoped to ``.nnlab`` so a notebook's own styles stay as they are.
STYLE = """<style>
.nnlab { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: .2rem 0; }
.nnlab table { border-collapse: collapse; margin: .3rem 0 .5rem; font-variant-numeric: tabular-nums; }
.nnlab th, .nnlab td { padding: .15rem .55rem; border-bottom: 1px solid #d6dbe1; text-align: left;
                       white-space: nowrap; }
.nnlab th { background: #f3f5f7; } .nnlab td.num, .nnlab th.num { text-align: right; }
.nnlab .muted { color: #5b6470; } .nnlab .green { color: #127a2f; } .nnlab .red { color: #b42318; }
.nnlab .yellow { color: #9a6700; } .nnlab .cyan { color: #0e7490; } .nnlab .dim { color: #5b6470; }
.nnlab .pictures { display: flex; flex-wrap: wrap; gap: .6rem; }
.nnlab figure { margin: 0; } .nnlab figure img { max-width: 380px; max-height: 300px; display: block; }
.nnlab figcaption { color: #5b6470; font-size: 11px; }
.nnlab progress { width: 12rem; vertical-align: middle; }
</style>"""


# -- pieces ---------------------------------------------------------------------------------------

def status_html(status: Any) -> str:
    """A status in the colour the terminal prints it in."""
    return f'<strong class="{escape(status_style(status))}">{escape(str(status))}</strong>'


def table_html(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """A table of ready-made cells (escaped here)."""
    right = list(right) if right is not None else [False] * len(headers)
    head = "".join(f'<th class="{"num" if r else ""}">{escape(h)}</th>' for h, r in zip(headers, right))
    body = "".join("<tr>" + "".join(f'<td class="{"num" if r else ""}">{escape(str(c))}</td>'
                                    for c, r in zip(row, right)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def picture_uri(path: Path) -> str | None:
    """A picture as a ``data:`` URI: the report's WebP thumbnail, else the PNG itself; None if unreadable."""
    from nnlab.reporting.assets import thumbnail

    uri = thumbnail(path)
    if uri is not None:
        return uri
    try:
        return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
    except OSError:
        return None


def pictures_html(paths: Iterable[Path]) -> str:
    """The pictures side by side, each captioned with its file name."""
    figures = []
    for path in paths:
        uri = picture_uri(path)
        if uri is not None:
            figures.append(f'<figure><img alt="{escape(path.name)}" src="{uri}">'
                           f"<figcaption>{escape(path.name)}</figcaption></figure>")
    return f'<div class="pictures">{"".join(figures)}</div>' if figures else ""


def plot_files(folder: Path, metrics: dict[str, Any]) -> list[Path]:
    """A run's pictures, learning curves first: those metrics.json lists, else every PNG in plots/."""
    from nnlab.store.format import PLOTS

    listed = [folder / p for p in (metrics.get("plots") or []) if isinstance(p, str)]
    if not listed and (folder / PLOTS).is_dir():
        listed = sorted((folder / PLOTS).glob("*.png"))
    files = [p for p in listed if p.is_file()]
    curves = [p for p in files if p.stem == "loss" or p.stem.startswith("kfold_")]
    return curves + [p for p in files if p not in curves]


def _baseline_partners(metrics: dict[str, Any], loss_name: Any) -> dict[str, tuple[str, Any]]:
    """Each metric's comparable baseline figure: ``{metric: (baseline key, value)}``."""
    from nnlab.store.reading import BASELINE_ALIASES

    baseline = metrics.get("baseline") if isinstance(metrics.get("baseline"), dict) else {}
    partners = {BASELINE_ALIASES[k]: (k, v) for k, v in baseline.items() if k in BASELINE_ALIASES}
    losses = {"mse": "mse", "mean_squared_error": "mse", "mae": "mae", "mean_absolute_error": "mae"}
    if isinstance(loss_name, str) and losses.get(loss_name) in partners:  # an MSE loss beside the MSE baseline
        partners["loss"] = partners[losses[loss_name]]
    return partners


def metrics_html(metrics: dict[str, Any], loss_name: Any = None) -> str:
    """Final metrics per part (train, validation, test) with the comparable baseline figure beside them,
    then every baseline figure."""
    from nnlab.reporting.content import metrics_table

    table, baseline = metrics_table(metrics)
    parts = []
    if table is not None:
        partners = _baseline_partners(metrics, loss_name)
        headers, rows, right = list(table.headers), [list(r) for r in table.rows], list(table.right)
        if any(row[0] in partners for row in rows):
            headers.append("baseline")
            right.append(True)
            for row in rows:
                key, value = partners.get(row[0], (None, None))
                row.append(f"{number(value)} ({key})" if key else "-")
        parts.append(table_html(headers, rows, right))
    if baseline:
        name = (metrics.get("baseline") or {}).get("name")
        parts.append(f"<div>baseline{f' ({escape(str(name))})' if name else ''}: "
                     + escape(", ".join(f"{k} {v}" for k, v in baseline)) + "</div>")
    return "".join(parts)


def _header(folder: Path, metrics: dict[str, Any], status: Any) -> str:
    facts = [str(metrics.get(k)) for k in ("kind", "dataset") if metrics.get(k)]
    if isinstance(metrics.get("epochs_run"), int):
        planned = metrics.get("epochs_planned")
        facts.append(f"{metrics['epochs_run']}" + (f"/{planned}" if planned not in (None, metrics["epochs_run"])
                                                  else "") + " epochs")
    if isinstance(metrics.get("params"), int):
        facts.append(f"{metrics['params']:,} parameters")
    if isinstance(metrics.get("wall_time_s"), (int, float)):
        facts.append(duration(float(metrics["wall_time_s"])))
    lines = [f"<div><strong>{escape(str(metrics.get('name') or folder.name))}</strong> {status_html(status)} "
             f'<span class="muted">{escape(" · ".join(facts))}</span></div>',
             f'<div class="muted">run folder: {escape(str(folder))}</div>']
    if metrics.get("message"):
        lines.append(f'<div class="{escape(status_style(status))}">{escape(str(metrics["message"]))}</div>')
    stopped = metrics.get("early_stopping")
    if isinstance(stopped, dict) and stopped.get("stopped_epoch"):
        restored = (f"; weights of epoch {stopped['restored_epoch']} restored" if stopped.get("restored_epoch")
                    else "")
        lines.append(f"<div>stopped early at epoch {escape(str(stopped['stopped_epoch']))}: "
                     f"{escape(str(stopped.get('monitor', 'the monitor')))} stopped improving{escape(restored)}</div>")
    return "".join(lines)


def _best_html(best: Any) -> str:
    if not isinstance(best, dict) or best.get("epoch") is None:
        return ""
    from nnlab import metric_names

    monitor = str(best.get("monitor") or "")
    direction = best.get("direction") or (metric_names.direction(monitor) if monitor else None)
    which = {"max": "highest", "min": "lowest"}.get(direction, "best")
    smoothed = f", smoothed with factor {best['smoothing']}" if best.get("smoothing") else ""
    return (f"<div>best epoch: <strong>{escape(str(best['epoch']))}</strong> ({which} {escape(monitor)}"
            f"{escape(smoothed)}: {escape(number(best.get('value')))})</div>")


def _kfold_html(folder: Path, metrics: dict[str, Any]) -> str:
    """The folds' validation figures, their mean ± std, the best epoch, the final model's test figures."""
    from nnlab.store.reading import read_kfold

    try:
        summary = read_kfold(folder) or {}
    except NnlabError:
        summary = {}
    parts = []
    folds = [f for f in summary.get("folds") or [] if isinstance(f, dict)]
    if folds:
        names = sorted(dict.fromkeys(n for f in folds for n in f.get("validation") or {}), key=lambda n: n != "loss")
        headers = ["fold", "epochs", "train/val rows", *(f"val_{n}" for n in names)]
        rows = [[str(f.get("fold")), str(f.get("epochs_run")), f"{f.get('train_rows')}/{f.get('validation_rows')}",
                 *(number((f.get("validation") or {}).get(n)) for n in names)] for f in folds]
        mean, std = summary.get("mean") or {}, summary.get("std") or {}
        rows.append(["mean ± std", "", "", *(f"{number(mean.get(n))} ± {number(std.get(n))}" for n in names)])
        parts.append("<div>validation metrics at the end of each fold</div>"
                     + table_html(headers, rows, [False, True, True, *[True] * len(names)]))
    parts.append(_best_html(summary.get("best") or metrics.get("best")))
    final = summary.get("final")
    if isinstance(final, dict):
        parts.append(f"<div>final model: {escape(str(final.get('epochs')))} epochs on all "
                     f"{escape(str(metrics.get('train_rows')))} training rows</div>")
        parts.append(metrics_html({"train": final.get("train"), "test": final.get("test"),
                                   "baseline": final.get("baseline")}, final.get("loss")))
    return "".join(parts)


def _sweep_html(folder: Path) -> str:
    """The sweep's trials ranked, as the report ranks them."""
    from nnlab.reporting.content import sweep_section
    from nnlab.store.reading import read_run

    section = sweep_section(read_run(folder))
    if section is None:
        return ""
    ranking = section.ranking
    return (f"<div>trials ranked by {escape(section.metric)}</div>"
            + table_html(ranking.headers, ranking.rows, ranking.right))


def run_html(folder: Path) -> str:
    """One run folder as an HTML fragment: what it is, its metrics beside the baseline, its pictures."""
    from nnlab.store.reading import read_config, read_metrics, read_run

    folder = Path(folder)
    try:
        metrics = read_metrics(folder)
    except NnlabError as err:
        return f'{STYLE}<div class="nnlab"><div>{escape(str(folder))}: {escape(err.message)}</div></div>'
    status = read_run(folder).fields.get("status", metrics.get("status"))
    parts = [_header(folder, metrics, status)]
    kind = metrics.get("kind")
    if kind == "kfold":
        parts.append(_kfold_html(folder, metrics))
    elif kind == "sweep":
        parts.append(_sweep_html(folder))
    else:
        try:
            loss = read_config(folder).get("loss")
        except NnlabError:
            loss = None
        parts.append(metrics_html(metrics, loss))
        parts.append(_best_html(metrics.get("best")))
    if kind != "sweep":
        parts.append(pictures_html(plot_files(folder, metrics)))
    return f'{STYLE}<div class="nnlab">{"".join(parts)}</div>'


# -- repeats: one config, several seeds -----------------------------------------------------------------

def group_curves_uri(folders: Sequence[Path], labels: Sequence[str]) -> str | None:
    """The repeats' learning curves overlaid (validation loss, else loss) as a ``data:`` URI, or None."""
    import tempfile

    from nnlab.plots import overlaid_curves
    from nnlab.store.reading import read_history

    histories = [read_history(f, "val_loss", prefer_mean=True) for f in folders]
    column = "val_loss" if any("val_loss" in h for h in histories) else "loss"
    curves = [(label, h.get("epoch") or list(range(1, len(h[column]) + 1)), h[column])
              for label, h in zip(labels, histories) if h.get(column)]
    if not curves:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = overlaid_curves(curves, column, Path(tmp) / "curves.png", title=f"{column} of each repeat")
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def group_html(name: str, metrics: Sequence[dict[str, Any]], folders: Sequence[Path], seeds: Sequence[int]) -> str:
    """Repeats of one config: every metric's mean ± std and 95% CI over them, each repeat, their curves."""
    from nnlab.repeats import group_summary
    from nnlab.store.format import Status

    statuses = [m.get("status") for m in metrics]
    done = sum(s == Status.COMPLETED.value for s in statuses)
    overall = Status.COMPLETED.value if done == len(metrics) else "completed in part" if done else statuses[-1]
    group = metrics[0].get("group", "-") if metrics else "-"
    parts = [f"<div><strong>{escape(name)}</strong> {status_html(overall)} "
             f'<span class="muted">{len(metrics)} repeats, {done} completed (group {escape(str(group))})</span></div>']
    rows, prefixes = [], {"train": "train_", "validation": "val_", "test": "test_"}
    completed = [m for m in metrics if m.get("status") == Status.COMPLETED.value]
    for part, described in group_summary(completed).items():
        for metric, d in described.items():
            rows.append([prefixes[part] + metric,
                         f"{number(d.mean)} ± {number(d.std)}" if d.std is not None else number(d.mean),
                         f"{number(d.ci_low)} to {number(d.ci_high)}" if d.ci_low is not None else "-",
                         number(d.min), number(d.max), str(d.n)])
    if rows:
        parts.append("<div>over the repeats</div>" + table_html(
            ["metric", "mean ± std", "95% CI of the mean", "min", "max", "n"], rows,
            [False, True, True, True, True, True]))
    parts.append(table_html(["seed", "status", "run folder"],
                            [[str(s), str(m.get("status")), str(f)] for s, m, f in zip(seeds, metrics, folders)]))
    uri = group_curves_uri(folders, [f"seed {s}" for s in seeds])
    if uri:
        parts.append(f'<div class="pictures"><figure><img alt="curves" src="{uri}"></figure></div>')
    return f'{STYLE}<div class="nnlab">{"".join(parts)}</div>'


# -- a report, predictions, progress -------------------------------------------------------------------------

def report_html(path: Path, height: int = 720) -> str:
    """The report page inline: in an iframe of its own, so its scripts and styles stay inside it."""
    page = Path(path).read_text(encoding="utf-8")
    return (f'<iframe srcdoc="{escape(page, quote=True)}" style="width: 100%; height: {int(height)}px; '
            f'border: 1px solid #d6dbe1;" sandbox="allow-scripts"></iframe>'
            f'<div class="muted" style="font-size: 12px">report: {escape(str(path))}</div>')


def predictions_html(result: Any, top: int = 3) -> str:
    """``nnlab predict``'s answers as a table: each example's prediction, its top classes, the true label."""
    warnings = "".join(f'<div class="yellow">warning: {escape(w)}</div>' for w in result.warnings)
    head = f"<div>run {escape(result.folder.name)}: {escape(result.source)}</div>"
    predictions = list(result.predictions)
    if predictions and predictions[0].probabilities is None:
        rows = [[str(i), number(p.value) if not isinstance(p.value, list) else str(p.value),
                 "-" if p.true is None else number(p.true)] for i, p in enumerate(predictions)]
        table = table_html(["example", "predicted value", "true value"], rows, [True, True, True])
    else:
        rows = []
        for i, p in enumerate(predictions):
            name = p.class_names[p.predicted]
            true = "-" if p.true is None else p.class_names[p.true]
            verdict = "" if p.true is None else ("right" if p.predicted == p.true else "wrong")
            rows.append([str(i), name, f"{100 * p.probabilities[p.predicted]:.1f}%",
                         ", ".join(f"{c} {number(v)}" for c, v in p.top(top)), true, verdict])
        table = table_html(["example", "predicted", "probability", f"top {top}", "true", ""], rows,
                           [True, False, True, False, False, False])
    picture = pictures_html([result.plot]) if getattr(result, "plot", None) else ""
    return f'{STYLE}<div class="nnlab">{warnings}{head}{table}{picture}</div>'


def progress_html(rows: Sequence[tuple[str, int, int | None, str]], note: str = "") -> str:
    """A live progress display: per row its label, epochs done, epochs planned and the latest metrics."""
    lines = []
    for label, done, total, logs in rows:
        bar = f'<progress value="{int(done)}" max="{int(total)}"></progress>' if total else "<progress></progress>"
        count = f"{done}/{total}" if total else str(done)
        lines.append(f"<tr><td><strong>{escape(label)}</strong></td><td>{bar}</td>"
                     f'<td class="num">{escape(count)}</td><td class="muted">{escape(logs)}</td></tr>')
    extra = f'<div class="muted">{escape(note)}</div>' if note else ""
    return f'{STYLE}<div class="nnlab"><table><tbody>{"".join(lines)}</tbody></table>{extra}</div>'

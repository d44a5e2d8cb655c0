"""``nnlab report``: choose the runs as compare does, gather the report, write one HTML file."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from nnlab.errors import NnlabError
from nnlab.store.reading import Run, RunSet, collect, read_history
from nnlab.views.compare import Filter, select

#: The report's file name in the runs folder, by default.
DEFAULT_NAME = "report.html"


def check_output(path: Path) -> Path:
    """Refuse an output the report cannot be written to, before any work.

    Raises:
        NnlabError: for a name not ending in .html, a missing folder or one that cannot be written.
    """
    if path.suffix.lower() not in (".html", ".htm"):
        raise NnlabError("the report is one HTML file: give a name ending in .html", source=f"-o {path}")
    if path.is_dir():
        raise NnlabError("is a folder: give the report's file name, e.g. report.html", source=f"-o {path}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NnlabError(f"the folder {folder} does not exist", source=f"-o {path}")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise NnlabError(f"cannot write to {path}: permission denied", source=f"-o {path}")
    return path


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(partial, path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise NnlabError(f"cannot write the report: {err.strerror or err}", source=f"-o {path}") from None


def build_report(runs: list[Run], *, sources: list[str], filters: list[Filter], filter_texts: list[str],
                 group_by: str | None, versus: str | None, metric: str | None):
    """Gather everything the page shows (:class:`nnlab.reporting.content.Report`) for these runs."""
    from nnlab import __version__
    from nnlab.reporting import content

    listed = [r for r in runs if r.fields.get("kind") != "sweep"]
    sweeps = [r for r in runs if r.fields.get("kind") == "sweep" and r.readable]
    anchors = {r.run_id: f"run-{i}" for i, r in enumerate(listed)}
    table = content.runs_table(runs, anchors)
    warnings = [f"{r.run_id}: {r.warning}" for r in runs if r.warning]
    readable = [r for r in listed if r.readable]
    histories = {r.run_id: read_history(r.path, prefer_mean=r.fields.get("kind") == "kfold") for r in readable}
    trial_keys = list(dict.fromkeys(k for r in readable if isinstance(r.fields.get("trial_params"), dict)
                                    for k in r.fields["trial_params"]))
    labels = {r.run_id: content.run_label(r, trial_keys) for r in readable}
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    labels = {rid: (label if seen[label] == 1 else f"{label} {rid}") for rid, label in labels.items()}
    columns = content._history_columns(histories)
    drawn = readable[:content.MAX_CURVE_RUNS]
    curves = content.curve_rows(drawn, histories, labels, columns)
    curve_note = None
    if len(readable) > len(drawn):
        curve_note = (f"the curves of the first {len(drawn)} of {len(readable)} runs are drawn; "
                      "--filter or --group-by narrows them")
    groups, bands = None, {}
    reference = readable[0] if readable else None
    if group_by:
        groups, group_table = content.group_section(runs, group_by=group_by, versus=versus, metric=metric,
                                                    filters=filters)
        bands = content.band_rows(group_table, histories, columns)
        if group_table.comparisons:
            reference = group_table.comparisons[0].reference.runs[0]
    sweep_sections = [s for s in (content.sweep_section(r) for r in sweeps) if s is not None]
    sections = [content.run_section(r, i, label=labels.get(r.run_id, r.run_id), reference=reference,
                                    history=histories.get(r.run_id) or {},
                                    embed_pictures=True)
                for i, r in enumerate(listed)]
    left_out = content.embed_pictures(sections)
    fold_metrics = sorted({c["template"].split(":", 1)[1] for s in sections for c in s.charts
                           if c["template"].startswith("folds:")})
    unreadable = sum(1 for r in runs if not r.readable)
    header = [("runs", f"{len(listed)}" + (f" ({unreadable} unreadable)" if unreadable else "")
               + (f", and {len(sweeps)} sweep folder{'s' if len(sweeps) != 1 else ''}" if sweeps else "")),
              ("from", ", ".join(sources)),
              ("filters", ", ".join(filter_texts) or "none"),
              ("written", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
              ("by", f"nnlab {__version__}")]
    if group_by:
        header.insert(3, ("grouped by", group_by + (f", tested against {versus}" if versus else "")))
    if left_out:
        warnings.append(f"{content.MAX_PICTURES} pictures are embedded, those of the first runs listed; the other "
                        f"{left_out} are named by their files (--filter or --last narrows the runs)")
    return content.Report("nnlab report", header, table, groups, curves, bands, curve_note, sweep_sections,
                          sections, warnings, fold_metrics)


def write_report(paths: list[str], *, runs_dir: str | Path = "runs", output: Path | None = None,
                 filters: list[str] = (), last: int | None = None, group_by: str | None = None,
                 versus: str | None = None, metric: str | None = None, out: TextIO | None = None) -> Path:
    """``nnlab report``: one self-contained HTML page of the chosen runs.

    Args:
        paths: runs roots, run folders, ids or sweep folders, as for compare (none: ``runs_dir``).
        runs_dir: the default runs root, and where the report goes by default.
        output: the HTML file (default ``<runs_dir>/report.html``).
        filters, last: as for compare.
        group_by, versus, metric: the group table and its tests, as ``compare --group-by``.
        out: where the path and size are said (default stdout).

    Returns:
        The file written.

    Raises:
        NnlabError: for a bad option or output, or no runs found (exit code 2; no file is written).
    """
    from nnlab.reporting.assets import check_installed

    out = out or sys.stdout
    output = check_output(Path(output) if output is not None else Path(runs_dir) / DEFAULT_NAME)
    if versus is not None and group_by is None:
        raise NnlabError("compares groups of runs: add --group-by KEY", source=f"--versus {versus}")
    if last is not None and last < 1:
        raise NnlabError("must be at least 1", source="--last")
    check_installed()
    parsed = [Filter.parse(f) for f in filters]
    found: RunSet = collect(paths, runs_dir)
    try:
        chosen = select(found.runs, filters=parsed, last=last)
        if not chosen:
            where = ", ".join(map(str, paths)) if paths else str(runs_dir)
            why = " match the filters" if parsed and found.runs else ""
            raise NnlabError(f"no runs{why} found in {where}: nothing to report", source="nnlab report")
        report = build_report(chosen, sources=[str(p) for p in paths] or [str(runs_dir)], filters=parsed,
                              filter_texts=list(filters), group_by=group_by, versus=versus, metric=metric)
    finally:
        found.save()
    from nnlab.reporting.page import render

    html = render(report)
    _atomic_write(output, html)
    size = output.stat().st_size
    out.write(f"report of {len(chosen)} run{'s' if len(chosen) != 1 else ''}: {output} ({size / 1e6:.2f} MB)\n")
    for warning in report.warnings[:20]:
        sys.stderr.write(f"warning: {warning}\n")
    return output

"""``nnlab compare --group-by``: groups of runs, their mean ± std and intervals, and tests of a difference
(``--versus``).

The statistics are :mod:`nnlab.stats`'s (SciPy, imported only when an interval or a test is
computed); the runs are chosen and their cells formatted as :mod:`nnlab.views.compare` does.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, TextIO

from nnlab.errors import NnlabError
from nnlab.store.format import Status
from nnlab.store.reading import Run, RunSet, canonical_key, collect
from nnlab.views.compare import (BASE_COLUMNS, DATA_FORMATS, MAX_CURVES, Filter, all_columns, as_number, as_text,
                                 check_keys, check_options, console_for, default_direction, field_keys, main_metric,
                                 select, show_value, sort_value, write_warnings)
from nnlab.views.style import number, params_label
from nnlab.views.tables import fitted_tables, latex_table, markdown_table


# -- groups of runs: mean ± std, intervals, and tests of a difference --------------------------------

#: Kinds of folders never grouped: a sweep folder restates its best trial, a run of its own.
UNGROUPED_KINDS = ("sweep",)
#: The columns each metric of a group table takes, after the group's keys and n.
METRIC_PARTS = ("mean ± std", "95% CI", "min", "max")


@dataclass
class Group:
    """The runs that share their ``--group-by`` values (and their kind).

    Args:
        kind: the runs' kind (train, kfold): never mixed in one group.
        values: the key values, in the order of the keys.
        runs: the runs, in the order listed.
        stats: per shown metric, :class:`nnlab.stats.Description` of the runs' values.
    """

    kind: str | None
    values: tuple
    runs: list[Run]
    stats: dict[str, Any]


@dataclass
class Versus:
    """One group compared with its reference group (``--versus``) on one metric."""

    group: Group
    reference: Group
    metric: str
    result: Any  # nnlab.stats.Difference
    pairing: str | None  # why the values were paired, or why k-fold groups were not
    sentence: str = ""


def parse_group_keys(text: str) -> list[str]:
    """``--group-by a,b``: the keys, each once, in order.

    Raises:
        NnlabError: when no key is given.
    """
    keys = list(dict.fromkeys(canonical_key(k) for k in text.split(",") if k.strip()))
    if not keys:
        raise NnlabError("give one or more keys separated by commas, e.g. model.layers.0.Dense.units or "
                         "optimizer.name,dataset", source="--group-by")
    return keys


def check_group_keys(runs: list[Run], keys: list[str], what: str = "--group-by") -> None:
    """:func:`check_keys`, with the closest dotted config key suggested for a misspelt one."""
    try:
        check_keys(runs, keys, what)
    except NnlabError as err:
        if "did you mean" in err.message:
            raise
        from nnlab.suggestions import closest_name

        config = next((r.config() for r in runs if r.readable and r.config()), {})
        for key in keys:
            if key in field_keys(runs) or key in BASE_COLUMNS or any(key in r.config() for r in runs):
                continue
            close = closest_name(key, config)
            if close is not None:
                raise NnlabError(f"unknown key '{key}'; did you mean '{close}'? (a field such as name, dataset, "
                                 "kind, sweep_id or group, or a dotted config key)", source=what) from None
        raise


def group_metrics(runs: list[Run], columns: str | None) -> list[str]:
    """The metrics a group table shows: ``--columns`` if given (``all``: every metric), else each
    run's main test metric (and, for k-fold runs, the main validation figure: their mean over the folds).

    Raises:
        NnlabError: for a key no run has, or one that is no number in any run.
    """
    if columns and columns.strip() == "all":  # every metric some run has
        return [k for k in all_columns(runs) if k.startswith(_SUMMARY_PREFIXES) and not k.endswith("_rows")
                and any(_metric_value(r, k) is not None for r in runs)]
    if columns:
        metrics = list(dict.fromkeys(canonical_key(c) for c in columns.split(",") if c.strip()))
        if not metrics:
            raise NnlabError("give metric names separated by commas, e.g. test_accuracy,test_loss",
                             source="--columns")
        check_keys(runs, metrics, "--columns")
        for metric in metrics:
            if not any(_metric_value(r, metric) is not None for r in runs):
                raise NnlabError(f"{metric} is not a number in any of these runs: with --group-by, --columns "
                                 "names the metrics to average (test_accuracy, val_loss, ...)", source="--columns")
        return metrics
    found = []
    for run in runs:
        test = main_metric(run)
        if test:
            found.append(f"test_{test}")
        if run.fields.get("kind") == "kfold" or not test:
            val = main_metric(run, "val_")
            if val:
                found.append(f"val_{val}")
    return list(dict.fromkeys(found))


def _metric_value(run: Run, metric: str) -> float | None:
    """A run's number for a metric (or a numeric config key); None when it has none."""
    if metric in run.fields:
        value = run.fields[metric]
    elif metric.startswith(_SUMMARY_PREFIXES) or metric in BASE_COLUMNS:
        value = None  # a metric the run lacks: its config.yaml is not read for it
    else:
        value = run.config().get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


#: Summary fields that never come from a config.
_SUMMARY_PREFIXES = ("train_", "val_", "test_", "best_", "baseline_")


def _group_value(value: Any) -> tuple:
    """What tells two runs' key values apart: numbers by value (16 is 16.0), the rest by their text."""
    return sort_value(value)


def group_runs(runs: list[Run], keys: list[str], metrics: list[str], *,
               status_filtered: bool) -> tuple[list[Group], list[str]]:
    """The runs in groups by their key values and kind, each metric described.

    Args:
        runs: the runs listed (after --filter and --last), in order.
        keys: the ``--group-by`` keys.
        metrics: the metrics to describe.
        status_filtered: whether --filter chose the statuses (else only completed runs are grouped).

    Returns:
        The groups (by kind as first met, then key values in order) and notes on the runs left out.
    """
    from nnlab.stats import describe

    fields = field_keys(runs)
    notes = []
    unreadable = [r for r in runs if not r.readable]
    sweeps = [r for r in runs if r.readable and r.fields.get("kind") in UNGROUPED_KINDS]
    kept = [r for r in runs if r.readable and r.fields.get("kind") not in UNGROUPED_KINDS]
    if not status_filtered:
        others = [r for r in kept if r.fields.get("status") != Status.COMPLETED.value]
        kept = [r for r in kept if r.fields.get("status") == Status.COMPLETED.value]
        if others:
            counts = _counts(r.fields.get("status") for r in others)
            notes.append(f"{_runs(len(others))} not completed ({counts}) left out; --filter status=... groups "
                         "those instead")
    if sweeps:
        several = len(sweeps) > 1
        notes.append(f"{len(sweeps)} sweep folder{'s' if several else ''} left out: "
                     f"{'their' if several else 'its'} trials are runs of their own")
    if unreadable:
        notes.append(f"{_runs(len(unreadable))} unreadable or incomplete left out")
    buckets: dict[tuple, Group] = {}
    lacking: dict[str, int] = {}
    for run in kept:
        values = tuple(run.get(k, k not in fields) for k in keys)
        missing = [k for k, v in zip(keys, values) if v is None]
        if missing:
            lacking[missing[0]] = lacking.get(missing[0], 0) + 1
            continue
        ident = (run.fields.get("kind"), tuple(_group_value(v) for v in values))
        group = buckets.get(ident)
        if group is None:
            group = buckets[ident] = Group(run.fields.get("kind"), values, [], {})
        group.runs.append(run)
    for key, count in lacking.items():
        why = " (runs written before nnlab recorded it)" if key in ("group", "repeat") else ""
        notes.append(f"{_runs(count)} without {key}{why} left out")
    kinds = list(dict.fromkeys(g.kind for g in buckets.values()))
    groups = sorted(buckets.values(), key=lambda g: (kinds.index(g.kind), [_group_value(v) for v in g.values]))
    for group in groups:
        group.stats = {m: describe(_metric_value(r, m) for r in group.runs) for m in metrics}
    return groups, notes


def _runs(count: int) -> str:
    return f"{count} run{'s' if count != 1 else ''}"


def _counts(items: Iterable[Any]) -> str:
    counted: dict[str, int] = {}
    for item in items:
        counted[str(item)] = counted.get(str(item), 0) + 1
    return ", ".join(f"{k} {v}" for k, v in counted.items())


def split_by_kind(groups: list[Group], keys: list[str]) -> bool:
    """Whether the groups are of more than one kind (and ``kind`` is not a key): kind is then shown."""
    return "kind" not in keys and len({g.kind for g in groups}) > 1


def group_label(group: Group, keys: list[str], with_kind: bool = False) -> str:
    """``units=64`` (``units=64, name=digits``; ``units=64 (kfold)`` when kinds are shown)."""
    label = params_label(dict(zip(keys, group.values)), keys)
    return f"{label} ({group.kind})" if with_kind else label


def short_keys(keys: list[str]) -> list[str]:
    """Each key by its shortest ending that tells it from the others (``units``), as labels read."""
    return [params_label({key: ""}, keys)[:-1] for key in keys]


def sort_groups(groups: list[Group], sort: str, ascending: bool | None) -> list[Group]:
    """Groups by the mean of a metric or key over their runs (in its direction; groups without it last)."""
    key = canonical_key(sort)
    means = {}
    for group in groups:
        found = [v for v in (_metric_value(r, key) for r in group.runs) if v is not None]
        means[id(group)] = sum(found) / len(found) if found else None
    if ascending is None:
        ascending = default_direction(key, [r for g in groups for r in g.runs if _metric_value(r, key) is not None]) \
            != "max"
    present = [g for g in groups if means[id(g)] is not None]
    present.sort(key=lambda g: means[id(g)], reverse=not ascending)
    return present + [g for g in groups if means[id(g)] is None]


# -- --versus ------------------------------------------------------------------------------------------

def find_reference(groups: list[Group], keys: list[str], versus: str) -> list[Group]:
    """The groups whose key values are ``versus`` (one per kind): ``16``, ``units=16``, or for
    several keys their values in key order, separated by commas (``64,adam``).

    Raises:
        NnlabError: when no group has those values (the message lists the groups'), or the
            number of values is not the number of keys.
    """
    parts = [p.strip() for p in versus.split(",")] if len(keys) > 1 else [versus.strip()]
    if len(parts) != len(keys):
        raise NnlabError(f"give one value per --group-by key, separated by commas, in their order "
                         f"({','.join(keys)})", source=f"--versus {versus}")
    shorts = short_keys(keys)
    wanted = []
    for key, short, part in zip(keys, shorts, parts):
        name, eq, value = part.partition("=")
        wanted.append(value.strip() if eq and name.strip() in (key, short) else part)
    found = [g for g in groups if all(_same_value(v, w) for v, w in zip(g.values, wanted))]
    if not found:
        labels = list(dict.fromkeys(",".join(as_text(v) for v in g.values) for g in groups))
        listing = ", ".join(labels[:30]) + (", ..." if len(labels) > 30 else "")
        raise NnlabError(f"no group has {','.join(keys)}={versus} (the groups are: {listing or 'none'})",
                         source=f"--versus {versus}")
    return found


def _same_value(value: Any, wanted: str) -> bool:
    have, want = as_number(value), as_number(wanted)
    if have is not None and want is not None and not isinstance(value, str):
        return have == want
    return as_text(value) == wanted


def _fold_values(run: Run, metric: str) -> tuple[tuple, list[float]] | None:
    """A k-fold run's per-fold values of ``val_<name>`` and what fixes its folds (k, shuffle,
    the seed when shuffled, dataset, rows); None when it has no complete set."""
    if run.fields.get("kind") != "kfold" or not metric.startswith("val_"):
        return None
    from nnlab.store.reading import read_kfold

    try:
        data = read_kfold(run.path)
    except NnlabError:
        return None
    if not data or not isinstance(data.get("folds"), list):
        return None
    folds, k = data["folds"], data.get("k")
    name = metric[len("val_"):]
    values = [f.get("validation", {}).get(name) if isinstance(f, dict) and isinstance(f.get("validation"), dict)
              else None for f in folds]
    if len(values) != k or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        return None
    shuffle = bool(data.get("shuffle"))
    # The folds are cut with kfold.split_seed (before it existed, with the run's seed).
    cut_seed = data.get("split_seed", data.get("seed"))
    cut = (k, shuffle, cut_seed if shuffle else None, run.fields.get("dataset"), run.fields.get("train_rows"))
    return cut, [float(v) for v in values]


def _describe_cut(cut: tuple) -> str:
    k, shuffle, seed = cut[:3]
    return f"k={k}, " + (f"shuffled with seed {seed}" if shuffle else "not shuffled")


def paired_folds(group: Group, reference: Group, metric: str) -> tuple[list[float], list[float], str] | None | str:
    """Per-fold values of two k-fold groups over the same folds, for a paired test.

    Every run of both must have cut its folds the same way (same k, shuffle, seed when
    shuffled, dataset and rows); each fold's value is then the mean over the group's runs.

    Returns:
        ``(group's values, reference's values, why they are paired)``; a reason text when
        both are k-fold groups whose folds differ; None when they are not both k-fold groups.
    """
    if group.kind != "kfold" or reference.kind != "kfold" or not metric.startswith("val_"):
        return None
    sets = {}
    for g in (group, reference):
        read = [_fold_values(r, metric) for r in g.runs]
        if not read or any(v is None for v in read):
            return f"not paired over folds: some runs have no complete per-fold {metric} in their kfold.json"
        sets[id(g)] = read
    cuts = {cut for g in (group, reference) for cut, _ in sets[id(g)]}
    if len(cuts) != 1:
        return "not paired over folds: the runs did not all cut the same folds (k, shuffle, seed or data differ)"
    cut = cuts.pop()

    def per_fold(g: Group) -> list[float]:
        runs = sets[id(g)]
        return [sum(values[i] for _, values in runs) / len(runs) for i in range(cut[0])]

    return per_fold(group), per_fold(reference), (f"paired t-test and Wilcoxon signed-rank: both are k-fold "
                                                  f"runs over the same folds ({_describe_cut(cut)})")


def compare_with_reference(groups: list[Group], keys: list[str], versus: str, metric: str,
                           direction: str | None) -> tuple[list[Versus], list[str]]:
    """Every group against the reference group of its kind, on ``metric``; p-values adjusted (Holm).

    Returns:
        The comparisons, in group order, each with its sentence; and notes (groups of a kind
        that has no reference group).
    """
    from nnlab.stats import ALPHA, difference, holm, repeats_needed

    references = find_reference(groups, keys, versus)
    by_kind = {g.kind: g for g in references}
    with_kind = split_by_kind(groups, keys)
    comparisons, notes = [], []
    for group in groups:
        if group in references:
            continue
        reference = by_kind.get(group.kind)
        if reference is None:
            notes.append(f"{group_label(group, keys, with_kind)}: no {group.kind} group has "
                         f"{','.join(keys)}={versus} to compare it with (kinds are compared only among themselves)")
            continue
        paired = paired_folds(group, reference, metric)
        if isinstance(paired, tuple):
            values, ref_values, pairing = paired
            result = difference(values, ref_values, paired=True)
        else:
            pairing = paired
            result = difference(group.stats[metric].values, reference.stats[metric].values)
        comparisons.append(Versus(group, reference, metric, result, pairing))
    for comparison, adjusted in zip(comparisons, holm(c.result.p_t for c in comparisons)):
        comparison.result.p_holm = adjusted
        r = comparison.result
        if r.p_t is not None and adjusted is not None and adjusted >= ALPHA and not r.paired:
            r.repeats_needed = repeats_needed(comparison.group.stats[metric].values,
                                              comparison.reference.stats[metric].values)
    tested = sum(1 for c in comparisons if c.result.p_t is not None)
    for comparison in comparisons:
        comparison.sentence = versus_sentence(comparison, keys, with_kind, direction, tested)
        if comparison.pairing:
            comparison.sentence += f"; {comparison.pairing}"
    return comparisons, notes


def _p(value: float | None) -> str:
    """A p-value as printed: three decimals (``0.002``), below 0.001 two significant digits (``9.7e-04``)."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def versus_sentence(comparison: Versus, keys: list[str], with_kind: bool, direction: str | None,
                    count: int) -> str:
    """The comparison in plain words.

    ``units=64 beats units=16: 0.0200 higher test_accuracy (95% CI 0.0110 to 0.0290; Welch p =
    0.0020, n = 5 and 5)``, or ``units=32 against units=16: no difference detectable at n = 3
    and 3 (...); about 12 repeats per group would detect a difference of this size``.
    """
    from nnlab.stats import ALPHA

    r, metric = comparison.result, comparison.metric
    name = group_label(comparison.group, keys, with_kind)
    ref = group_label(comparison.reference, keys, with_kind)
    if r.difference is None:
        return f"{name} against {ref}: {r.why}"
    sign = 1.0 if r.difference >= 0 else -1.0
    higher = "higher" if r.difference >= 0 else "lower"
    amount = f"{number(abs(r.difference))} {higher} {metric}" if r.difference else f"the same mean {metric}"
    if r.p_t is None:
        return f"{name} against {ref}: {amount}; no test: {r.why}"
    low, high = sorted((sign * r.ci_low, sign * r.ci_high)) if r.ci_low is not None else (None, None)
    interval = f"95% CI {number(low)} to {number(high)}"
    test = "paired t" if r.paired else "Welch"
    ps = f"{test} p = {_p(r.p_t)}" + (f", Holm p = {_p(r.p_holm)}" if count > 1 else "")
    detected = r.p_holm is not None and r.p_holm < ALPHA
    if not detected:
        sizes = f"over {r.n} shared folds" if r.paired else f"at n = {r.n} and {r.n_reference}"
        sentence = f"{name} against {ref}: no difference detectable {sizes} ({amount}, {interval}; {ps})"
        if r.repeats_needed is not None:
            more = "more than 1000" if r.repeats_needed > 1000 else f"about {r.repeats_needed}"
            sentence += f"; {more} repeats per group would detect a difference of this size (80% power)"
        return sentence
    if direction not in ("max", "min") or r.difference == 0:
        sizes = f"over {r.n} shared folds" if r.paired else f"n = {r.n} and {r.n_reference}"
        return (f"{name} against {ref}: {amount} ({interval}; {ps}, {sizes}); which is better cannot be told: "
                f"{metric} has no known direction")
    group_better = (r.difference > 0) == (direction == "max")
    if group_better:
        winner, loser, sizes = name, ref, f"n = {r.n} and {r.n_reference}"
    else:  # said from the winner's side: the reference is higher (or lower) by as much
        winner, loser, sizes = ref, name, f"n = {r.n_reference} and {r.n}"
        higher = "lower" if higher == "higher" else "higher"
        amount = f"{number(abs(r.difference))} {higher} {metric}"
    if r.paired:
        sizes = f"over {r.n} shared folds"
    return f"{winner} beats {loser}: {amount} ({interval}; {ps}, {sizes})"


# -- rendering a group table -----------------------------------------------------------------------------

def _ci(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{number(low)} to {number(high)}"


def group_cells(groups: list[Group], keys: list[str], metrics: list[str]) -> tuple[list[str], list[list[str]],
                                                                                    list[bool], list[list[int]], int]:
    """The text of a group table: headers, rows, right-aligned columns, the metric column
    groups (each metric's four columns) and how many columns lead (keys, kind, n)."""
    with_kind = split_by_kind(groups, keys)
    headers = short_keys(keys) + (["kind"] if with_kind else []) + ["n"]
    lead = len(headers)
    rows = []
    for group in groups:
        row = [show_value(v) for v in group.values] + ([group.kind or "-"] if with_kind else [])
        row.append(str(len(group.runs)))
        for metric in metrics:
            d = group.stats[metric]
            mean = "-" if d.mean is None else f"{number(d.mean)} ± {number(d.std)}"
            row += [mean, _ci(d.ci_low, d.ci_high), number(d.min), number(d.max)]
        rows.append(row)
    right = [any(as_number(v) is not None and not isinstance(v, str) for v in (g.values[i] for g in groups))
             for i in range(len(keys))] + ([False] if with_kind else []) + [True]
    parts = []
    for metric in metrics:
        parts.append(list(range(len(headers), len(headers) + len(METRIC_PARTS))))
        headers += [metric, "95% CI", "min", "max"]
        right += [True] * len(METRIC_PARTS)
    return headers, rows, right, parts, lead


def versus_cells(comparisons: list[Versus], keys: list[str], with_kind: bool) -> tuple[list[str], list[list[str]],
                                                                                        list[bool], int]:
    """The text of the --versus table: one row per group compared (n: its values; the reference's
    are in the title; a paired comparison's are the shared folds)."""
    headers = short_keys(keys) + (["kind"] if with_kind else []) + ["n", "diff", "95% CI", "t-test p", "rank p",
                                                                      "Holm p", "hedges g"]
    paired = any(c.result.paired for c in comparisons)
    if paired:
        headers.append("tests")
    lead = len(keys) + (1 if with_kind else 0)
    rows = []
    for c in comparisons:
        r = c.result
        row = [show_value(v) for v in c.group.values] + ([c.group.kind or "-"] if with_kind else [])
        row += [str(r.n),
                "-" if r.difference is None else ("+" if r.difference >= 0 else "-") + number(abs(r.difference)),
                _ci(r.ci_low, r.ci_high), _p(r.p_t), _p(r.p_rank), _p(r.p_holm), _g(r.hedges_g)]
        if paired:
            row.append(f"paired t, Wilcoxon ({r.n} folds)" if r.paired else "Welch, Mann-Whitney")
        rows.append(row)
    right = [False] * lead + [True] * 7 + ([False] if paired else [])
    right[:len(keys)] = [all(as_number(v) is not None and not isinstance(v, str) for v in (c.group.values[i]
                             for c in comparisons)) for i in range(len(keys))]
    return headers, rows, right, lead


def group_notes(groups: list[Group], keys: list[str], metrics: list[str]) -> list[str]:
    """What the table leaves unsaid: groups too small for a spread, metrics some runs lack, kinds kept apart."""
    notes = []
    with_kind = split_by_kind(groups, keys)
    if with_kind:
        kinds = ", ".join(dict.fromkeys(str(g.kind) for g in groups))
        notes.append(f"the groups split by kind too ({kinds}): runs of different kinds are never averaged together")
    for group in groups:
        reasons = list(dict.fromkeys(d.why for d in group.stats.values() if d.why and d.n > 0))
        for why in reasons:
            notes.append(f"{group_label(group, keys, with_kind)}: {why}")
    for metric in metrics:
        lacking = [(g, g.stats[metric].missing) for g in groups if g.stats[metric].missing]
        if lacking:
            total = sum(n for _, n in lacking)
            where = ", ".join(f"{group_label(g, keys, with_kind)}: {n}" for g, n in lacking)
            notes.append(f"{_runs(total)} without {metric} counted out of its figures ({where})")
    return notes


def group_json(groups: list[Group], keys: list[str], metrics: list[str],
               comparisons: list[Versus] | None) -> list[dict[str, Any]]:
    """A JSON-ready list: per group its key values, kind, n, runs and per metric mean, std,
    ci_low, ci_high, min, max, values (in run order); with --versus, ``versus`` too (None
    for a reference group)."""
    by_group = {id(c.group): c for c in comparisons or []}
    items = []
    for group in groups:
        item: dict[str, Any] = dict(zip(keys, group.values))
        item.setdefault("kind", group.kind)
        item["n"] = len(group.runs)
        item["runs"] = [r.run_id for r in group.runs]
        for metric in metrics:
            item[metric] = group.stats[metric].as_dict()
        if comparisons is not None:
            c = by_group.get(id(group))
            item["versus"] = None if c is None else {
                "reference": dict(zip(keys, c.reference.values)), "metric": c.metric, **c.result.as_dict(),
                "pairing": c.pairing, "says": c.sentence}
        items.append(item)
    return items


def group_csv(groups: list[Group], keys: list[str], metrics: list[str], comparisons: list[Versus] | None,
              out: TextIO) -> None:
    """CSV: one row per group, raw figures (``<metric>_mean``, ``_std``, ``_ci_low``, ...)."""
    parts = ("mean", "std", "ci_low", "ci_high", "min", "max", "n", "missing")
    header = keys + ([] if "kind" in keys else ["kind"]) + ["n"] + [f"{m}_{p}" for m in metrics for p in parts]
    versus = ("difference", "ci_low", "ci_high", "p_t", "p_rank", "p_holm", "hedges_g", "tests")
    if comparisons is not None:
        header += [f"versus_{p}" for p in versus]
    by_group = {id(c.group): c for c in comparisons or []}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for group in groups:
        row = [_csv_value(v) for v in group.values] + ([] if "kind" in keys else [group.kind]) + [len(group.runs)]
        for metric in metrics:
            d = group.stats[metric].as_dict()
            row += [_csv_value(d[p]) for p in parts]
        if comparisons is not None:
            c = by_group.get(id(group))
            r = c.result.as_dict() if c else {}
            row += [_csv_value(r.get(p)) for p in versus]
        writer.writerow(row)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return as_text(value) if isinstance(value, bool) else value


@dataclass
class GroupTable:
    """What ``--group-by`` found: the groups, the metrics described, the comparisons and the notes.

    Args:
        keys: the --group-by keys.
        groups: the groups, in order.
        metrics: the metrics described in each group.
        compared: the metric --versus compared (None without --versus).
        comparisons: each group against its reference (None without --versus).
        notes: runs left out, groups too small, metrics lacking, groups without a reference.
    """

    keys: list[str]
    groups: list[Group]
    metrics: list[str]
    compared: str | None
    comparisons: list[Versus] | None
    notes: list[str]


def group_table(runs: list[Run], *, keys: list[str], filters: list[Filter], columns: str | None = None,
                sort: str | None = None, ascending: bool | None = None, versus: str | None = None,
                metric: str | None = None) -> GroupTable:
    """Group the runs, describe each metric, and test against ``versus`` (what the table and the
    report show).

    Args:
        runs: the runs listed (after --filter and --last), in order.
        keys: the --group-by keys; kind is always part of the grouping.
        filters: the --filter conditions (a status among them lets other statuses be grouped).
        columns: the metrics to show (default :func:`group_metrics`).
        sort, ascending: order the groups by the mean of this key.
        versus: the reference group's values; metric: the one compared (default the main test metric).

    Returns:
        The table.

    Raises:
        NnlabError: for an unknown key or metric, or a --versus value no group has.
    """
    check_group_keys(runs, keys)
    if sort:
        check_keys(runs, [canonical_key(sort)], "--sort")
    metrics = group_metrics(runs, columns)
    compared = None
    if versus is not None:
        compared = canonical_key(metric) if metric else (metrics[0] if metrics else None)
        if compared is None:
            raise NnlabError("these runs have no test or validation metric to compare; name one with --metric",
                             source=f"--versus {versus}")
        check_keys(runs, [compared], "--metric")
        if compared not in metrics:
            metrics.insert(0, compared)
    groups, left_out = group_runs(runs, keys, metrics, status_filtered=any(f.key == "status" for f in filters))
    if sort:
        groups = sort_groups(groups, sort, ascending)
    comparisons, versus_notes = None, []
    if compared is not None:
        direction = default_direction(compared, [r for g in groups for r in g.runs
                                                 if _metric_value(r, compared) is not None])
        comparisons, versus_notes = compare_with_reference(groups, keys, versus, compared, direction)
    notes = left_out + (group_notes(groups, keys, metrics) if groups else []) + versus_notes
    return GroupTable(keys, groups, metrics, compared, comparisons, notes)


def versus_title(table: GroupTable) -> str:
    """The title of the --versus table: the metric, the reference groups, the tests and Holm's count."""
    comparisons, keys, compared = table.comparisons or [], table.keys, table.compared
    with_kind = split_by_kind(table.groups, keys)
    references = {id(c.reference): c.reference for c in comparisons}
    ref_text = ", ".join(f"{group_label(g, keys)} ({g.kind}, n = {g.stats[compared].n})" if with_kind else
                         f"{group_label(g, keys)} (n = {g.stats[compared].n})" for g in references.values())
    tests = "Welch's t-test and Mann-Whitney U" + (
        " (paired t-test and Wilcoxon signed-rank for k-fold runs over the same folds)"
        if any(c.result.paired for c in comparisons) else "")
    tested = sum(1 for c in comparisons if c.result.p_t is not None)
    return (f"{compared}: each group minus {ref_text}; {tests}, two-sided; Holm-adjusted over the "
            f"{tested} comparison{'s' if tested != 1 else ''} tested")


def group_title(table: GroupTable) -> str:
    """``4 groups of 14 runs by model.layers.0.Dense.units (95% CI: Student t)``."""
    groups, keys = table.groups, table.keys
    total = sum(len(g.runs) for g in groups)
    by = ", ".join(keys) + (" and kind" if split_by_kind(groups, keys) else "")
    return f"{len(groups)} group{'s' if len(groups) != 1 else ''} of {_runs(total)} by {by} (95% CI: Student t)"


def run_groups(runs: list[Run], *, keys: list[str], filters: list[Filter], columns: str | None,
               sort: str | None, ascending: bool | None, versus: str | None, metric: str | None, fmt: str,
               out: TextIO, err: TextIO) -> list[Group]:
    """``nnlab compare --group-by KEYS [--versus VALUE]``: the group table, then the comparisons.

    Args:
        runs, keys, filters, columns, sort, ascending, versus, metric: see :func:`group_table`.
        fmt: table, markdown, latex, csv or json.
        out, err: where the tables and the notes go.

    Returns:
        The groups.

    Raises:
        NnlabError: for an unknown key or metric, or a --versus value no group has.
    """
    table = group_table(runs, keys=keys, filters=filters, columns=columns, sort=sort, ascending=ascending,
                        versus=versus, metric=metric)
    groups, metrics, comparisons, notes = table.groups, table.metrics, table.comparisons, table.notes
    if fmt == "json":
        from nnlab.store.folder import to_json

        out.write(to_json(group_json(groups, keys, metrics, comparisons)))
    elif fmt == "csv":
        group_csv(groups, keys, metrics, comparisons, out)
    if fmt in ("json", "csv"):
        write_notes([*(f"note: {n}" for n in notes), *(c.sentence for c in comparisons or [])], fmt, out, err)
        return groups
    if not groups:
        err.write("no runs to group" + (" (none match the filters)" if filters else "") + "\n")
        for note in notes:
            err.write(f"note: {note}\n")
        return groups
    headers, rows, right, parts, lead = group_cells(groups, keys, metrics)
    render_table(fmt, group_title(table), headers, rows, right, parts, lead, out)
    if comparisons:
        vheaders, vrows, vright, vlead = versus_cells(comparisons, keys, split_by_kind(groups, keys))
        out.write("\n")
        render_table(fmt, versus_title(table), vheaders, vrows, vright, [[i] for i in range(vlead, len(vheaders))],
                     vlead, out)
    write_notes([f"note: {n}" for n in notes] + [c.sentence for c in comparisons or []], fmt, out, err)
    return groups


def history_metric(metric: str | None) -> str | None:
    """The history column a group plot draws: ``metric`` if given (a test or summary metric, as
    --versus takes, is drawn as its per-epoch validation curve), else val_loss, else loss."""
    if metric is None:
        return None
    key = canonical_key(metric)
    for prefix in ("test_", "best_"):
        if key.startswith(prefix):
            return "val_" + key[len(prefix):]
    return key


def group_bands(groups: list[Group], keys: list[str], histories: dict[str, dict[str, list[float]]], column: str,
                warn=None) -> list[tuple[str, Any]]:
    """Each group's mean curve of a history column with its spread (:func:`nnlab.stats.mean_curve`),
    labelled ``units=16 (n = 5)``; what the PNG and the report draw.

    Args:
        groups: the groups; keys: the --group-by keys, for the labels.
        histories: each run's history by run id.
        column: the history column.
        warn: called for each run without the column, and each group whose runs ran different
            numbers of epochs (None: say nothing).

    Returns:
        ``(label, band)`` per group that has the column, in group order.
    """
    from nnlab.store.format import HISTORY
    from nnlab.stats import mean_curve

    warn = warn or (lambda _: None)
    with_kind = split_by_kind(groups, keys)
    bands = []
    for group in groups:
        curves = []
        for run in group.runs:
            history = histories.get(run.run_id) or {}
            if column not in history:
                warn(f"{run.run_id}: {'its history has no ' + column if history else 'no ' + HISTORY}, "
                     "left out of the figure")
                continue
            curves.append(history[column])
        if not curves:
            continue
        lengths = sorted({len(c) for c in curves})
        if len(lengths) > 1:
            warn(f"{group_label(group, keys, with_kind)}: its runs ran {lengths[0]} to {lengths[-1]} epochs; "
                 "each epoch's mean is over the runs that reached it")
        bands.append((f"{group_label(group, keys, with_kind)} (n = {len(curves)})", mean_curve(curves)))
    return bands


def plot_groups(groups: list[Group], keys: list[str], metric: str | None, path: Path,
                warn) -> tuple[Path, str, int]:
    """Each group's mean learning curve with a ±1 std band, in one PNG (a k-fold run's curve is
    its mean over the folds).

    Args:
        groups: the groups (the first MAX_CURVES are drawn).
        keys: the --group-by keys, for the labels.
        metric: the history column (default val_loss, else loss).
        path: the PNG file.
        warn: called with a one-line message for each run left out and each group whose runs
            ran different numbers of epochs.

    Returns:
        The file written, the column drawn and how many groups were drawn.

    Raises:
        NnlabError: when no run of any group has that column in its history.
    """
    from nnlab.store.format import HISTORY
    from nnlab.store.reading import read_history

    if len(groups) > MAX_CURVES:
        warn(f"drawing the first {MAX_CURVES} of {len(groups)} groups; narrow them with --filter")
        groups = groups[:MAX_CURVES]
    histories = {id(r): read_history(r.path, metric or "val_loss", prefer_mean=True)
                 for g in groups for r in g.runs}
    available = sorted({c for h in histories.values() for c in h if c != "epoch"})
    column = metric or ("val_loss" if "val_loss" in available else "loss")
    bands = [(label, band.epochs, band.mean, band.std)
             for label, band in group_bands(groups, keys, {r.run_id: histories[id(r)] for g in groups
                                                          for r in g.runs}, column, warn)]
    if not bands:
        from nnlab.suggestions import unknown_name_message

        raise NnlabError(unknown_name_message("history column", column, available) if available else
                         f"none of these runs has a {HISTORY}", source=f"--metric {column}")
    from nnlab.plots import group_curves

    try:
        return group_curves(bands, column, path), column, len(bands)
    except OSError as err:
        raise NnlabError(f"cannot write the figure: {err.strerror or err}", source=f"--plot {path}") from None


def render_table(fmt: str, title: str, headers: list[str], rows: list[list[str]], right: list[bool],
                 parts: list[list[int]], lead: int, out: TextIO, bold=()) -> None:
    """A table of cells with its title, in the format asked for (table, markdown or latex)."""
    if fmt == "markdown":
        out.write(f"**{title}**\n\n")
        markdown_table(headers, rows, right, out, bold)
    elif fmt == "latex":
        latex_table(headers, rows, right, out, bold, comment=title)
    else:
        fitted_tables(headers, rows, right, parts, lead, out, title, bold)


def write_notes(lines: list[str], fmt: str, out: TextIO, err: TextIO) -> None:
    """Notes and plain-words sentences under the tables: a list in Markdown, lines in the terminal,
    on stderr for the formats meant for other programs (csv, json, latex)."""
    if not lines:
        return
    if fmt in DATA_FORMATS:
        err.write("".join(line + "\n" for line in lines))
    elif fmt == "markdown":
        out.write("\n" + "\n".join(f"- {line}" for line in lines) + "\n")
    else:
        from rich.text import Text

        out.write("\n")
        console = console_for(out)
        for line in lines:
            console.print(Text(line))



def run_group_compare(paths: list[str], *, group_by: str | None = None, rows: str | None = None,
                      cols: str | None = None, runs_dir: str | Path = "runs", sort: str | None = None,
                      ascending: bool | None = None, filters: list[str] = (), last: int | None = None,
                      columns: str | None = None, fmt: str = "table", plot: Path | None = None,
                      metric: str | None = None, versus: str | None = None, out: TextIO | None = None,
                      err: TextIO | None = None) -> list[Run]:
    """``nnlab compare --group-by KEYS [--versus VALUE]`` or ``--rows KEY --cols KEY``: collect and
    select as compare does, then the groups (or the pivot), and their mean curves.

    Args:
        paths, runs_dir, sort, ascending, filters, last, columns, fmt: as for
            :func:`nnlab.views.compare.run_compare`.
        group_by: ``KEY[,KEY...]``: one row per group of runs (:func:`run_groups`).
        rows, cols: instead of ``group_by``, a pivot of one metric (:mod:`nnlab.views.pivot`).
        plot: a PNG file for each group's mean curve with a ±1 std band (:func:`plot_groups`).
        metric: with ``versus``, the metric compared; in a pivot, the metric in the cells; for
            ``plot``, the history column (a test metric is drawn as its validation curve).
        versus: the values of the reference group the others are tested against.
        out, err: where rows and notes go (default stdout, stderr).

    Returns:
        The runs listed, in order.

    Raises:
        NnlabError: for a bad option, key, metric or value (exit code 2).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    check_options(fmt=fmt, last=last, plot=plot)
    pivot = rows is not None or cols is not None
    if pivot:
        from nnlab.views.pivot import check_pivot_options

        check_pivot_options(rows=rows, cols=cols, group_by=group_by, versus=versus, columns=columns, sort=sort)
        keys = [canonical_key(rows), canonical_key(cols)]
    else:
        keys = parse_group_keys(group_by or "")
    parsed = [Filter.parse(f) for f in filters]
    found: RunSet = collect(paths, runs_dir)
    warnings: list[str] = []
    try:
        chosen = select(found.runs, filters=parsed, last=last)
        status_filtered = any(f.key == "status" for f in parsed)
        if pivot:
            from nnlab.views.pivot import run_pivot

            groups, _ = run_pivot(chosen, row_key=keys[0], col_key=keys[1], metric=metric,
                                  status_filtered=status_filtered, filtered=bool(parsed), fmt=fmt, out=out, err=err)
        else:
            groups = run_groups(chosen, keys=keys, filters=parsed, columns=columns, sort=sort, ascending=ascending,
                                versus=versus, metric=metric, fmt=fmt, out=out, err=err)
        if plot is not None and groups:
            # Tests are drawn as the compared metric's curve; otherwise the curve compare draws.
            drawn_metric = metric or (next(iter(group_metrics(chosen, columns)), None) if versus else None)
            written, column, drawn = plot_groups(groups, keys, history_metric(drawn_metric), plot,
                                                 warnings.append)
            (err if fmt in DATA_FORMATS else out).write(
                f"{drawn} group curve{'s' if drawn != 1 else ''} of {column} (mean ± 1 std): {written}\n")
        write_warnings(warnings + [f"{r.run_id}: {r.warning}" for r in chosen if r.warning], err)
    finally:
        found.save()
    return chosen

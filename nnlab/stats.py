"""Statistics over repeated runs: what a group of runs says, and whether two groups differ.

Used by repeated seeds (``--seeds``) and ``nnlab compare --group-by``. SciPy is imported
only where a confidence interval or a test is computed, so listing runs stays light.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable

#: The confidence level of every interval nnlab prints.
CONFIDENCE = 0.95


@dataclass
class Description:
    """The figures of one metric over a group of runs.

    Args:
        values: the per-run values, in run order (missing ones left out).
        n: how many values.
        mean: their mean.
        std: the sample standard deviation (ddof 1); None for n < 2.
        ci_low, ci_high: the 95% confidence interval of the mean (Student t); None for n < 2.
        min, max: the extremes.
        missing: runs of the group without this metric (counted out).
    """

    values: list[float]
    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    min: float | None
    max: float | None
    missing: int = 0
    why: str | None = field(default=None)

    def as_dict(self) -> dict:
        """For JSON: every field, None where it cannot be computed."""
        return {"n": self.n, "mean": self.mean, "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "min": self.min, "max": self.max, "values": list(self.values), "missing": self.missing,
                "why": self.why}


def describe(values: Iterable[float | None]) -> Description:
    """Mean, sample standard deviation, the 95% Student-t interval of the mean, min and max.

    Args:
        values: per-run values; None and NaN are counted out as missing.

    Returns:
        The description; with fewer than 2 values the spread and interval are None, and ``why`` says so.
    """
    values = list(values)
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    missing = len(values) - len(kept)
    n = len(kept)
    if n == 0:
        return Description([], 0, None, None, None, None, None, None, missing, "no run has this metric")
    mean = statistics.fmean(kept)
    if n < 2:
        return Description(kept, n, mean, None, None, None, kept[0], kept[0], missing,
                           "one run: no spread or interval (repeat it with --seeds)")
    # scipy.special's Student t quantile is what scipy.stats.t.ppf computes, at a third of the
    # import time (a group table of 10,000 runs stays well under 2 s). t.interval gives NaN
    # for no spread at all; the quantile times the standard error gives the mean itself.
    from scipy import special

    std = statistics.stdev(kept)
    half = float(special.stdtrit(n - 1, 0.5 + CONFIDENCE / 2)) * std / math.sqrt(n)
    return Description(kept, n, mean, std, mean - half, mean + half, min(kept), max(kept), missing)


#: The level below which a difference counts as detected (after Holm's adjustment).
ALPHA = 0.05
#: The power the repeats estimate aims at.
POWER = 0.8


def holm(pvalues: Iterable[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of p-values for the number of comparisons.

    The i-th smallest of m p-values is multiplied by m - i (i from 0), each adjusted value
    is at least the one before it (step-down), and none exceeds 1. None (a test that could
    not be computed) stays None and does not count among the m.

    Args:
        pvalues: raw p-values, in any order.

    Returns:
        The adjusted p-values, in the same order.
    """
    pvalues = list(pvalues)
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


@dataclass
class Difference:
    """How a group differs from the reference group on one metric.

    Args:
        n, n_reference: the values compared in each (for a paired test: the shared folds).
        difference: mean of the group minus mean of the reference.
        ci_low, ci_high: the 95% confidence interval of that difference (Welch, or paired t).
        p_t: the t-test's two-sided p-value (Welch's, or the paired t-test's).
        p_rank: the rank test's (Mann-Whitney U, or Wilcoxon signed-rank).
        hedges_g: the standardised difference, bias-corrected (Hedges' g).
        paired: whether the values were paired (k-fold runs over the same folds).
        tests: the tests' names, as the output says them.
        why: why the tests could not run (then they are None).
        p_holm: ``p_t`` adjusted for every comparison made together (:func:`holm`), set by the caller.
        repeats_needed: for a difference not detected, about how many repeats per group would
            detect one of this size at 80% power (normal approximation); None when not estimated.
    """

    n: int
    n_reference: int
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_t: float | None
    p_rank: float | None
    hedges_g: float | None
    paired: bool
    tests: str
    why: str | None = None
    p_holm: float | None = None
    repeats_needed: int | None = None

    def as_dict(self) -> dict:
        """For JSON: every field, None where it cannot be computed."""
        return {"n": self.n, "n_reference": self.n_reference, "difference": self.difference,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "p_t": self.p_t, "p_rank": self.p_rank,
                "p_holm": self.p_holm, "hedges_g": self.hedges_g, "paired": self.paired, "tests": self.tests,
                "why": self.why, "repeats_needed": self.repeats_needed}


WELCH = "Welch's t-test, Mann-Whitney U"
PAIRED = "paired t-test, Wilcoxon signed-rank"


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def hedges_g(values: list[float], reference: list[float]) -> float | None:
    """Hedges' g: the difference of means over the pooled standard deviation, times the exact
    small-sample correction Γ(df/2) / (√(df/2) Γ((df-1)/2)), df = n1 + n2 - 2.

    Returns:
        g (positive when ``values`` has the higher mean); None when fewer than 2 values in
        either, or no spread in both.
    """
    n1, n2 = len(values), len(reference)
    if n1 < 2 or n2 < 2:
        return None
    from scipy import special

    m1, m2 = sum(values) / n1, sum(reference) / n2
    ss = sum((v - m1) ** 2 for v in values) + sum((v - m2) ** 2 for v in reference)
    df = n1 + n2 - 2
    pooled = math.sqrt(ss / df)
    if pooled == 0:
        return None
    correction = math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)
    return (m1 - m2) / pooled * correction


def repeats_needed(values: list[float], reference: list[float], alpha: float = ALPHA,
                   power: float = POWER) -> int | None:
    """About how many repeats per group a two-sided test at ``alpha`` needs to detect the
    observed difference with ``power``: 2 (z(1-alpha/2) + z(power))² / d², d the observed
    difference over the pooled standard deviation (the normal approximation).

    Returns:
        The number (at least 2); None when there is no difference or no spread to go by.
    """
    n1, n2 = len(values), len(reference)
    if n1 < 2 or n2 < 2:
        return None
    from scipy import stats

    m1, m2 = sum(values) / n1, sum(reference) / n2
    ss = sum((v - m1) ** 2 for v in values) + sum((v - m2) ** 2 for v in reference)
    pooled = math.sqrt(ss / (n1 + n2 - 2))
    if pooled == 0 or m1 == m2:
        return None
    d = abs(m1 - m2) / pooled
    z = float(stats.norm.ppf(1 - alpha / 2)) + float(stats.norm.ppf(power))
    return max(2, math.ceil(2 * (z / d) ** 2))


def difference(values: list[float], reference: list[float], *, paired: bool = False) -> Difference:
    """Compare a group's values with the reference group's.

    Independent groups: Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``, its
    95% interval of the difference) and Mann-Whitney U (``scipy.stats.mannwhitneyu``).
    Paired values (the same folds, in the same order): the paired t-test
    (``scipy.stats.ttest_rel``) and the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``).
    All two-sided.

    Args:
        values: the group's values (per run, or per fold when paired).
        reference: the reference group's.
        paired: pair ``values[i]`` with ``reference[i]``.

    Returns:
        The comparison; with fewer than 2 values in a group (or no spread at all) the tests
        are None and ``why`` says why.
    """
    values, reference = [float(v) for v in values], [float(v) for v in reference]
    n1, n2 = len(values), len(reference)
    tests = PAIRED if paired else WELCH
    if n1 == 0 or n2 == 0:
        return Difference(n1, n2, None, None, None, None, None, None, paired, tests, "no values to compare")
    diff = sum(values) / n1 - sum(reference) / n2
    if n1 < 2 or n2 < 2:
        few = n1 if n1 < 2 else n2
        return Difference(n1, n2, diff, None, None, None, None, None, paired, tests,
                          f"{few} run{'s' if few != 1 else ''} in a group: a test needs at least 2 in each "
                          "(repeat it with --seeds)")
    import warnings

    from scipy import stats

    g = hedges_g(values, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if paired:
            deltas = [a - b for a, b in zip(values, reference)]
            if all(d == deltas[0] for d in deltas):
                return Difference(n1, n2, diff, None, None, None, None, g, paired, tests,
                                  "every fold differs by the same amount: no spread to test against")
            t = stats.ttest_rel(values, reference)
            rank = stats.wilcoxon(values, reference)
        else:
            if max(values) == min(values) and max(reference) == min(reference):
                return Difference(n1, n2, diff, None, None, None, None, g, paired, tests,
                                  "no spread in either group (every run the same): nothing to test against")
            t = stats.ttest_ind(values, reference, equal_var=False)
            rank = stats.mannwhitneyu(values, reference, alternative="two-sided")
        ci = t.confidence_interval(CONFIDENCE)
    return Difference(n1, n2, diff, _finite(ci.low), _finite(ci.high), _finite(t.pvalue), _finite(rank.pvalue),
                      g, paired, tests)


@dataclass
class CurveBand:
    """A group's learning curve: per epoch, the mean over its runs and their spread.

    Args:
        epochs: the epochs (1, 2, ...) that some run reached.
        mean: the mean over the runs that reached each epoch.
        std: their sample standard deviation; None where fewer than 2 runs reached it.
        n: how many runs reached each epoch.
    """

    epochs: list[int]
    mean: list[float]
    std: list[float | None]
    n: list[int]


def mean_curve(curves: Iterable[Iterable[float]]) -> CurveBand:
    """Per epoch, the mean and sample standard deviation of several runs' values.

    Runs stopped early (early stopping, a failure) count only for the epochs they ran; NaN is
    counted out.

    Args:
        curves: each run's values, epoch 1 first.

    Returns:
        The band, as long as the longest run.
    """
    columns: list[list[float]] = []
    for curve in curves:
        for i, value in enumerate(curve):
            if i == len(columns):
                columns.append([])
            if value is not None and math.isfinite(value):
                columns[i].append(float(value))
    kept = [(i + 1, c) for i, c in enumerate(columns) if c]
    return CurveBand([e for e, _ in kept], [statistics.fmean(c) for _, c in kept],
                     [statistics.stdev(c) if len(c) > 1 else None for _, c in kept], [len(c) for _, c in kept])

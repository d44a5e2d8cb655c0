"""The report's charts as Vega-Lite specs, made with altair.

Each chart is a template whose data is the named source ``rows``: the page fills it in the
browser (``spec.data = {values: ...}``), so a thousand runs need eight templates, not
thousands of specs, and a run's charts are drawn only when its section is opened.
"""

from __future__ import annotations

from typing import Any

#: The data source every template reads; the page gives it its rows.
ROWS = "rows"
WIDTH, HEIGHT = 400, 240


def _alt():
    import altair as alt

    return alt


def _finish(chart, title: str) -> dict[str, Any]:
    return chart.properties(title=title).to_dict()


def curves(metric: str, legend: str = "run") -> dict[str, Any]:
    """Learning curves of several runs overlaid: rows ``{run, epoch, value}`` (``run`` names the
    line: a run, or for one run's own chart a history column, ``legend`` its title).

    Hovering a point shows run, epoch and value; clicking a legend entry hides that run's line
    (shift-click hides more; a double click shows them all again).
    """
    alt = _alt()
    hidden = alt.selection_point(fields=["run"], bind="legend", name="hidden", empty=False)
    base = alt.Chart(alt.Data(name=ROWS)).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", title=legend, sort=None, legend=alt.Legend(symbolLimit=60, labelLimit=320)),
        opacity=alt.condition(hidden, alt.value(0), alt.value(1)),
        tooltip=[alt.Tooltip("run:N", title=legend), alt.Tooltip("epoch:Q"), alt.Tooltip("value:Q", format=".4f")],
    )
    chart = alt.layer(base.mark_line(strokeWidth=1.6), base.mark_point(size=18, filled=True)).add_params(hidden)
    return _finish(chart.properties(width=WIDTH, height=HEIGHT), f"{metric} by epoch")


def bands(metric: str) -> dict[str, Any]:
    """Each group's mean curve with a ±1 std band: rows ``{group, epoch, mean, low, high, n}``."""
    alt = _alt()
    hidden = alt.selection_point(fields=["group"], bind="legend", name="hidden", empty=False)
    base = alt.Chart(alt.Data(name=ROWS)).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("group:N", title="group (n)", sort=None,
                        legend=alt.Legend(labelLimit=320, symbolOpacity=1, symbolType="stroke")),
    )
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("low:Q", title=metric, scale=alt.Scale(zero=False)), y2="high:Q",
        opacity=alt.condition(hidden, alt.value(0), alt.value(0.2)))
    line = base.mark_line(strokeWidth=2).encode(
        y="mean:Q", opacity=alt.condition(hidden, alt.value(0), alt.value(1)),
        tooltip=[alt.Tooltip("group:N"), alt.Tooltip("epoch:Q"), alt.Tooltip("mean:Q", format=".4f"),
                 alt.Tooltip("std:Q", format=".4f"), alt.Tooltip("n:Q", title="runs at this epoch")])
    chart = alt.layer(band, line).add_params(hidden).properties(width=WIDTH, height=HEIGHT)
    return _finish(chart, f"{metric}: mean of each group, band ±1 std")


def parallel(metric: str) -> dict[str, Any]:
    """Parallel coordinates of a sweep's trials: rows ``{trial, axis, position, value, score}``, one
    line per trial across its parameters (each axis scaled 0 to 1), coloured by the ranking metric."""
    alt = _alt()
    chart = alt.Chart(alt.Data(name=ROWS)).mark_line(strokeWidth=2, point=True).encode(
        x=alt.X("axis:N", title=None, sort=None, axis=alt.Axis(labelAngle=0, labelLimit=220)),
        y=alt.Y("position:Q", title=None, axis=None, scale=alt.Scale(domain=[-0.05, 1.05])),
        detail="trial:N",
        color=alt.Color("score:Q", title=metric, scale=alt.Scale(scheme="viridis")),
        tooltip=[alt.Tooltip("trial:N"), alt.Tooltip("axis:N"), alt.Tooltip("value:N"),
                 alt.Tooltip("score:Q", title=metric, format=".4f")],
    ).properties(width=WIDTH, height=HEIGHT)
    return _finish(chart, f"trial parameters against {metric}")


def folds(metric: str) -> dict[str, Any]:
    """A k-fold run's per-fold validation curves and their mean, the best epoch marked:
    rows ``{fold, epoch, value}`` and ``{best}`` (one row with the best epoch)."""
    alt = _alt()
    base = alt.Chart(alt.Data(name=ROWS))
    line = base.transform_filter("datum.fold != null").mark_line().encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("fold:N", title="fold"),
        strokeWidth=alt.condition("datum.fold == 'mean'", alt.value(2.5), alt.value(1)),
        tooltip=[alt.Tooltip("fold:N"), alt.Tooltip("epoch:Q"), alt.Tooltip("value:Q", format=".4f")])
    rule = base.transform_filter("datum.best != null").mark_rule(strokeDash=[4, 3], color="#b22").encode(
        x="best:Q", tooltip=[alt.Tooltip("best:Q", title="best epoch")])
    return _finish(alt.layer(line, rule).properties(width=WIDTH, height=HEIGHT), f"k-fold {metric} per fold")


def confusion() -> dict[str, Any]:
    """The confusion matrix normalised per true class: rows ``{true, predicted, share, count}``; the
    counts on hover."""
    alt = _alt()
    chart = alt.Chart(alt.Data(name=ROWS)).mark_rect().encode(
        x=alt.X("predicted:N", sort=None, title="predicted"), y=alt.Y("true:N", sort=None, title="true"),
        color=alt.Color("share:Q", title="share of true", scale=alt.Scale(scheme="blues", domain=[0, 1])),
        tooltip=[alt.Tooltip("true:N"), alt.Tooltip("predicted:N"), alt.Tooltip("count:Q"),
                 alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=360, height=360)
    return _finish(chart, "confusion matrix (share of each true class)")


def roc() -> dict[str, Any]:
    """The ROC curve: rows ``{fpr, tpr}``."""
    alt = _alt()
    base = alt.Chart(alt.Data(name=ROWS))
    line = base.mark_line().encode(x=alt.X("fpr:Q", title="false positive rate"),
                                   y=alt.Y("tpr:Q", title="true positive rate"),
                                   tooltip=[alt.Tooltip("fpr:Q", format=".3f"), alt.Tooltip("tpr:Q", format=".3f")])
    diagonal = base.mark_rule(strokeDash=[4, 3], color="#999").encode(x=alt.datum(0), y=alt.datum(0),
                                                                      x2=alt.datum(1), y2=alt.datum(1))
    return _finish(alt.layer(line, diagonal).properties(width=300, height=300), "ROC curve")


def residuals() -> dict[str, Any]:
    """Residuals against predicted values: rows ``{predicted, residual}``."""
    alt = _alt()
    base = alt.Chart(alt.Data(name=ROWS))
    points = base.mark_circle(size=14, opacity=0.6).encode(
        x=alt.X("predicted:Q", scale=alt.Scale(zero=False)), y=alt.Y("residual:Q", title="true - predicted"),
        tooltip=[alt.Tooltip("predicted:Q", format=".3f"), alt.Tooltip("residual:Q", format=".3f")])
    zero = base.mark_rule(color="#b22").encode(y=alt.datum(0))
    return _finish(alt.layer(points, zero).properties(width=WIDTH, height=HEIGHT), "residuals against predicted")


def templates(metrics: list[str], fold_metrics: list[str], sweep_metrics: list[str]) -> dict[str, dict]:
    """Every template a page needs, by name (``curves:val_loss``, ``bands:val_loss``,
    ``folds:val_mae``, ``parallel:val_accuracy``, ``confusion``, ``roc``, ``residuals``)."""
    specs: dict[str, dict] = {}
    for metric in metrics:
        specs[f"curves:{metric}"] = curves(metric)
        specs[f"bands:{metric}"] = bands(metric)
    for metric in fold_metrics:
        specs[f"folds:{metric}"] = folds(metric)
    for metric in sweep_metrics:
        specs[f"parallel:{metric}"] = parallel(metric)
    specs["confusion"] = confusion()
    specs["roc"] = roc()
    specs["residuals"] = residuals()
    return specs

"""nnlab from Python: the same runs as the command line, for notebooks and scripts.

    import nnlab

    run = nnlab.train("spiral_mlp", set={"training.epochs": 2000})   # a Run; shows itself in a notebook
    run.metrics["test"], run.history.tail()
    group = nnlab.kfold("boston", final=True, seeds=3)               # a RunGroup: mean ± std over seeds
    table = nnlab.runs(sort="test_accuracy")                         # a pandas DataFrame, as nnlab compare

Every function calls the code its command calls (:mod:`nnlab.api.core`, :mod:`nnlab.views.listing`,
:func:`nnlab.sweeps.start.start_sweep`...), so a notebook and a terminal make the same run folders and
refuse bad input with the same message, raised here as :class:`nnlab.errors.NnlabError` (a
:class:`~nnlab.errors.ConfigError` for a config) instead of printed with exit code 2.

``import nnlab`` stays light: this module is imported on the first use of one of its names, and
TensorFlow when something trains or loads a model, pandas when a table is asked for, IPython only
inside a notebook.
"""

from __future__ import annotations

import io
import os
import warnings as _warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from nnlab.api.objects import Predictions, Report, Run, RunGroup
from nnlab.repeats import seeds_text

__all__ = ["train", "kfold", "sweep", "runs", "run", "report", "predict", "Run", "RunGroup", "Report",
           "Predictions"]

#: At most this many warnings about run folders are raised as Python warnings by one listing.
MAX_WARNINGS = 20


def _argv(function: str, config: Any) -> list[str]:
    """What env.json records as the command: the call, with the config's name or path."""
    shown = "{...}" if isinstance(config, Mapping) else repr(str(config)) if config is not None else ""
    return ["python", "-c", f"import nnlab; nnlab.{function}({shown})"]


def _path(value: Any) -> str:
    """A run argument: a :class:`Run`, a folder, an id, a prefix or ``last``."""
    return str(value.path) if isinstance(value, Run) else str(value)


def _data_dir(value: str | Path | None) -> str | Path | None:
    """``data_dir``, else ``NNLAB_DATA_DIR``, as ``--data-dir`` reads it."""
    return value if value is not None else os.environ.get("NNLAB_DATA_DIR") or None


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _returned(trained: Any) -> Run | RunGroup:
    runs = [Run(r.run.path) for r in trained.results]
    if trained.repeated:
        return RunGroup(runs, trained.seeds, trained.config.name)
    return runs[0]


def train(config: str | Path | Mapping[str, Any] | None = None, *,
          set: Mapping[str, Any] | Sequence[str] | None = None, seeds: int | Sequence[int] | str | None = None,
          runs_dir: str | Path = "runs", data_dir: str | Path | None = None, backend: str | None = None,
          resume: str | Path | Run | None = None, mlflow: str | None = None, mlflow_experiment: str | None = None,
          progress: bool = True) -> Run | RunGroup:
    """Train one experiment and write its run folder, as ``nnlab train`` does.

    Args:
        config: a YAML config file, the name of one (``spiral_mlp``), or a dict in the same schema
            (validated the same way).
        set: overrides of config keys, ``{"training.epochs": 200}`` or ``["training.epochs=200"]``
            (``--set``).
        seeds: repeat with N seeds (the config's seed and the next N - 1), or with these seeds:
            ``3``, ``[0, 1, 7]`` (``--seeds``).
        runs_dir: the root folder of the run folders.
        data_dir: a folder of downloaded dataset files (Keras formats); default ``NNLAB_DATA_DIR``.
        backend: the Keras backend, ``tensorflow``, ``jax`` or ``torch`` (default: the config's).
        resume: continue an interrupted run (a run folder, id, prefix or ``last``) from its checkpoint.
        mlflow, mlflow_experiment: also log the run to this MLflow tracking server and experiment.
        progress: show progress while training (a live display in a notebook).

    Returns:
        The :class:`Run` (its ``status`` says how it ended), or with ``seeds`` a :class:`RunGroup`
        of the repeats with their mean ± std table.

    Raises:
        NnlabError: for anything refused before a run folder exists: the config (a
            :class:`~nnlab.errors.ConfigError` with the message ``nnlab train`` prints), the data, an option.
    """
    from nnlab.api import core
    from nnlab.api.notebook import epoch_progress, notebook_run

    where = core.find_run(_path(resume), runs_dir) if resume is not None else None
    with notebook_run():
        trained = core.train(config, overrides=core.as_overrides(set), seeds=seeds_text(seeds),
                             runs_dir=runs_dir, data_dir=_data_dir(data_dir), backend=backend, resume=where,
                             mlflow=mlflow, mlflow_experiment=mlflow_experiment, argv=_argv("train", config),
                             progress=epoch_progress if progress else None)
    return _returned(trained)


def kfold(config: str | Path | Mapping[str, Any], *, set: Mapping[str, Any] | Sequence[str] | None = None,
          k: int | None = None, epochs: int | None = None, shuffle: bool | None = None, final: bool = False,
          jobs: int = 1, seeds: int | Sequence[int] | str | None = None, runs_dir: str | Path = "runs",
          data_dir: str | Path | None = None, backend: str | None = None, mlflow: str | None = None,
          mlflow_experiment: str | None = None, progress: bool = True) -> Run | RunGroup:
    """k-fold validation, as ``nnlab kfold`` does: a fresh model per fold, the averaged validation
    curves, the best epoch and, with ``final``, the final model tested beside the baseline.

    Args:
        config: a YAML config file, the name of one (``boston``), or a dict in the same schema.
        set: overrides of config keys (see :func:`train`).
        k: number of folds (default: the config's ``kfold.k``).
        epochs: epochs per fold (default: the config's ``training.epochs``).
        shuffle: shuffle the rows before cutting folds (default: ``kfold.shuffle``).
        final: then train on the whole training part for the best epoch count and evaluate on the test set.
        jobs: train folds in this many processes at once.
        seeds, runs_dir, data_dir, backend, mlflow, mlflow_experiment, progress: as for :func:`train`.

    Returns:
        The k-fold :class:`Run` (``kfold`` holds the folds, the mean and the best epoch; ``history`` the
        mean curves), or with ``seeds`` a :class:`RunGroup`.

    Raises:
        NnlabError: for anything refused before the run folder exists.
    """
    from nnlab.api import core
    from nnlab.api.notebook import notebook_run, kfold_progress

    with notebook_run():
        trained = core.kfold(config, overrides=core.as_overrides(set), k=k, epochs=epochs, shuffle=shuffle,
                             final=final, jobs=jobs, seeds=seeds_text(seeds), runs_dir=runs_dir,
                             data_dir=_data_dir(data_dir), backend=backend, mlflow=mlflow,
                             mlflow_experiment=mlflow_experiment, argv=_argv("kfold", config),
                             progress=kfold_progress if progress else None)
    return _returned(trained)


def sweep(config: str | Path | Mapping[str, Any] | None = None, *,
          set: Mapping[str, Any] | Sequence[str] | None = None,
          grid: Mapping[str, Sequence[Any]] | Sequence[str] | None = None,
          param: Mapping[str, str] | Sequence[str] | None = None, random: int | None = None,
          search: str | None = None, trials: int | None = None, pruner: str | None = None,
          max_epochs_total: int | None = None, timeout: float | None = None,
          seeds: int | Sequence[int] | str | None = None, kfold: bool = False, metric: str | None = None,
          jobs: int | None = None, executor: str | None = None,
          address: str | None = None, cpus_per_trial: float | None = None, gpus_per_trial: float | None = None,
          max_trials: int | None = None, resume: str | Path | Run | None = None, runs_dir: str | Path | None = None,
          data_dir: str | Path | None = None, backend: str | None = None, mlflow: str | None = None,
          mlflow_experiment: str | None = None, progress: bool = True) -> Run:
    """Run variations of a config, each a run folder, and rank them, as ``nnlab sweep`` does.

    Args:
        config: a YAML config file, the name of one, or a dict (not needed with ``resume``).
        set: overrides of config keys (see :func:`train`).
        grid: values of dotted keys to try, all combinations: ``{"model.layers.0.Dense.units": [16, 64]}``
            or ``["model.layers.0.Dense.units=16,64"]``.
        param: distributions to draw from with ``random``: ``{"optimizer.learning_rate": "loguniform(1e-4,1e-1)"}``.
        random: draw this many random trials.
        search: propose trials with a model of the earlier ones (``tpe``), ``trials`` of them; ``pruner``,
            ``max_epochs_total`` and ``timeout`` bound it (see ``nnlab sweep --help``).
        seeds: repeat every trial with N seeds (or these seeds); trials are ranked by their mean.
        kfold: run every trial as a k-fold validation.
        metric: what ranks the trials, e.g. ``val_accuracy``.
        jobs, executor, address, cpus_per_trial, gpus_per_trial: where trials run (local processes, Ray).
        max_trials: refuse a sweep of more runs than this (default 10,000).
        resume: finish a stopped sweep (its sweep folder).
        runs_dir, data_dir, backend, mlflow, mlflow_experiment, progress: as for :func:`train`.

    Returns:
        The sweep folder as a :class:`Run`: ``trials`` are its trials' runs, ``sweep`` its sweep.json;
        in a notebook it shows the ranked trials.

    Raises:
        NnlabError: for anything refused before the sweep folder exists.
    """
    from nnlab.api import core
    from nnlab.api.notebook import notebook_run, trial_progress
    from nnlab.sweeps.start import SweepOptions, start_sweep

    options = SweepOptions(config=dict(config) if isinstance(config, Mapping) else config,
                           overrides=core.as_overrides(set), grid=core.as_grid(grid), param=core.as_params(param),
                           random=random, search=search, trials=trials, pruner=pruner,
                           max_epochs_total=max_epochs_total, timeout=timeout, kfold=kfold, metric=metric, jobs=jobs,
                           executor=executor, address=address, cpus_per_trial=cpus_per_trial,
                           gpus_per_trial=gpus_per_trial, max_trials=max_trials,
                           resume=None if resume is None else _path(resume), runs_dir=runs_dir,
                           data_dir=_data_dir(data_dir), backend=backend, seeds=seeds_text(seeds), mlflow=mlflow,
                           mlflow_experiment=mlflow_experiment)
    with notebook_run():
        result = start_sweep(options, report=trial_progress() if progress else None,
                             announce=print if progress else None)
    return Run(result.run.path)


def runs(*paths: str | Path | Run, filter: str | Sequence[str] | None = None, sort: str | None = None,
         ascending: bool | None = None, last: int | None = None, columns: str | Sequence[str] | None = None,
         config: bool | Sequence[str] = False, group_by: str | Sequence[str] | None = None, versus: Any = None,
         metric: str | None = None, runs_dir: str | Path = "runs"):
    """Runs as a table, as ``nnlab compare`` lists them: a pandas DataFrame with one row per run (or
    per group with ``group_by``), whose numbers are those of ``nnlab compare --format json``.

    Args:
        paths: runs folders, run folders, run ids or prefixes, or :class:`Run` objects (default: ``runs_dir``).
        filter: keep runs where ``KEY<OP>VALUE`` holds (``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=``;
            ``status=completed``, ``test_accuracy>0.85``); a list: all of them.
        sort: sort by a metric or config key (loss-like ascending, accuracy-like descending).
        ascending: force the sort direction.
        last: only the N runs started last.
        columns: the columns (fields or dotted config keys, as a list or ``a,b``), or ``all``; with
            ``group_by``, the metrics described.
        config: also a column per config key (``True``: every key of the runs' configs; a list: those keys).
        group_by: one row per group of runs sharing these keys (a config key, ``name``, ``dataset``,
            ``group``: the repeats of one config): n, and per metric its mean, std, 95% CI, min and max.
        versus: with ``group_by``, test every group against the group of this value (Welch,
            Mann-Whitney, Hedges' g, Holm-adjusted); ``metric`` names the metric compared.
        metric: see ``versus``.
        runs_dir: where run ids are looked up, and the default runs folder.

    Returns:
        A pandas DataFrame (``attrs["warnings"]`` and ``attrs["notes"]`` hold what ``nnlab compare``
        prints under its table).

    Raises:
        NnlabError: for an unknown key, filter, path or value.
    """
    from nnlab.api.objects import pandas

    pd = pandas("nnlab.runs")
    where = [_path(p) for p in paths]
    filters = _as_list(filter)
    if group_by is None:
        if versus is not None:
            from nnlab.errors import NnlabError

            raise NnlabError("compares groups of runs: add group_by=KEY, e.g. group_by='model.layers.0.Dense.units', "
                             "versus=16", source=f"--versus {versus}")
        from nnlab.views.listing import list_runs

        listing = list_runs(where, runs_dir=runs_dir, filters=filters, last=last, sort=sort, ascending=ascending,
                            columns=columns)
        frame = pd.DataFrame([{c: row.get(c) for c in listing.columns} for row in listing.rows],
                             columns=listing.columns)
        if config:
            keys = (list(dict.fromkeys(k for r in listing.runs for k in r.config())) if config is True
                    else [str(k) for k in config])
            for key in [k for k in keys if k not in frame.columns]:
                frame[key] = [r.config().get(key) for r in listing.runs]
        problems, notes = listing.warnings, listing.notes
    else:
        from nnlab.views.listing import group_runs

        grouping = group_runs(where, group_by=group_by, runs_dir=runs_dir, filters=filters, last=last, sort=sort,
                              ascending=ascending, columns=columns, versus=versus, metric=metric)
        frame = pd.DataFrame([_group_row(item, grouping.table.metrics) for item in grouping.items])
        problems = grouping.warnings
        notes = list(grouping.table.notes) + [c.sentence for c in grouping.table.comparisons or []]
    for line in problems[:MAX_WARNINGS]:
        _warnings.warn(line, stacklevel=2)
    frame.attrs["warnings"], frame.attrs["notes"] = list(problems), list(notes)
    return frame


def _group_row(item: dict[str, Any], metrics: list[str]) -> dict[str, Any]:
    """One group's JSON item as one row: ``<metric>_mean``, ``_std``, ... (as ``--format csv`` names them)."""
    row = {k: v for k, v in item.items() if k not in metrics and k != "versus"}
    for metric in metrics:
        for part, value in (item.get(metric) or {}).items():
            row[f"{metric}_{part}"] = value
    versus = item.get("versus")
    if isinstance(versus, dict):
        row.update({f"versus_{k}": v for k, v in versus.items()})
    return row


def run(run: str | Path | Run = "last", *, runs_dir: str | Path = "runs") -> Run:
    """One run, as ``nnlab show`` finds it.

    Args:
        run: a run folder, a run id, a unique prefix of one, or ``last`` (the run started most recently).
        runs_dir: where run ids are looked up.

    Returns:
        The :class:`Run`.

    Raises:
        RunNotFound: when nothing, or more than one run, matches (the message ``nnlab show`` prints).
    """
    from nnlab.api.core import find_run

    return Run(find_run(_path(run), runs_dir))


def report(*paths: str | Path | Run, output: str | Path | None = None, filter: str | Sequence[str] | None = None,
           last: int | None = None, group_by: str | Sequence[str] | None = None, versus: Any = None,
           metric: str | None = None, runs_dir: str | Path = "runs") -> Report:
    """Write one self-contained HTML page of runs, as ``nnlab report`` does; in a notebook it shows inline.

    Args:
        paths: runs folders, run folders, ids, sweep folders or :class:`Run` objects (default: ``runs_dir``).
        output: the HTML file (default: ``<runs_dir>/report.html``).
        filter, last: which runs, as for :func:`runs`.
        group_by, versus, metric: the group table, its tests and each group's mean curves.
        runs_dir: the default runs folder.

    Returns:
        The :class:`Report` (its ``path`` is the file).

    Raises:
        NnlabError: for a bad option or output, no runs found, or the report's libraries missing
            (``pip install 'nnlab[report]'``).
    """
    from nnlab.reporting.write import write_report

    keys = None if group_by is None else (group_by if isinstance(group_by, str) else ",".join(group_by))
    written = write_report([_path(p) for p in paths], runs_dir=runs_dir,
                           output=None if output is None else Path(output), filters=_as_list(filter), last=last,
                           group_by=keys, versus=None if versus is None else str(versus), metric=metric,
                           out=io.StringIO())
    return Report(written)


def predict(run: str | Path | Run, x: Any = None, *, index: int | None = None, runs_dir: str | Path = "runs",
            data_dir: str | Path | None = None, invert: bool = False, plot: str | Path | None = None) -> Predictions:
    """A run's model on your examples or on a test example, as ``nnlab predict`` does: the input goes
    through the preprocessing the model was trained with.

    Args:
        run: a :class:`Run`, a run folder, a run id, a unique prefix of one, or ``last``.
        x: raw examples as the dataset stores them: one example or a batch (an array, e.g. an 8x8 digit
            or 28x28 pixels 0-255), or the path of an input file (.npy/.npz, an image, a text file of words).
        index: instead of ``x``, the position of an example in the run's test set.
        runs_dir: where run ids are looked up.
        data_dir: a folder of downloaded dataset files (default: the one the run recorded).
        invert: turn an image's dark into light and back.
        plot: a PNG file to draw the (first) example with its prediction.

    Returns:
        The :class:`Predictions` (``classes``, ``probabilities`` or ``values``).

    Raises:
        NnlabError: for a run without a model, an index out of range, or input of the wrong shape.
    """
    from nnlab.api.notebook import notebook_run

    with notebook_run():  # the model loads TensorFlow; plot= draws with matplotlib
        return _predict(run, x, index=index, runs_dir=runs_dir, data_dir=data_dir, invert=invert, plot=plot)


def _predict(run: Any, x: Any, *, index: int | None, runs_dir: str | Path, data_dir: str | Path | None,
             invert: bool, plot: str | Path | None) -> Predictions:
    from nnlab.prediction import predict as run_predict

    options = dict(runs_dir=runs_dir, data_dir=_data_dir(data_dir), invert=invert,
                   plot=None if plot is None else Path(plot))
    if x is None or isinstance(x, (str, Path)):
        return Predictions(run_predict(_path(run), index=index, input_file=None if x is None else Path(x),
                                       **options))
    return Predictions(run_predict(_path(run), index=index, inputs=x, **options))

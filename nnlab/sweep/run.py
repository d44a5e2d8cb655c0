"""``nnlab sweep``: a grid (or random draws) of variations of one config, each a normal run.

Every trial is a run folder of its own (a train run, or a k-fold run with
``--kfold``), tagged in metrics.json with the sweep's id and the trial's parameters;
the sweep writes ``runs/<timestamp>_<name>_sweep/`` with sweep.json (the space,
every trial's folder, status and metrics) and a ranked summary. Trials run here, in
a pool of worker processes, or on a Ray cluster (:mod:`nnlab.executors`); every
trial's config is validated before any starts.

The space is the product of three axes, each optional: ``variants`` (a list of
hand-picked variations, "one change at a time"), ``grid`` (every combination of
some keys' values) and ``random`` (N draws from distributions per point).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from nnlab.config import Config, config_from_dict
from nnlab.errors import ConfigError, NnlabError
from nnlab.executors import Executor
from nnlab.interrupts import Interrupted, stop_signals
from nnlab.runs.folder import RunFolder, atomic_write, utc_now
from nnlab.yamlfile import parse_yaml

_DISTRIBUTION = re.compile(r"^\s*(uniform|loguniform|randint|choice)\s*\((.*)\)\s*$", re.S)


@dataclass
class Trial:
    """One point of the sweep: its parameters and its validated config."""

    index: int
    params: dict[str, Any]
    config: Config


@dataclass
class TrialOutcome:
    """What became of a trial."""

    index: int
    params: dict[str, Any]
    status: str = "pending"
    folder: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


# -- the parameter space ------------------------------------------------------------------

def parse_grid_option(option: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` into ``(KEY, [V1, V2, ...])``; each value is YAML, commas inside
    brackets or braces do not split (``model.layers=[Dense: {units: 8}],[...]``)."""
    key, sep, raw = option.partition("=")
    parts = _split_top_level(raw)
    if not sep or not key.strip() or not parts:
        raise ConfigError("expected KEY=V1,V2,... with at least one value "
                          "(e.g. model.layers.0.Dense.units=16,32,64)", source=f"--grid {option}")
    values = [parse_yaml(part, f"--grid {option}").data for part in parts]
    return key.strip(), values


def parse_param_option(option: str) -> tuple[str, str]:
    """``KEY=DIST`` for random search, e.g. ``optimizer.learning_rate=loguniform(1e-4, 1e-1)``."""
    key, sep, dist = option.partition("=")
    if not sep or not _DISTRIBUTION.match(dist):
        raise ConfigError("expected KEY=uniform(a, b), loguniform(a, b), randint(a, b) or choice(v1, v2, ...)",
                          source=f"--param {option}")
    return key.strip(), dist.strip()


def sample(distribution: Any, rng: np.random.Generator, source: str) -> Any:
    """One draw from ``uniform(a, b)``, ``loguniform(a, b)``, ``randint(a, b)`` (inclusive) or
    ``choice(...)``; a list means choice among its items."""
    if isinstance(distribution, list):
        return distribution[int(rng.integers(len(distribution)))]
    match = _DISTRIBUTION.match(str(distribution))
    if not match:
        raise ConfigError(f"'{distribution}' is not a distribution: use uniform(a, b), loguniform(a, b), "
                          "randint(a, b) or choice(v1, v2, ...)", source=source)
    kind, raw = match.groups()
    args = [parse_yaml(part, source).data for part in _split_top_level(raw)]
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    try:  # YAML 1.1 reads 1e-4 (no dot) as text; here it can only mean a number
        low, high = (float(a) if not isinstance(a, bool) else None for a in args)
    except (TypeError, ValueError):
        raise ConfigError(f"{kind} takes two numbers, got {raw!r}", source=source) from None
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "randint":
        return int(rng.integers(int(low), int(high) + 1))
    if low <= 0 or high <= 0:
        raise ConfigError("loguniform needs two positive numbers", source=source)
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def expand(grid: dict[str, list[Any]], random: dict[str, Any] | None = None, n_random: int = 0,
           seed: int = 0, variants: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every variant times every combination of the grid; with random parameters, ``n_random``
    draws for each of those.

    Args:
        grid: dotted key -> values.
        random: dotted key -> distribution (see :func:`sample`).
        n_random: number of random draws (per grid point).
        seed: seed of the draws.
        variants: dotted key -> value mappings, one trial each (``{}`` is the config as it is);
            applied before the grid's and the random keys.

    Returns:
        One ``{dotted key: value}`` per trial, in a stable order.
    """
    keys = list(grid)
    combos = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] or [{}]
    points = [{**variant, **combo} for variant in (variants or [{}]) for combo in combos]
    if not random:
        return points if keys or variants else []
    rng = np.random.default_rng(seed)
    trials = []
    for point in points:
        for _ in range(n_random):
            trials.append({**point, **{k: sample(d, rng, f"sweep.random.params.{k}") for k, d in random.items()}})
    return trials


def build_trials(base: Config, params: list[dict[str, Any]]) -> list[Trial]:
    """Validate every trial's config before any trial starts.

    Raises:
        ConfigError: naming the trial and its parameters for the first one refused.
    """
    if not params:
        raise ConfigError("the sweep has no trials: give --grid KEY=V1,V2 or --random N with --param, "
                          "or a sweep section in the config", source=base.source)
    from nnlab.keras_objects import build_objects

    trials = []
    for i, point in enumerate(params):
        overrides = ["sweep=null"] + [f"{key}={json.dumps(value)}" for key, value in point.items()]
        try:
            config = base.with_overrides(overrides)
            build_objects(config)  # Keras names and arguments, before any trial starts
        except ConfigError as err:
            raise ConfigError(f"trial {i} ({_describe(point)}) is not a valid config: {err}",
                              source=base.source) from None
        trials.append(Trial(i, point, config))
    return trials


@dataclass
class Space:
    """The sweep's parameter space (see :func:`expand`)."""

    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, Any] = field(default_factory=dict)
    n_random: int = 0
    variants: list[dict[str, Any]] = field(default_factory=list)

    def points(self, seed: int) -> list[dict[str, Any]]:
        """One ``{dotted key: value}`` per trial."""
        return expand(self.grid, self.random, self.n_random, seed=seed, variants=self.variants)

    def as_dict(self) -> dict[str, Any]:
        """For sweep.json."""
        return {"variants": self.variants, "grid": self.grid, "random": self.random, "n_random": self.n_random}


def space_of(base: Config, grid_options: list[str], param_options: list[str], n_random: int | None) -> Space:
    """The sweep's space: the command line's (--grid, --random/--param), else the config's ``sweep`` section.

    Raises:
        ConfigError: for a malformed option, a key given twice, a grid key without values,
            or random draws without a count (or a count without parameters).
    """
    grid: dict[str, list[Any]] = {}
    for option in grid_options:
        key, values = parse_grid_option(option)
        if key in grid:
            raise ConfigError(f"'{key}' is given twice; list all its values in one --grid {key}=V1,V2,...",
                              source=f"--grid {option}")
        grid[key] = values
    random: dict[str, Any] = {}
    for option in param_options:
        key, dist = parse_param_option(option)
        if key in random or key in grid:
            raise ConfigError(f"'{key}' is given twice", source=f"--param {option}")
        random[key] = dist
    variants: list[dict[str, Any]] = []
    section = base.sweep
    if not grid and not random and not n_random and section is not None:
        grid, variants = dict(section.grid), [dict(v) for v in section.variants]
        for key, values in grid.items():
            if not values:
                raise base.error(("sweep", "grid", key), "lists no values; give at least one")
        for i, variant in enumerate(variants):
            for key in variant:
                if key in grid:
                    raise base.error(("sweep", "variants", i, key),
                                     f"'{key}' is also a grid key; a key varies in the grid or in variants, "
                                     "not both")
        if section.random is not None:
            random, n_random = dict(section.random.params), section.random.n
            for key in random:
                if key in grid or any(key in v for v in variants):
                    raise base.error(("sweep", "random", "params", key),
                                     f"'{key}' also varies in the grid or variants; give it in one place")
    if random and not n_random:
        raise ConfigError("random parameters need --random N (how many draws)", source="--param")
    if n_random and not random:
        raise ConfigError("--random N needs at least one --param KEY=DISTRIBUTION", source="--random")
    return Space(grid=grid, random=random, n_random=n_random or 0, variants=variants)


# -- ranking ----------------------------------------------------------------------------------

def default_metric(config: Config, kfold: bool = False) -> str:
    """k-fold trials: the config's kfold.monitor; else val_loss where trials validate, test_loss otherwise."""
    if kfold:
        return config.kfold.monitor
    t = config.training
    return "val_loss" if (t.validation_split or t.validation_holdout) else "test_loss"


def best_monitor(config: Config, kfold: bool = False) -> str:
    """The metric whose best epoch a trial's metrics.json records (``best``)."""
    if kfold:
        return config.kfold.monitor
    t = config.training
    return "val_loss" if (t.validation_split or t.validation_holdout) else "loss"


def sweep_metric(base: Config, metric: str | None, kfold: bool = False) -> str:
    """What ranks the trials: ``metric``, else the sweep section's, else :func:`default_metric`.

    Raises:
        ConfigError: for a metric the trials cannot report: k-fold trials have only
            validation figures (``val_*``, ``best_val_*``), and ``best_X`` needs X to be
            the monitored metric (:func:`best_monitor`).
    """
    from_config = metric is None and base.sweep is not None and base.sweep.metric is not None
    chosen = metric or (base.sweep.metric if from_config else None) or default_metric(base, kfold)

    def refuse(message: str) -> ConfigError:
        if from_config:
            return base.error(("sweep", "metric"), message)
        return ConfigError(message, source=f"--metric {chosen}")

    if kfold and not chosen.startswith(("val_", "best_val_")):
        raise refuse(f"k-fold trials report validation metrics only: val_* (mean over the folds after the last "
                     f"epoch) or best_{base.kfold.monitor} (the averaged curve at its best epoch); "
                     f"got '{chosen}'")
    if chosen.startswith("best_") and chosen[len("best_"):] != best_monitor(base, kfold):
        monitor = best_monitor(base, kfold)
        hint = " (set kfold.monitor to change it)" if kfold else ""
        raise refuse(f"the trials record the best epoch of {monitor}{hint}, so best_{monitor} is the "
                     f"best-epoch metric they can be ranked by; got '{chosen}'")
    return chosen


def metric_value(metrics: dict[str, Any], metric: str) -> float | None:
    """``val_accuracy`` -> metrics["validation"]["accuracy"]; ``test_loss``, ``train_mae`` alike;
    ``best_val_loss`` -> metrics["best"]["value"] when the best epoch was read from val_loss."""
    if metric.startswith("best_"):
        best = metrics.get("best") or {}
        value = best.get("value") if best.get("monitor") == metric[len("best_"):] else None
        return None if value is None else float(value)
    for prefix, part in (("val_", "validation"), ("test_", "test"), ("train_", "train")):
        if metric.startswith(prefix):
            value = (metrics.get(part) or {}).get(metric[len(prefix):])
            return None if value is None else float(value)
    value = metrics.get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def higher_is_better(metric: str) -> bool:
    """Loss, error, MAE and MSE go down; accuracy-like metrics go up."""
    return not any(word in metric for word in ("loss", "error", "mae", "mse", "mape", "msle", "hinge"))


def ranked(outcomes: list[TrialOutcome], metric: str) -> list[TrialOutcome]:
    """Completed trials best first by ``metric``, then every other trial."""
    higher = higher_is_better(metric)

    def key(o: TrialOutcome):
        value = metric_value(o.metrics, metric) if o.status == "completed" else None
        if value is None or math.isnan(value):
            return (1, 0.0, o.index)
        return (0, -value if higher else value, o.index)

    return sorted(outcomes, key=key)


# -- running ----------------------------------------------------------------------------------

def train_trial_here(config: Config, runs_dir: str, data_dir: str | None, tags: dict[str, Any]) -> dict[str, Any]:
    """A trial in this process, writing its run folder directly (the local executor)."""
    from nnlab.train.run import train

    result = train(config, runs_dir=runs_dir, data_dir=data_dir, tags=tags)
    return {"folder": str(result.run.path), "metrics": result.metrics, "exit_code": result.exit_code}


def train_trial_remote(config_data: dict[str, Any], source: str, data_dir: str | None,
                       tags: dict[str, Any]) -> dict[str, Any]:
    """A trial in a worker: trains into a temporary folder and returns its files.

    Picklable and free of shared-filesystem assumptions, so a process pool or a Ray
    cluster can run it; the driver writes the run folder.

    Returns:
        ``{"name": folder name, "files": {relative path: bytes}, "metrics": ..., "exit_code": ...}``.
    """
    from nnlab.train.run import train

    config = config_from_dict(config_data, source)
    with tempfile.TemporaryDirectory(prefix="nnlab-trial-") as tmp:
        result = train(config, runs_dir=tmp, data_dir=data_dir, tags=tags)
        files = {str(p.relative_to(result.run.path)): p.read_bytes()
                 for p in sorted(result.run.path.rglob("*")) if p.is_file()}
    return {"name": result.run.run_id, "files": files, "metrics": result.metrics, "exit_code": result.exit_code}


def materialize(runs_dir: Path, returned: dict[str, Any]) -> Path:
    """Write a worker's returned run folder under ``runs_dir`` (a fresh name if it is taken)."""
    name = returned["name"]
    root = Path(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 10_000):
        path = root / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            path.mkdir()
            break
        except FileExistsError:
            continue
    run = RunFolder(path)
    metrics = dict(returned["metrics"], run_id=run.run_id)
    for relative, content in returned["files"].items():
        if relative != "metrics.json":  # written last, with this folder's id, once the rest is in place
            atomic_write(run.file(relative), content)
    run.write_json("metrics.json", metrics)
    return path


# -- k-fold trials ------------------------------------------------------------------------------

def kfold_trials(trials: list[Trial], executor: Executor, *, runs_dir: str, data_dir: str | None,
                 tags_of: Callable[[Trial], dict[str, Any]], jobs: int = 1) -> Iterator[tuple[int, Any, Any]]:
    """Run every trial as a k-fold validation (:func:`nnlab.kfold.run_kfold`), one after another.

    This process is each trial's k-fold driver: it loads the data, checks the model
    and writes the trial's ``<timestamp>_<name>_kfold`` folder. On an in-process
    executor the folds run here too. On a process pool or Ray, every fold of every
    trial is submitted up front as a :func:`nnlab.kfold.run_fold` task (the fold
    function of ``nnlab kfold --jobs``), so the workers train later trials' folds
    while this process records earlier trials; only results travel back.

    Yields:
        ``(position in trials, {"folder", "metrics", "exit_code"} or None, error or None)``, in order.
    """
    from nnlab.kfold.run import run_fold, run_kfold

    ahead: dict[int, dict[str, Any]] = {}
    if not executor.in_process:
        for trial in trials:
            ahead[trial.index] = {_task_key(run_fold, task): executor.submit(run_fold, task)
                                  for task in fold_tasks(trial.config, data_dir)}
    for i, trial in enumerate(trials):
        mine = ahead.pop(trial.index, {})
        result, error = None, None
        try:
            done = run_kfold(trial.config, runs_dir=runs_dir, data_dir=data_dir, jobs=jobs,
                             executor=None if executor.in_process else FoldsSubmitted(executor, mine),
                             tags=tags_of(trial))
            result = {"folder": str(done.run.path), "metrics": done.metrics, "exit_code": done.exit_code}
        except Exception as err:  # refused before its folder existed (e.g. k above the rows); the others go on
            error = err
        finally:
            executor.cancel(mine.values())  # a trial that stopped early leaves folds nobody will read
        yield i, result, error


def fold_tasks(config: Config, data_dir: str | None) -> list[tuple]:
    """The :func:`nnlab.kfold.run_fold` arguments of every fold of ``config``, as run_kfold builds them."""
    config_dict = config.to_dict()
    return [(config_dict, fold, config.kfold.k, config.seed, data_dir, None) for fold in range(config.kfold.k)]


class FoldsSubmitted(Executor):
    """The executor one trial's run_kfold sees: its fold tasks were submitted ahead.

    A task that was submitted ahead is taken from ``ahead`` (matched on the function
    and its arguments); any other is submitted now, so a mismatch costs time, never
    results.

    Args:
        executor: the sweep's executor.
        ahead: task key -> handle, for this trial (emptied as tasks are taken).
    """

    def __init__(self, executor: Executor, ahead: dict[str, Any]):
        self._executor = executor
        self._ahead = ahead

    def submit(self, fn, args):
        handle = self._ahead.pop(_task_key(fn, args), None)
        return handle if handle is not None else self._executor.submit(fn, args)

    def gather(self, handles):
        return self._executor.gather(handles)

    def cancel(self, handles):
        self._executor.cancel(handles)


def _task_key(fn: Callable[..., Any], args: tuple) -> str:
    return json.dumps([fn.__module__, fn.__qualname__, list(args)], sort_keys=True, default=str)


# -- the sweep --------------------------------------------------------------------------------

@dataclass
class SweepResult:
    """The sweep folder, every trial's outcome (ranked) and the exit code."""

    run: RunFolder
    outcomes: list[TrialOutcome]
    metric: str
    status: str
    exit_code: int
    kfold: bool = False


def run_sweep(base: Config, trials: list[Trial], executor: Executor, *, runs_dir: str | Path = "runs",
              data_dir: str | Path | None = None, metric: str | None = None, executor_name: str = "local",
              space: dict[str, Any] | None = None, kfold: bool = False, jobs: int = 1,
              report: Callable[[TrialOutcome, int], None] | None = None) -> SweepResult:
    """Run every trial on ``executor`` and write the sweep folder.

    Args:
        base: the sweep's config (before the trials' parameters).
        trials: from :func:`build_trials`.
        executor: where trials run (:func:`nnlab.executors.make_executor`).
        runs_dir: the runs root: trial folders and the sweep folder go there.
        data_dir: a folder of downloaded dataset files (a path every worker can read).
        metric: what ranks the trials (see :func:`sweep_metric`).
        executor_name: recorded in sweep.json.
        space: the parameter space, recorded in sweep.json.
        kfold: run every trial as a k-fold validation (:func:`kfold_trials`).
        jobs: the worker processes, recorded in k-fold trials' metrics.json.
        report: called with each finished trial and the number of trials.

    Returns:
        The sweep's result; its exit code is 0 when every trial completed, 1 when
        some failed, 130/143 when the sweep was stopped.
    """
    metric = sweep_metric(base, metric, kfold)
    started = utc_now()
    sweep = RunFolder.create(runs_dir, base.name, "_sweep", started=started)
    outcomes = [TrialOutcome(t.index, t.params) for t in trials]
    record: dict[str, Any] = {
        "sweep_id": sweep.run_id, "name": base.name, "status": "running", "metric": metric,
        "direction": "max" if higher_is_better(metric) else "min", "executor": executor_name,
        "trial_kind": "kfold" if kfold else "train", "space": space or {},
        "started": started.isoformat(timespec="seconds"), "trials": [],
    }
    sweep.write_yaml("config.yaml", base.to_dict())
    clock = time.perf_counter()
    status, exit_code = "completed", 0

    def save() -> None:
        record["trials"] = [vars(o) for o in outcomes]
        sweep.write_json("sweep.json", record)
        sweep.write_json("metrics.json", _sweep_metrics(record, base, outcomes, metric, clock))

    def tags_of(trial: Trial) -> dict[str, Any]:
        return {"sweep_id": sweep.run_id, "trial": trial.index, "trial_params": trial.params}

    save()
    runs_dir = str(runs_dir)
    # Workers do not start in this directory (a Ray worker runs in its session's folder):
    # they get absolute paths, which must name the same files on every node.
    data_dir = None if data_dir is None else str(Path(data_dir).expanduser().resolve())
    if not executor.in_process:
        trials = [_with_absolute_data_path(t) for t in trials]
    try:
        with stop_signals():
            if kfold:
                finished = kfold_trials(trials, executor, runs_dir=runs_dir, data_dir=data_dir, tags_of=tags_of,
                                        jobs=jobs)
            elif executor.in_process:
                finished = executor.run(train_trial_here, [(t.config, runs_dir, data_dir, tags_of(t)) for t in trials])
            else:
                finished = executor.run(train_trial_remote, [(t.config.to_dict(), t.config.source, data_dir,
                                                              tags_of(t)) for t in trials])
            for i, result, error in finished:
                outcome = outcomes[i]
                if error is not None:
                    outcome.status, outcome.message = "failed", _error_text(error)
                else:
                    folder = materialize(Path(runs_dir), result) if "files" in result else Path(result["folder"])
                    outcome.folder = str(folder)
                    outcome.metrics = {k: result["metrics"].get(k) for k in
                                       ("train", "validation", "validation_std", "test", "best")
                                       if result["metrics"].get(k) is not None}
                    outcome.status = result["metrics"]["status"]
                    outcome.message = result["metrics"].get("message")
                    if result["exit_code"] in (130, 143):
                        raise Interrupted(result["exit_code"] - 128)
                save()
                if report is not None:
                    report(outcome, len(trials))
    except Interrupted as stop:
        status, exit_code = "interrupted", stop.exit_code
        executor.close()
        for outcome in outcomes:
            if outcome.status in ("pending", "running"):
                outcome.status = "not run"
    if status == "completed" and any(o.status != "completed" for o in outcomes):
        status, exit_code = "completed with failures", 1
    record["status"] = status
    record["finished"] = utc_now().isoformat(timespec="seconds")
    record["wall_time_s"] = round(time.perf_counter() - clock, 3)
    order = ranked(outcomes, metric)
    record["ranking"] = [o.index for o in order]
    save()
    sweep.write_text("summary.md", summary_markdown(order, metric, kfold))
    return SweepResult(run=sweep, outcomes=order, metric=metric, status=status, exit_code=exit_code, kfold=kfold)


def metric_note(metric: str, kfold: bool) -> str:
    """What the ranking metric of a sweep's trials is, in one sentence."""
    if metric.startswith("best_"):
        what = f"{metric[5:]} at the epoch where it was best"
        if kfold:
            what = (f"the mean over the folds of {metric[5:]} at the epoch where that mean was best "
                    f"(kfold.monitor, after kfold.smoothing)")
        return f"{metric} is {what}."
    if kfold:
        return (f"{metric} is the mean over the folds of each fold's {metric} after its last epoch "
                f"(its standard deviation is validation_std in the trial's metrics.json).")
    return f"{metric} is the trained model's, after the last epoch."


def param_columns(outcomes: list[TrialOutcome]) -> tuple[list[str], Callable[[dict[str, Any]], list[str]]]:
    """How a summary table shows the trials' parameters: one column per key when every trial
    sets every key (a grid, random draws), else one ``changes`` column (variants, which each
    change different keys).

    Returns:
        ``(column headers, params -> cells)``.
    """
    from nnlab.views.console import compact

    keys = list(dict.fromkeys(k for o in outcomes for k in o.params))
    if all(set(o.params) == set(keys) for o in outcomes):
        return keys, lambda params: [compact(params[k]) for k in keys]
    return ["changes"], lambda params: ["; ".join(f"{k}={compact(v)}" for k, v in params.items())
                                        or "(none: the config as it is)"]


def summary_markdown(order: list[TrialOutcome], metric: str, kfold: bool = False) -> str:
    """The ranked trials as a Markdown table, and what the metric means."""
    headers, param_cells = param_columns(order)
    header = ["rank", "trial", *headers, metric, "status", "folder"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, o in enumerate(order, start=1):
        value = metric_value(o.metrics, metric)
        cells = [str(rank), str(o.index), *param_cells(o.params),
                 "-" if value is None else f"{value:.4f}", o.status, Path(o.folder).name if o.folder else "-"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + metric_note(metric, kfold) + "\n"


def _sweep_metrics(record: dict[str, Any], base: Config, outcomes: list[TrialOutcome], metric: str,
                   clock: float) -> dict[str, Any]:
    best = next((o for o in ranked(outcomes, metric) if o.status == "completed"), None)
    counts = {s: sum(o.status == s for o in outcomes) for s in {o.status for o in outcomes}}
    return {
        "run_id": record["sweep_id"], "name": base.name, "kind": "sweep", "dataset": base.dataset.name,
        "status": record["status"], "started": record["started"], "finished": record.get("finished"),
        "wall_time_s": record.get("wall_time_s", round(time.perf_counter() - clock, 3)),
        "trials": len(outcomes), "trial_statuses": counts, "metric": metric,
        "best": None if best is None else {"trial": best.index, "params": best.params, "folder": best.folder,
                                           "value": metric_value(best.metrics, metric)},
    }


def _with_absolute_data_path(trial: Trial) -> Trial:
    """The trial with a relative ``dataset.path`` made absolute (as this process resolves it)."""
    path = trial.config.dataset.options.get("path")
    if not isinstance(path, str) or Path(path).expanduser().is_absolute() or not Path(path).expanduser().exists():
        return trial
    absolute = str(Path(path).expanduser().resolve())
    return Trial(trial.index, trial.params, trial.config.with_overrides([f"dataset.path={json.dumps(absolute)}"]))


def _describe(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in point.items())


def _error_text(error: BaseException) -> str:
    if isinstance(error, NnlabError):
        return str(error)
    from nnlab.keras_objects import keras_reason

    return f"{type(error).__name__}: {keras_reason(error)}"


def _split_top_level(text: str) -> list[str]:
    parts, depth, current, quote = [], 0, [], None
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]

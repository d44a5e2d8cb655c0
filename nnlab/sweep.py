"""``nnlab sweep``: a grid (or random draws) of variations of one config, each a normal run.

Every trial is a run folder of its own, tagged in metrics.json with the sweep's id
and the trial's parameters; the sweep writes ``runs/<timestamp>_<name>_sweep/`` with
sweep.json (the space, every trial's folder, status and metrics) and a ranked
summary. Trials run here, in a pool of worker processes, or on a Ray cluster
(:mod:`nnlab.executors`); every trial's config is validated before any starts.
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
from typing import Any, Callable

import numpy as np

from nnlab.config import Config, config_from_dict
from nnlab.errors import ConfigError, NnlabError
from nnlab.executors import Executor, LocalExecutor
from nnlab.interrupts import Interrupted, stop_signals
from nnlab.runfolder import RunFolder, atomic_write, utc_now
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
    if not sep or not key.strip() or not raw.strip():
        raise ConfigError("expected KEY=V1,V2,... (e.g. model.layers.0.Dense.units=16,32,64)",
                          source=f"--grid {option}")
    values = [parse_yaml(part, f"--grid {option}").data for part in _split_top_level(raw)]
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
           seed: int = 0) -> list[dict[str, Any]]:
    """Every combination of the grid; with random parameters, ``n_random`` draws for each.

    Args:
        grid: dotted key -> values.
        random: dotted key -> distribution (see :func:`sample`).
        n_random: number of random draws (per grid point).
        seed: seed of the draws.

    Returns:
        One ``{dotted key: value}`` per trial, in a stable order.
    """
    keys = list(grid)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] or [{}]
    if not random:
        return points if keys else []
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


def space_of(base: Config, grid_options: list[str], param_options: list[str], n_random: int | None):
    """The sweep's space: the command line's, else the config's ``sweep`` section.

    Returns:
        ``(grid, random, n_random)``.
    """
    grid = dict(parse_grid_option(g) for g in grid_options)
    random = dict(parse_param_option(p) for p in param_options)
    section = base.sweep
    if not grid and not random and section is not None:
        grid = dict(section.grid)
        if section.random is not None:
            random, n_random = dict(section.random.params), section.random.n
    if random and not n_random:
        raise ConfigError("random parameters need --random N (how many draws)", source="--param")
    if n_random and not random:
        raise ConfigError("--random N needs at least one --param KEY=DISTRIBUTION", source="--random")
    return grid, random, n_random or 0


# -- ranking ----------------------------------------------------------------------------------

def default_metric(config: Config) -> str:
    """val_loss where trials validate (or run k-fold), test_loss otherwise."""
    t = config.training
    return "val_loss" if (t.validation_split or t.validation_holdout) else "test_loss"


def metric_value(metrics: dict[str, Any], metric: str) -> float | None:
    """``val_accuracy`` -> metrics["validation"]["accuracy"]; ``test_loss``, ``train_mae`` alike."""
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
    from nnlab.training import train

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
    from nnlab.training import train

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


@dataclass
class SweepResult:
    """The sweep folder, every trial's outcome (ranked) and the exit code."""

    run: RunFolder
    outcomes: list[TrialOutcome]
    metric: str
    status: str
    exit_code: int


def run_sweep(base: Config, trials: list[Trial], executor: Executor, *, runs_dir: str | Path = "runs",
              data_dir: str | Path | None = None, metric: str | None = None, executor_name: str = "local",
              space: dict[str, Any] | None = None,
              report: Callable[[TrialOutcome, int], None] | None = None) -> SweepResult:
    """Run every trial on ``executor`` and write the sweep folder.

    Args:
        base: the sweep's config (before the trials' parameters).
        trials: from :func:`build_trials`.
        executor: where trials run (:func:`nnlab.executors.make_executor`).
        runs_dir: the runs root: trial folders and the sweep folder go there.
        data_dir: a folder of downloaded dataset files.
        metric: what ranks the trials (default :func:`default_metric`).
        executor_name: recorded in sweep.json.
        space: the parameter space, recorded in sweep.json.
        report: called with each finished trial and the number of trials.

    Returns:
        The sweep's result; its exit code is 0 when every trial completed, 1 when
        some failed, 130/143 when the sweep was stopped.
    """
    metric = metric or (base.sweep.metric if base.sweep and base.sweep.metric else default_metric(base))
    started = utc_now()
    sweep = RunFolder.create(runs_dir, base.name, "_sweep", started=started)
    outcomes = [TrialOutcome(t.index, t.params) for t in trials]
    record: dict[str, Any] = {
        "sweep_id": sweep.run_id, "name": base.name, "status": "running", "metric": metric,
        "direction": "max" if higher_is_better(metric) else "min", "executor": executor_name,
        "space": space or {}, "started": started.isoformat(timespec="seconds"), "trials": [],
    }
    sweep.write_yaml("config.yaml", base.to_dict())
    clock = time.perf_counter()
    status, exit_code = "completed", 0

    def save() -> None:
        record["trials"] = [vars(o) for o in outcomes]
        sweep.write_json("sweep.json", record)
        sweep.write_json("metrics.json", _sweep_metrics(record, base, outcomes, metric, clock))

    save()
    remote = not isinstance(executor, LocalExecutor)
    runs_dir = str(runs_dir)
    data_dir = None if data_dir is None else str(data_dir)
    tasks = []
    for trial in trials:
        tags = {"sweep_id": sweep.run_id, "trial": trial.index, "trial_params": trial.params}
        if remote:
            tasks.append((trial.config.to_dict(), trial.config.source, data_dir, tags))
        else:
            tasks.append((trial.config, runs_dir, data_dir, tags))
    try:
        with stop_signals():
            for i, result, error in executor.run(train_trial_remote if remote else train_trial_here, tasks):
                outcome = outcomes[i]
                if error is not None:
                    outcome.status, outcome.message = "failed", _error_text(error)
                else:
                    folder = materialize(Path(runs_dir), result) if remote else Path(result["folder"])
                    outcome.folder = str(folder)
                    outcome.metrics = {k: result["metrics"].get(k) for k in ("train", "validation", "test", "best")
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
    sweep.write_text("summary.md", summary_markdown(order, metric))
    return SweepResult(run=sweep, outcomes=order, metric=metric, status=status, exit_code=exit_code)


def summary_markdown(order: list[TrialOutcome], metric: str) -> str:
    """The ranked trials as a Markdown table."""
    from nnlab.reporting import compact

    keys = list(dict.fromkeys(k for o in order for k in o.params))
    header = ["rank", "trial", *keys, metric, "status", "folder"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, o in enumerate(order, start=1):
        value = metric_value(o.metrics, metric)
        cells = [str(rank), str(o.index), *(compact(o.params.get(k)) for k in keys),
                 "-" if value is None else f"{value:.4f}", o.status, Path(o.folder).name if o.folder else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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

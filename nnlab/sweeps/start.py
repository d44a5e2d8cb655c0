"""Starting a sweep from what a user gives: the command line's options, or ``nnlab.sweep()``'s arguments.

``nnlab sweep`` and the Python API both call :func:`start_sweep`: it reads the
config (or the sweep folder of a resume), builds the space, checks its size and
every trial's config, makes the executor and runs the sweep
(:func:`nnlab.sweeps.run.run_sweep`, or :func:`nnlab.sweeps.search.run_search` for a
model-based search). The caller only parses and renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nnlab.errors import NnlabError


@dataclass
class SweepOptions:
    """Everything a sweep can be asked for (the options of ``nnlab sweep``).

    Args:
        config: a config file, the name of one, or a dict in the config schema; None with ``resume``.
        overrides: ``--set`` overrides (``KEY=VALUE``).
        grid: ``--grid KEY=V1,V2,...`` options.
        param: ``--param KEY=DIST`` options.
        random: ``--random N``: random draws.
        search: ``--search METHOD`` (``tpe``): a model-based search.
        trials: ``--trials N``: the search's budget of trials.
        pruner: ``--pruner NAME`` (``median``, ``asha``, ``hyperband``).
        max_epochs_total: ``--max-epochs-total N``: the search stops starting trials past this many epochs.
        timeout: ``--timeout SECONDS``: the search stops starting trials after this long.
        kfold: run every trial as a k-fold validation.
        metric: what ranks (and, in a search, what is optimised), e.g. ``val_accuracy``.
        jobs, executor, address, cpus_per_trial, gpus_per_trial: where trials run.
        max_trials: refuse a sweep of more runs than this.
        resume: a sweep folder to finish.
        runs_dir: the runs root (default ``runs``; with ``resume``, the sweep folder's).
        data_dir: a folder of downloaded dataset files.
        backend: the Keras backend (``--backend``).
        seeds: ``--seeds`` as text (``N`` or ``S1,S2,...``).
        mlflow, mlflow_experiment: log the sweep to MLflow.
    """

    config: str | Path | dict[str, Any] | None = None
    overrides: list[str] = field(default_factory=list)
    grid: list[str] = field(default_factory=list)
    param: list[str] = field(default_factory=list)
    random: int | None = None
    search: str | None = None
    trials: int | None = None
    pruner: str | None = None
    max_epochs_total: int | None = None
    timeout: float | None = None
    kfold: bool = False
    metric: str | None = None
    jobs: int | None = None
    executor: str | None = None
    address: str | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    max_trials: int | None = None
    resume: str | Path | None = None
    runs_dir: str | Path | None = None
    data_dir: str | Path | None = None
    backend: str | None = None
    seeds: str | int | list[int] | None = None
    mlflow: str | None = None
    mlflow_experiment: str | None = None


def start_sweep(options: SweepOptions, *, report: Callable[[Any, int], None] | None = None,
                announce: Callable[[str], None] | None = None):
    """Run the sweep ``options`` describe and write its folder.

    Args:
        options: what to sweep, and where.
        report: called with each finished trial and the number of trials (a progress display).
        announce: called with a line or two before trials start (the sweep's size, a resume's count).

    Returns:
        A :class:`nnlab.sweeps.run.SweepResult`.

    Raises:
        NnlabError: for anything refused before the sweep folder exists (exit code 2 on the command line).
    """
    from nnlab.config import load_config
    from nnlab.executors import make_executor
    from nnlab.repeats import parse_seeds, seeds_text
    from nnlab.sweeps import resume as resumes, run as sweeps
    from nnlab.sweeps.ranking import sweep_direction, sweep_metric
    from nnlab.sweeps.space import build_trials, check_size, space_of
    from nnlab.tracking import target_of

    say = announce or (lambda line: None)
    if options.config is None and options.resume is None:
        raise NnlabError("give a CONFIG to sweep, or --resume SWEEP_FOLDER to finish a sweep", source="nnlab sweep")
    previous = resumes.read_previous(options.resume) if options.resume is not None else None
    recorded = previous.executor_options if previous is not None else {}
    executor = options.executor or recorded.get("executor") or "local"
    same = executor == recorded.get("executor")
    address = options.address or (recorded.get("address") if same else None)
    jobs = options.jobs or (recorded.get("jobs") if same else None) or 1
    cpus = recorded.get("cpus_per_trial", 1.0) if options.cpus_per_trial is None else options.cpus_per_trial
    gpus = recorded.get("gpus_per_trial", 0.0) if options.gpus_per_trial is None else options.gpus_per_trial
    if executor not in ("local", "ray"):
        from nnlab.suggestions import unknown_name_message

        raise NnlabError(unknown_name_message("executor", executor, ["local", "ray"]), source="--executor")
    if address and executor != "ray":
        raise NnlabError("--address names a Ray cluster; add --executor ray", source=f"--address {address}")
    if address and jobs > 1:
        raise NnlabError("--jobs sets the CPUs of a local Ray instance; a cluster at --address has its own "
                         "(use --cpus-per-trial for each task's share)", source="--jobs")
    from nnlab.backend import backend_override

    overrides = backend_override(options.backend, list(options.overrides))
    if previous is None:
        base = load_config(options.config, overrides)
    else:
        base = load_config(options.config, overrides) if options.config else \
            previous.base.with_overrides(overrides)
    from nnlab.backend import use_backend

    use_backend(base.backend, source=base.source)  # before the workers start: they inherit it
    seed_list = None if options.seeds is None else parse_seeds(seeds_text(options.seeds), base.seed)
    from nnlab.sweeps import search as searches

    plan = searches.search_of(base, options, previous)
    if plan is not None:  # a model-based search: trials are proposed as it goes
        return searches.start_search(base, plan, options, previous, seed_list, executor=executor, jobs=jobs,
                                     address=address, cpus=cpus, gpus=gpus, report=report, say=say)
    changes_space = bool(options.grid or options.param or options.random)
    space = space_of(base, options.grid, options.param, options.random) if previous is None or changes_space \
        else previous.space
    kfold, metric = options.kfold, options.metric
    if previous is not None:
        seed_list = previous.seeds if options.seeds is None else seed_list
        kfold, metric = kfold or previous.kfold, metric or previous.metric
        resumes.check_unchanged(previous, base, space, seed_list, metric, kfold)
        base = previous.base
        again = resumes.unfinished(previous)
        if not again:
            raise NnlabError(f"every one of its {len(previous.outcomes)} trials completed or diverged; nothing "
                             "to resume", source=str(previous.run.path))
        say(f"resuming {previous.run.path}: {len(again)} of its {len(previous.outcomes)} runs to run again")
    else:
        kfold = kfold or (base.sweep is not None and base.sweep.kfold)
        size = check_size(space, seed_list, options.max_trials)  # before a single trial is expanded or validated
        say(f"sweep of {size}; validating every trial's config")
    metric = sweep_metric(base, metric, kfold)
    sweep_direction(base, metric)  # a metric whose direction nothing can tell is refused before any trial
    trials = build_trials(base, space.points(base.seed), seed_list)
    if previous is not None:
        trials = resumes.trials_to_run(previous, trials)
    where = options.runs_dir or (previous.run.path.parent if previous is not None else Path("runs"))
    recorded_options = executor_record(executor, jobs, address, cpus, gpus)
    with make_executor(executor, jobs=jobs, address=address, cpus=cpus, gpus=gpus) as pool:
        return sweeps.run_sweep(base, trials, pool, runs_dir=where, data_dir=options.data_dir, metric=metric,
                                tracking=target_of(options.mlflow, options.mlflow_experiment, base),
                                executor_name=executor_name(executor, jobs), space=space.as_dict(), kfold=kfold,
                                jobs=jobs if executor == "local" else 1, report=report, seeds=seed_list,
                                executor_options=recorded_options, previous=previous)


def executor_record(executor: str, jobs: int, address: str | None, cpus: float, gpus: float) -> dict[str, Any]:
    """The executor options sweep.json records, so a resume runs where the sweep ran."""
    return {"executor": executor, "jobs": jobs, "address": address, "cpus_per_trial": cpus, "gpus_per_trial": gpus}


def executor_name(executor: str, jobs: int) -> str:
    """How sweep.json names where trials ran: ``local``, ``process x2``, ``ray``."""
    return executor if executor == "ray" or jobs == 1 else f"process x{jobs}"

"""What ``nnlab train`` and ``nnlab kfold`` do, as functions both the command line and the Python API
(:mod:`nnlab.api`) call: one path for each, so a notebook and a terminal give the same runs and the same
messages. (Listing runs is :mod:`nnlab.views.listing`'s; a sweep, :func:`nnlab.sweeps.start.start_sweep`.)

Each function takes what the user gave (a config path, name or dict; ``--set`` overrides; seeds) and
returns plain results (the training layer's :class:`~nnlab.training.run.RunResult` and friends); the
command line renders them and exits with their code, the API wraps them in :class:`nnlab.api.objects.Run`.
Progress displays come in as factories, so each side brings its own (a terminal bar, a notebook one).
Nothing here imports TensorFlow, pandas or IPython at import time.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Mapping, Sequence

from nnlab.errors import NnlabError

#: ``progress(label, epochs)``: a context manager whose value takes each epoch's report (train).
EpochDisplay = Callable[[str, "int | None"], ContextManager[Any]]
#: ``progress(label)``: a context manager with the k-fold report's methods.
FoldDisplay = Callable[[str], ContextManager[Any]]


# -- what the user gives -------------------------------------------------------------------------

def as_overrides(values: str | Sequence[str] | Mapping[str, Any] | None) -> list[str]:
    """``--set`` overrides from the API's forms: a ``{key: value}`` mapping, ``KEY=VALUE`` strings, or None.

    A mapping's values are written as JSON, which YAML reads back as the same value (``0.1``,
    ``"adam"``, ``[{"Dense": {"units": 8}}]``).

    Returns:
        The ``KEY=VALUE`` strings, in order.
    """
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    if isinstance(values, Mapping):
        return [f"{key}={json.dumps(value)}" for key, value in values.items()]
    return [str(v) for v in values]


def as_grid(values: str | Sequence[str] | Mapping[str, Sequence[Any]] | None) -> list[str]:
    """``--grid`` options from ``{key: [v1, v2]}`` or ``KEY=V1,V2`` strings."""
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    if isinstance(values, Mapping):
        out = []
        for key, options in values.items():
            if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
                options = [options]
            out.append(f"{key}=" + ",".join(json.dumps(v) for v in options))
        return out
    return [str(v) for v in values]


def as_params(values: str | Sequence[str] | Mapping[str, str] | None) -> list[str]:
    """``--param`` options from ``{key: "uniform(0.1,1)"}`` or ``KEY=DIST`` strings."""
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    if isinstance(values, Mapping):
        return [f"{key}={dist}" for key, dist in values.items()]
    return [str(v) for v in values]


def load(config: str | Path | Mapping[str, Any], overrides: Sequence[str] = (), backend: str | None = None):
    """A config file, a bare config name or a dict in the config schema, overridden and validated.

    A dict is validated exactly as a file is (its messages name ``<dict>`` where a file's name its
    path and line).

    Raises:
        ConfigError: as :func:`nnlab.config.load_config` says.
    """
    from nnlab.backend import backend_override
    from nnlab.config import load_config

    if not isinstance(config, (str, Path, Mapping)):
        raise NnlabError(f"a config is a YAML file, the name of one, or a dict (got {type(config).__name__})",
                         source="config")
    return load_config(dict(config) if isinstance(config, Mapping) else config,
                       backend_override(backend, list(overrides)))


# -- training: one run, or one per seed --------------------------------------------------------------

@dataclass
class Trained:
    """What :func:`train` and :func:`kfold` return.

    Args:
        config: the validated config (None for a resumed run: it has its own).
        results: one result per run (:class:`~nnlab.training.run.RunResult` or
            :class:`~nnlab.crossval.run.KFoldResult`), in order.
        seeds: each run's seed with ``seeds``; None for a single run.
    """

    config: Any
    results: list[Any]
    seeds: list[int] | None = None

    @property
    def repeated(self) -> bool:
        """Whether the runs are repeats of one config (``--seeds``)."""
        return self.seeds is not None

    @property
    def exit_code(self) -> int:
        """A stop (130, 143) if any run was stopped, else the worst run's code (0, 1)."""
        codes = [r.exit_code for r in self.results] or [0]
        return next((c for c in codes if c in (130, 143)), max(codes))


def _shown(start: Callable[..., Any], display: Callable[[], ContextManager[Any]] | None) -> Any:
    """``start()``, with ``start(report=...)`` given the display when there is one."""
    if display is None:
        return start()
    with display() as report:
        return start(report=report)


def _repeats(config: Any, seeds: str, run_one: Callable[..., Any],
             display: Callable[[Any], ContextManager[Any]] | None) -> Trained:
    """The config once per seed, each a run folder tagged with its repeat (:mod:`nnlab.repeats`)."""
    from nnlab.repeats import parse_seeds, repeat_configs, run_repeats

    configs = repeat_configs(config, parse_seeds(seeds, config.seed))

    def one(c, repeat: int):
        start = functools.partial(run_one, c, tags={"repeat": repeat})
        return _shown(start, None if display is None else functools.partial(display, c))

    results = run_repeats(configs, one)
    return Trained(config, results, [c.seed for c in configs[:len(results)]])


def train(config: str | Path | Mapping[str, Any] | None, *, overrides: Sequence[str] = (), seeds: str | None = None,
          runs_dir: str | Path = "runs", data_dir: str | Path | None = None, backend: str | None = None,
          resume: str | Path | None = None, mlflow: str | None = None, mlflow_experiment: str | None = None,
          argv: list[str] | None = None, progress: EpochDisplay | None = None) -> Trained:
    """``nnlab train``: one run of a config, one per seed, or the rest of an interrupted run.

    Args:
        config: a YAML file, a config name or a dict (None with ``resume``).
        overrides: ``KEY=VALUE`` overrides (``--set``).
        seeds: ``--seeds`` text: ``N`` or ``S1,S2,...``.
        runs_dir: the runs root.
        data_dir: a folder of downloaded dataset files.
        backend: the Keras backend.
        resume: an interrupted run folder to continue.
        mlflow, mlflow_experiment: also log the runs to MLflow.
        argv: the command line env.json records.
        progress: makes each run's progress display (None: none).

    Returns:
        The config and each run's :class:`~nnlab.training.run.RunResult`.

    Raises:
        NnlabError: for anything refused before a run folder exists (the config above all).
    """
    from nnlab.tracking import target_of
    from nnlab.training import run as training

    if resume is not None and seeds is not None:
        raise NnlabError("a run resumes alone; --seeds starts new runs", source="--seeds")
    if resume is not None:
        if config is not None or overrides or backend is not None:
            raise NnlabError("a run resumes with the config it started with; it cannot be changed on resume "
                             "(drop CONFIG, --set and --backend, or start a new run)", source="--resume")
        resume = Path(resume)
        start = functools.partial(training.resume, resume, data_dir=data_dir, argv=argv,
                                  tracking=target_of(mlflow, mlflow_experiment) if mlflow else None)
        return Trained(None, [_shown(start, None if progress is None else lambda: progress(resume.name, None))])
    if config is None:
        raise NnlabError("give a config file or name (e.g. nnlab train spiral_mlp), or --resume RUN",
                         source="nnlab train")
    cfg = load(config, overrides, backend)
    target = target_of(mlflow, mlflow_experiment, cfg)
    run_one = functools.partial(training.train, runs_dir=runs_dir, data_dir=data_dir, argv=argv, tracking=target)
    epochs = cfg.training.epochs
    if seeds is not None:
        return _repeats(cfg, seeds, run_one,
                        None if progress is None else lambda c: progress(f"{c.name} seed {c.seed}", epochs))
    return Trained(cfg, [_shown(functools.partial(run_one, cfg),
                                None if progress is None else lambda: progress(cfg.name, epochs))])


def kfold(config: str | Path | Mapping[str, Any], *, overrides: Sequence[str] = (), k: int | None = None,
          epochs: int | None = None, shuffle: bool | None = None, final: bool = False, jobs: int = 1,
          seeds: str | None = None, runs_dir: str | Path = "runs", data_dir: str | Path | None = None,
          backend: str | None = None, mlflow: str | None = None, mlflow_experiment: str | None = None,
          argv: list[str] | None = None, progress: FoldDisplay | None = None) -> Trained:
    """``nnlab kfold``: a k-fold validation of a config (one per seed with ``seeds``).

    Args:
        config: a YAML file, a config name or a dict.
        overrides: ``KEY=VALUE`` overrides (``--set``).
        k, epochs, shuffle: ``kfold.k``, ``training.epochs`` and ``kfold.shuffle``, given as overrides
            (validated and recorded as ``--set`` is).
        final: then train on the whole training part for the best epoch count, and test.
        jobs: folds trained at once, each in its own process.
        seeds, runs_dir, data_dir, backend, mlflow, mlflow_experiment, argv: as for :func:`train`.
        progress: makes each validation's progress display (None: none).

    Returns:
        The config and each run's :class:`~nnlab.crossval.run.KFoldResult`.

    Raises:
        NnlabError: for anything refused before the run folder exists.
    """
    from nnlab.backend import backend_override, use_backend
    from nnlab.crossval.run import run_kfold
    from nnlab.executors import make_executor
    from nnlab.tracking import target_of

    if jobs < 1:
        raise NnlabError("must be at least 1", source="--jobs")
    overrides = backend_override(backend, list(overrides))  # before the workers start: they inherit it
    # The options are overrides like --set, so they are validated and recorded the same way.
    for key, value in (("kfold.k", k), ("training.epochs", epochs), ("kfold.shuffle", shuffle)):
        if value is not None:
            overrides.append(f"{key}={str(value).lower()}")
    # Started before the config is read (which imports Keras): the workers' TensorFlow start-up overlaps ours.
    with make_executor("local", jobs=min(jobs, k) if k else jobs, driver_helps=True) as pool:
        cfg = load(config, overrides)
        use_backend(cfg.backend, source=cfg.source)
        target = target_of(mlflow, mlflow_experiment, cfg)
        run_one = functools.partial(run_kfold, runs_dir=runs_dir, data_dir=data_dir, final=final, jobs=jobs,
                                    argv=argv, executor=pool, tracking=target)
        if seeds is not None:
            return _repeats(cfg, seeds, run_one,
                            None if progress is None else lambda c: progress(f"{c.name} seed {c.seed}"))
        return Trained(cfg, [_shown(functools.partial(run_one, cfg),
                                    None if progress is None else lambda: progress(cfg.name))])


# -- reading runs ------------------------------------------------------------------------------------

def find_run(run: str | Path, runs_dir: str | Path = "runs") -> Path:
    """The run folder a RUN argument names: a folder, a run id, a unique prefix of one, or ``last``.

    Raises:
        RunNotFound: when nothing, or more than one run, matches.
    """
    from nnlab.store.reading import resolve_run

    return resolve_run(str(run), runs_dir)

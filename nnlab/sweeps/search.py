"""Model-based search: ``nnlab sweep --search tpe --trials N --param KEY=DIST [--pruner asha]``.

Optuna's TPE sampler proposes each trial from the trials before it (seeded by the
config's seed, so the same command proposes the same trials); an optional pruner
stops unpromising trials early on their validation metric
(:mod:`nnlab.sweeps.pruning`). The study lives in the sweep folder (Optuna's RDB
storage on SQLite, ``study.db``), so ``nnlab sweep --resume SWEEP_FOLDER`` continues
it: completed, pruned and failed trials are kept, the sampler goes on from them,
and the trials a stop cut short are run anew up to the budget.

Every trial is a normal run folder (a train or k-fold run; one per seed with
``--seeds``, the sampler then seeing their mean) and the sweep folder is a normal
sweep folder (:class:`nnlab.sweeps.run.SweepBook`), so compare, show, the report and
MLflow read a search as they read any sweep. Trials run where every sweep's do: here,
in ``--jobs N`` worker processes or on Ray, with as many at once as there are jobs
(``constant_liar`` keeps concurrent TPE proposals apart); each worker reports to the
study's database itself, which therefore must be a file every worker reaches (this
machine, or a shared filesystem).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from nnlab.config import Config, config_from_dict
from nnlab.errors import ConfigError, NnlabError
from nnlab.store import format as runfile
from nnlab.store.format import Status
from nnlab.suggestions import unknown_name_message
from nnlab.sweeps.pruning import PrunerSpec, PruningTarget, TrialReporter, check_pruner, open_storage
from nnlab.sweeps.space import Space, Trial, build_trials, parse_distribution, parse_param_option

#: The search methods ``--search`` accepts.
METHODS = ("tpe",)
#: Statuses of a trial that count against the budget: it ended for good (an interrupted one is run anew).
SPENT = frozenset({Status.COMPLETED.value, Status.PRUNED.value, Status.DIVERGED.value, Status.FAILED.value})
#: At most this many of a search's first trials are drawn at random before TPE models them (Optuna's default).
STARTUP_TRIALS = 10


def startup_trials(trials: int) -> int:
    """Random trials before TPE takes over: a third of the budget, at most :data:`STARTUP_TRIALS`, at least 2
    (TPE needs some trials to model; a small budget still gets model-based proposals)."""
    return max(2, min(STARTUP_TRIALS, trials // 3))


#: The Optuna user attribute of a trial that a stop cut short (it does not count against the budget).
INTERRUPTED_ATTR = "nnlab_interrupted"


@dataclass
class SearchPlan:
    """What a search runs: its method, budget, distributions and pruner.

    Args:
        method: ``tpe``.
        trials: how many trials.
        params: dotted key -> distribution text (see :func:`nnlab.sweeps.space.parse_distribution`).
        grid: dotted key -> values, searched as choices.
        pruner: median, asha, hyperband or None.
        max_epochs_total: start no trial once the trials have trained this many epochs in all.
        timeout: start no trial after this many seconds (of this sweep, resumes included).
    """

    method: str
    trials: int
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    pruner: str | None = None
    max_epochs_total: int | None = None
    timeout: float | None = None

    def space(self) -> Space:
        """The space as sweep.json records every sweep's."""
        return Space(grid=self.grid, random=self.params)

    def as_dict(self) -> dict[str, Any]:
        """For sweep.json's ``search``."""
        return {"method": self.method, "trials": self.trials, "pruner": self.pruner,
                "max_epochs_total": self.max_epochs_total, "timeout": self.timeout, "study": runfile.STUDY}

    def parsed(self) -> dict[str, tuple[str, list[Any]]]:
        """Every searched key's ``(kind, arguments)`` (grid keys as choices).

        Raises:
            ConfigError: for a distribution that is not one, naming its ``--param``.
        """
        found = {key: parse_distribution(text, f"--param {key}={text}") for key, text in self.params.items()}
        found.update({key: ("choice", list(values)) for key, values in self.grid.items()})
        return found

    def distributions(self) -> dict[str, Any]:
        """Optuna's distribution of every searched key."""
        import optuna.distributions as d

        found: dict[str, Any] = {}
        for key, (kind, args) in self.parsed().items():
            if kind == "choice":
                found[key] = d.CategoricalDistribution(_choices(args))
            elif kind == "randint":
                found[key] = d.IntDistribution(int(args[0]), int(args[1]))
            else:
                found[key] = d.FloatDistribution(args[0], args[1], log=kind == "loguniform")
        return found

    def point(self, params: dict[str, Any]) -> dict[str, Any]:
        """A proposal's parameters as config values (choices of lists or mappings decoded)."""
        return {key: _decoded(value) for key, value in params.items()}


def _choices(values: list[Any]) -> tuple:
    """Choices Optuna can store: plain values as they are, lists and mappings as their JSON."""
    plain = all(v is None or isinstance(v, (bool, int, float, str)) for v in values)
    return tuple(values) if plain else tuple(_JSON_PREFIX + json.dumps(v, sort_keys=True) for v in values)


_JSON_PREFIX = "json:"


def _decoded(value: Any) -> Any:
    return json.loads(value[len(_JSON_PREFIX):]) if isinstance(value, str) and value.startswith(_JSON_PREFIX) else value


# -- from the options ---------------------------------------------------------------------------

def search_of(base: Config, options: Any, previous: Any) -> SearchPlan | None:
    """The search ``options`` (a :class:`nnlab.sweeps.start.SweepOptions`) or the config ask for, or None
    for a grid, random draws or variants.

    A resume takes the search sweep.json recorded; ``--trials`` may raise its budget there.

    Raises:
        NnlabError: for a search that cannot run, or search options without a search (exit code 2).
    """
    if previous is not None:
        recorded = previous.record.get("search")
        if recorded is None:
            _refuse_search_options(options, "a sweep that was not a search")
            return None
        return _recorded_plan(previous, options)
    section = base.sweep.search if base.sweep is not None else None
    method = options.search or (section.method if section is not None else None)
    if method is None:
        _refuse_search_options(options, "a grid, random draws or variants")
        return None
    if method not in METHODS:
        raise NnlabError(unknown_name_message("search method", method, METHODS),
                         source="--search" if options.search else base.source)
    source = "--search" if options.search else f"{base.source}: sweep.search"
    trials = options.trials if options.trials is not None else (section.trials if section is not None else None)
    if trials is None:
        raise NnlabError("a search needs a budget: give --trials N (how many trials)", source=source)
    if trials < 1:
        raise NnlabError(f"--trials must be at least 1 (got {trials})", source="--trials")
    pruner = options.pruner or (section.pruner if section is not None else None)
    if pruner is not None:
        check_pruner(pruner, "--pruner" if options.pruner else f"{base.source}: sweep.search.pruner")
    if options.random:
        raise NnlabError("--random draws its own trials and --search proposes them; give one of the two",
                         source="--random")
    params: dict[str, Any] = {}
    for option in options.param:
        key, dist = parse_param_option(option)
        if key in params:
            raise ConfigError(f"'{key}' is given twice", source=f"--param {option}")
        params[key] = dist
    if not params and section is not None:
        params = dict(section.params)
    grid: dict[str, list[Any]] = {}
    if options.grid:
        from nnlab.sweeps.space import space_of

        grid = space_of(base, options.grid, [], None).grid
    elif base.sweep is not None and not options.param:
        grid = dict(base.sweep.grid)
    if base.sweep is not None and base.sweep.variants:
        raise base.error(("sweep", "variants"), "hand-picked variants are not searched; drop them or the "
                                                "search (sweep.search, --search)")
    if not params:
        raise NnlabError("a search needs something to sample: give --param KEY=DIST (uniform(a, b), "
                         "loguniform(a, b), randint(a, b), choice(...)); a grid alone is every combination, "
                         "run it without --search", source=source)
    for key in grid:
        if key in params:
            raise ConfigError(f"'{key}' is both a grid key and a --param; give it in one place", source="--grid")
    max_epochs = options.max_epochs_total or (section.max_epochs_total if section is not None else None)
    timeout = options.timeout or (section.timeout if section is not None else None)
    for name, value in (("--max-epochs-total", max_epochs), ("--timeout", timeout)):
        if value is not None and value <= 0:
            raise NnlabError(f"must be above 0 (got {value:g})", source=name)
    plan = SearchPlan(method=method, trials=int(trials), params=params, grid=grid, pruner=pruner,
                      max_epochs_total=max_epochs, timeout=timeout)
    _needs_optuna()
    plan.parsed()  # a malformed distribution is refused here, before anything else is checked
    return plan


def _refuse_search_options(options: Any, what: str) -> None:
    for flag, value in (("--search", options.search), ("--trials", options.trials), ("--pruner", options.pruner),
                        ("--max-epochs-total", options.max_epochs_total), ("--timeout", options.timeout)):
        if value is not None:
            hint = "start a new sweep with --search" if flag == "--search" else "add --search tpe"
            raise NnlabError(f"{flag} belongs to a model-based search, not to {what}; {hint}", source=flag)


def _recorded_plan(previous: Any, options: Any) -> SearchPlan:
    recorded = previous.record["search"]
    space = previous.space
    try:
        plan = SearchPlan(method=str(recorded["method"]), trials=int(recorded["trials"]), params=dict(space.random),
                          grid=dict(space.grid), pruner=recorded.get("pruner"),
                          max_epochs_total=recorded.get("max_epochs_total"), timeout=recorded.get("timeout"))
    except (KeyError, TypeError, ValueError):
        raise NnlabError("sweep.json's search is damaged (edited?); nothing can be resumed from it",
                         source=str(previous.run.path)) from None
    for flag, given, kept in (("--search", options.search, plan.method), ("--pruner", options.pruner, plan.pruner),
                              ("--max-epochs-total", options.max_epochs_total, plan.max_epochs_total),
                              ("--timeout", options.timeout, plan.timeout)):
        if given is not None and given != kept:
            raise NnlabError(f"the search's {flag} is {kept} in sweep.json; a resume continues the same study "
                             "(only --trials may raise its budget)", source=flag)
    if options.trials is not None:
        if options.trials < plan.trials:
            raise NnlabError(f"the search's budget is {plan.trials} trials; a resume may raise it, not lower it "
                             f"(got --trials {options.trials})", source="--trials")
        plan.trials = options.trials
    _needs_optuna()
    return plan


def _needs_optuna() -> None:
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        raise NnlabError("a model-based search needs Optuna: pip install 'nnlab[search]'", source="--search")


def pruning_monitor(base: Config, metric: str, kfold: bool) -> str:
    """The history column a pruner watches: the validation form of the ranking metric
    (``best_val_loss`` and ``test_loss`` watch ``val_loss``).

    Raises:
        ConfigError: when the trials hold out no validation rows.
    """
    t = base.training
    if not kfold and not (t.validation_split or t.validation_holdout):
        raise ConfigError("a pruner compares trials on their validation metric while they train, and these "
                          "trials hold out no validation rows: add --set training.validation_split=0.2 (or "
                          "training.validation_holdout=N), or validate every trial with --kfold", source="--pruner")
    name = metric[len("best_"):] if metric.startswith("best_") else metric
    if name.startswith("test_"):
        name = "val_" + name[len("test_"):]
    return name if name.startswith("val_") else "val_" + name


# -- running --------------------------------------------------------------------------------------

def start_search(base: Config, plan: SearchPlan, options: Any, previous: Any, seeds: list[int] | None, *,
                 executor: str, jobs: int, address: str | None, cpus: float, gpus: float,
                 report: Callable[[Any, int], None] | None, say: Callable[[str], None]):
    """Check everything a search needs, then run it (see the module's docstring).

    Returns:
        A :class:`nnlab.sweeps.run.SweepResult`.

    Raises:
        NnlabError: for anything refused before the sweep folder exists.
    """
    from nnlab.executors import make_executor
    from nnlab.sweeps import resume as resumes
    from nnlab.sweeps.ranking import sweep_direction, sweep_metric
    from nnlab.sweeps.run import check_data
    from nnlab.sweeps.start import executor_name as name_of, executor_record as options_of
    from nnlab.tracking import target_of, tracking_experiment

    kfold, metric = options.kfold, options.metric
    if previous is not None:
        seeds = previous.seeds if options.seeds is None else seeds
        kfold, metric = kfold or previous.kfold, metric or previous.metric
        resumes.check_unchanged(previous, base, plan.space(), seeds, metric, kfold)
        base = previous.base
        done = len({o.index for o in previous.outcomes if o.status in SPENT})
        if done >= plan.trials:
            raise NnlabError(f"the search has run its {plan.trials} trials; nothing to resume (give --trials N to "
                             "run more in the same study)", source=str(previous.run.path))
    else:
        kfold = kfold or (base.sweep is not None and base.sweep.kfold)
    metric = sweep_metric(base, metric, kfold)
    way = sweep_direction(base, metric)
    monitor = pruning_monitor(base, metric, kfold) if plan.pruner else None
    corners = _corner_trials(base, plan, seeds)  # every searched value's config checked before the folder exists
    check_data(corners, options.data_dir)
    experiment = tracking_experiment(target_of(options.mlflow, options.mlflow_experiment, base))
    if previous is None:
        say(f"search of {plan.trials} trials ({plan.method}"
            + (f", {plan.pruner} pruner" if plan.pruner else "") + ")"
            + (f" x {len(seeds)} seeds" if seeds else ""))
    where = options.runs_dir or (previous.run.path.parent if previous is not None else Path("runs"))
    recorded = options_of(executor, jobs, address, cpus, gpus)
    with make_executor(executor, jobs=jobs, address=address, cpus=cpus, gpus=gpus) as pool:
        search = Search(base, plan, pool, runs_dir=where, data_dir=options.data_dir, metric=metric, way=way,
                        monitor=monitor, kfold=kfold, seeds=seeds, jobs=jobs, report=report, previous=previous,
                        executor_name=name_of(executor, jobs), executor_options=recorded, experiment=experiment)
        if previous is not None:
            say(f"resuming {previous.run.path}: {search.spent()} of its {plan.trials} trials done, "
                f"{plan.trials - search.spent()} to run")
        return search.run()


def _corner_trials(base: Config, plan: SearchPlan, seeds: list[int] | None) -> list[Trial]:
    """Configs at every searched value's extremes (each choice, each bound), validated before any trial:
    a key the config does not have, or a value Keras refuses, is refused once, up front."""
    points: list[dict[str, Any]] = []
    distributions = plan.parsed()
    low = {key: args[0] for key, (kind, args) in distributions.items()}
    points.append(dict(low))
    for key, (kind, args) in distributions.items():
        for value in args[1:]:
            points.append({**low, key: int(value) if kind == "randint" else value})
    return build_trials(base, points, seeds[:1] if seeds else None)


@dataclass
class _Proposal:
    """A trial the sampler proposed, while it runs."""

    trial: Any  # Optuna's trial, as ask() gave it
    point: dict[str, Any]
    slots: list[int]  # positions of its runs' outcomes


class Search:
    """One search's sweep folder, study and trials (:func:`start_search` makes it)."""

    def __init__(self, base: Config, plan: SearchPlan, executor: Any, *, runs_dir: str | Path,
                 data_dir: str | Path | None, metric: str, way: str, monitor: str | None, kfold: bool,
                 seeds: list[int] | None, jobs: int, report: Callable[[Any, int], None] | None, previous: Any,
                 executor_name: str, executor_options: dict[str, Any], experiment: Any):
        import optuna

        from nnlab.sweeps.run import SweepBook, worker_data_dir

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.base, self.plan, self.executor = base, plan, executor
        self.runs_dir, self.data_dir = str(runs_dir), worker_data_dir(data_dir)
        self.metric, self.way, self.monitor, self.kfold, self.seeds = metric, way, monitor, kfold, seeds
        self.jobs, self.report, self.experiment = jobs, report, experiment
        if previous is None:
            self.book = SweepBook.create(base, runs_dir, metric=metric, way=way, executor_name=executor_name,
                                         kfold=kfold, space=plan.space().as_dict(), seeds=seeds,
                                         executor_options=executor_options, search=plan.as_dict())
        else:
            self.book = SweepBook.resumed(previous, base, metric=metric, way=way, executor_name=executor_name,
                                          executor_options=executor_options, runs=0)
            self.book.record["search"] = plan.as_dict()
            self._set_aside_unfinished()
            self.book.record["resumed"][-1]["trials"] = plan.trials - self.spent()  # what this resume runs
        self.storage_url = f"sqlite:///{(self.book.run.path / runfile.STUDY).resolve()}"
        storage = open_storage(self.storage_url)
        count = len(self.book.outcomes)
        # A resume's sampler is seeded anew past the trials so far, so it does not propose the first ones again.
        sampler = optuna.samplers.TPESampler(seed=(base.seed + count) % 2**32, constant_liar=jobs > 1,
                                             n_startup_trials=startup_trials(plan.trials))
        pruner = self.pruner_spec().build() if plan.pruner else optuna.pruners.NopPruner()
        self.study = optuna.create_study(study_name=self.book.run.run_id, storage=storage, sampler=sampler,
                                         pruner=pruner, direction="maximize" if way == "max" else "minimize",
                                         load_if_exists=True)
        self._forget_cut_short()
        self.distributions = plan.distributions()
        self.running: dict[int, _Proposal] = {}
        self.proposed = 0  # trials proposed by this run of the search
        self.epochs_trained = sum(int((o.metrics or {}).get("epochs_trained") or 0) for o in self.book.outcomes)

    def pruner_spec(self) -> PrunerSpec:
        """The pruner, sized to a trial's steps (its stages: repeats x folds, times the epochs)."""
        stages = (len(self.seeds) if self.seeds else 1) * (self.base.kfold.k if self.kfold else 1)
        return PrunerSpec(self.plan.pruner, stages * self.base.training.epochs)

    def spent(self) -> int:
        """Trials that count against the budget: those that ended for good."""
        return len({o.index for o in self.book.outcomes if o.status in SPENT})

    def _set_aside_unfinished(self) -> None:
        """A resume: trials a stop cut short leave the ranking (their folders stay on disk, named in
        sweep.json's ``cut_short``); new trials take their place in the budget."""
        book = self.book
        unfinished = {o.index for o in book.outcomes if o.status not in SPENT}
        if unfinished:
            book.record.setdefault("cut_short", []).extend(
                dict(vars(o)) for o in book.outcomes if o.index in unfinished)
            book.outcomes[:] = [o for o in book.outcomes if o.index not in unfinished]

    def _forget_cut_short(self) -> None:
        """Trials the study still holds as running (the sweep was killed) are told failed."""
        import optuna
        from optuna.trial import TrialState

        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self._tell_cut_short(optuna.trial.Trial(self.study, frozen._trial_id))

    # -- the loop ---------------------------------------------------------------------------------

    def run(self):
        """Propose, run and tell trials until the budget is spent; write the sweep folder as it goes.

        Returns:
            The :class:`nnlab.sweeps.run.SweepResult` (exit code 0 when every trial completed or was pruned,
            1 when one failed, 130/143 when stopped).
        """
        from nnlab.interrupts import Interrupted, stop_signals
        from nnlab.store import liveness
        from nnlab.store.liveness import Heartbeat
        from nnlab.sweeps.run import not_run
        from nnlab.tracking import finishing, start_tracker

        book = self.book
        self.started = time.perf_counter()
        book.save()
        self.tracker = start_tracker(self.experiment, book.run)
        with Heartbeat(book.save, liveness.HEARTBEAT_SECONDS), finishing(self.tracker, book.run.path):
            try:
                with stop_signals():
                    for args, result, error in self.executor.stream(run_search_trial, self._proposals(), self.jobs):
                        self._finished(args[0], result, error)
            except Interrupted as stop:
                self._cut_short()
                not_run(self.executor, book.outcomes)
                return self._finish(Status.INTERRUPTED, stop.exit_code)
            except Exception as err:  # the sweep itself crashed (not a trial): recorded, never left running
                self._cut_short()
                not_run(self.executor, book.outcomes)
                return self._finish(Status.FAILED, 1, err)
            return self._finish(Status.COMPLETED, 0)

    def _budget_left(self) -> bool:
        if self.spent() + len(self.running) >= self.plan.trials:
            return False
        if self.plan.max_epochs_total is not None and self.epochs_trained >= self.plan.max_epochs_total:
            return False
        earlier = float(self.book.record.get("search_seconds") or 0)
        started_one = self.proposed > 0  # the first trial always runs: a search of no trial answers nothing
        if self.plan.timeout is not None and started_one and \
                earlier + time.perf_counter() - self.started >= self.plan.timeout:
            return False
        return True

    def _proposals(self) -> Iterator[tuple]:
        """The next trial's task whenever a slot is free, until the budget is spent."""
        from optuna.trial import TrialState

        from nnlab.sweeps.run import TrialOutcome, with_absolute_data_path

        while self._budget_left():
            trial = self.study.ask(self.distributions)
            point = self.plan.point(trial.params)
            try:
                runs = build_trials(self.base, [point], self.seeds)
            except ConfigError as err:  # a proposal Keras refuses: the trial fails, the search goes on
                self.study.tell(trial.number, state=TrialState.FAIL)
                self.book.outcomes.append(TrialOutcome(trial.number, point, status=Status.FAILED.value,
                                                       message=str(err)))
                self.book.save()
                continue
            runs = [Trial(trial.number, point, r.config, r.repeat) for r in runs]
            if not self.executor.in_process:
                runs = [with_absolute_data_path(r) for r in runs]
            slots = []
            for r in runs:
                slots.append(len(self.book.outcomes))
                self.book.outcomes.append(TrialOutcome(trial.number, point, status=Status.RUNNING.value,
                                                       repeat=r.repeat))
            self.running[trial.number] = _Proposal(trial, point, slots)
            self.proposed += 1
            self.book.save()
            target = None
            if self.plan.pruner:
                target = PruningTarget(self.storage_url, self.study.study_name, trial._trial_id, self.monitor,
                                       self.pruner_spec(), self.base.training.epochs)
            yield (trial.number, [r.config.to_dict() for r in runs], self.base.source,
                   "kfold" if self.kfold else "train", self.runs_dir if self.executor.in_process else None,
                   self.data_dir, [self.book.tags_of(r) for r in runs], target)

    def _finished(self, number: int, results: list[dict[str, Any]] | None, error: BaseException | None) -> None:
        """Record a trial's runs and tell the study what became of it."""
        from optuna.trial import TrialState

        from nnlab.interrupts import Interrupted
        from nnlab.metric_names import value_of
        from nnlab.sweeps.run import record_trial

        proposal = self.running.pop(number)
        outcomes = [self.book.outcomes[slot] for slot in proposal.slots]
        stopped = None
        if error is not None:
            for outcome in outcomes:
                record_trial(outcome, None, error, self.runs_dir)
        else:
            for outcome, result in zip(outcomes, results):
                record_trial(outcome, result, None, self.runs_dir)
                outcome.metrics["epochs_trained"] = result.get("epochs_trained", 0)
                self.epochs_trained += int(result.get("epochs_trained", 0))
                if result["exit_code"] in (130, 143):
                    stopped = result["exit_code"] - 128
            pruned = next((o for o in outcomes if o.status == Status.PRUNED.value), None)
            for outcome in outcomes[len(results):]:  # repeats after the one its pruner stopped
                outcome.status = Status.PRUNED.value if pruned else Status.NOT_RUN.value
                outcome.message = (f"not run: the trial was pruned in repeat {pruned.repeat}" if pruned
                                   else "not run")
        statuses = {o.status for o in outcomes}
        if stopped is not None:
            self._tell_cut_short(proposal.trial)
        elif Status.PRUNED.value in statuses:
            self.study.tell(number, state=TrialState.PRUNED)
        elif statuses == {Status.COMPLETED.value}:
            values = [value_of(o.metrics, self.metric) for o in outcomes]
            if any(v is None or not math.isfinite(v) for v in values):
                self.study.tell(number, state=TrialState.FAIL)
            else:
                self.study.tell(number, sum(values) / len(values))
        else:
            self.study.tell(number, state=TrialState.FAIL)
        self.book.save()
        for outcome in outcomes:
            if self.tracker is not None and outcome.folder:
                self.tracker.nested(Path(outcome.folder))
            if self.report is not None:
                self.report(outcome, self.plan.trials * (len(self.seeds) if self.seeds else 1))
        if stopped is not None:
            raise Interrupted(stopped)

    def _cut_short(self) -> None:
        """Trials still running when the search stops: told failed (cut short), so a resume runs new ones."""

        for number in list(self.running):
            try:
                self._tell_cut_short(self.running[number].trial)
            except Exception:  # told already, or the database is gone: a resume tells it
                pass
            for slot in self.running[number].slots:
                outcome = self.book.outcomes[slot]
                if outcome.status == Status.RUNNING.value:
                    outcome.status = Status.INTERRUPTED.value
        self.running.clear()

    def _tell_cut_short(self, trial: Any) -> None:
        """Tell the study a trial was cut short: failed, marked so (the budget does not count it)."""
        from optuna.trial import TrialState

        trial.set_user_attr(INTERRUPTED_ATTR, True)
        self.study.tell(trial, state=TrialState.FAIL)

    def _finish(self, status: Status, exit_code: int, error: BaseException | None = None):
        record = self.book.record
        record["search_seconds"] = round(float(record.get("search_seconds") or 0)
                                         + time.perf_counter() - self.started, 3)
        record["epochs_trained"] = self.epochs_trained
        record["study"] = _study_summary(self.study)
        # The ranking counts completed trials only: a trial pruned in a later repeat is pruned in all of them.
        pruned_points = {o.index for o in self.book.outcomes if o.status == Status.PRUNED.value}
        counted = [replace(o, status=Status.PRUNED.value) if o.index in pruned_points else o
                   for o in self.book.outcomes]
        return self.book.finish(status, exit_code, kfold=self.kfold, error=error, ranked_outcomes=counted)


def _study_summary(study: Any) -> dict[str, Any]:
    """The study's counts by state and its best trial, for sweep.json."""
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    summary: dict[str, Any] = {"name": study.study_name, "storage": runfile.STUDY, "states": states}
    try:
        summary["best_trial"] = study.best_trial.number
    except ValueError:  # no trial completed
        summary["best_trial"] = None
    return summary


# -- in a worker ------------------------------------------------------------------------------------

def run_search_trial(number: int, configs: list[dict[str, Any]], source: str, kind: str, runs_dir: str | None,
                     data_dir: str | None, tags: list[dict[str, Any]], target: PruningTarget | None) -> list[dict]:
    """One proposed trial: its runs one after another (one per seed), reporting to the pruner.

    Args:
        number: the trial's number in the study.
        configs: each run's resolved config.
        source: where the configs came from (for messages).
        kind: ``train`` or ``kfold``.
        runs_dir: the runs root when this runs in the sweep's own process (it writes the folders);
            None in a worker, which returns each run folder's files for the driver to write.
        data_dir: a folder of downloaded dataset files (absolute).
        tags: each run's sweep keys.
        target: where to report for pruning, or None.

    Returns:
        One entry per run that ran: ``folder`` (or ``name`` and ``files``), ``metrics``, ``exit_code`` and
        ``epochs_trained``; runs after a pruned or stopped one do not run.
    """
    from nnlab.sweeps.run import train_trial_remote, train_trial_here

    reporter = TrialReporter(target) if target is not None else None
    results = []
    for config_data, run_tags in zip(configs, tags):
        config = config_from_dict(config_data, source)
        if kind == "kfold":
            result = _kfold_trial(config, runs_dir, data_dir, run_tags, reporter)
        elif runs_dir is not None:
            result = train_trial_here(config, runs_dir, data_dir, run_tags,
                                      prune=reporter.callback() if reporter else None)
        else:
            result = train_trial_remote(config_data, source, data_dir, run_tags,
                                        prune=reporter.callback() if reporter else None)
        results.append(result)
        if result["exit_code"] in (130, 143) or (reporter is not None and reporter.pruned):
            break
    return results


def _kfold_trial(config: Config, runs_dir: str | None, data_dir: str | None, tags: dict[str, Any],
                 reporter: TrialReporter | None) -> dict[str, Any]:
    """A k-fold run of a search trial, its folds one after another here (each reports to the pruner)."""
    from nnlab.crossval.run import run_kfold
    from nnlab.executors import LocalExecutor
    from nnlab.sweeps.run import folder_files

    def run_in(folder: str) -> Any:
        return run_kfold(config, runs_dir=folder, data_dir=data_dir, jobs=1, executor=LocalExecutor(), tags=tags,
                         prune=reporter.callback if reporter else None)

    if runs_dir is not None:
        done = run_in(runs_dir)
        result = {"folder": str(done.run.path), "metrics": done.metrics, "exit_code": done.exit_code}
    else:
        with tempfile.TemporaryDirectory(prefix="nnlab-trial-") as tmp:
            done = run_in(tmp)
            result = {"name": done.run.run_id, "files": folder_files(done.run.path), "metrics": done.metrics,
                      "exit_code": done.exit_code}
    result["epochs_trained"] = sum(fold.epochs_run for fold in done.folds) + _final_epochs(done)
    return result


def _final_epochs(done: Any) -> int:
    final = (done.summary or {}).get("final") or {}
    return int(final.get("epochs") or 0) if isinstance(final, dict) else 0

"""A sweep's parameter space: grid, random draws and hand-picked variants, and the trials it makes.

The space is the product of three axes, each optional: ``variants`` (a list of
hand-picked variations, "one change at a time"), ``grid`` (every combination of
some keys' values) and ``random`` (N draws from distributions per point). Its size
is known before anything is expanded, and a space above :data:`MAX_TRIALS` runs is
refused unless the user raises the limit. Every trial's config is validated, Keras
names included, before any trial starts; each distinct layer, optimizer, loss and
metric is built once, however many trials share it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnlab.config import Config
from nnlab.errors import ConfigError, NnlabError
from nnlab.yamlfile import parse_yaml

#: The most runs (trials, times the seeds of ``--seeds``) a sweep makes unless ``--max-trials`` says otherwise.
MAX_TRIALS = 10_000

_DISTRIBUTION = re.compile(r"^\s*(uniform|loguniform|randint|choice)\s*\((.*)\)\s*$", re.S)


@dataclass
class Trial:
    """One run of the sweep: its point's index and parameters, its validated config, and which repeat
    of the point it is (``--seeds``; None when points are not repeated)."""

    index: int
    params: dict[str, Any]
    config: Config
    repeat: int | None = None


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
    kind, args = parse_distribution(distribution, source)
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    low, high = args
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "randint":
        return int(rng.integers(int(low), int(high) + 1))
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def parse_distribution(distribution: Any, source: str) -> tuple[str, list[Any]]:
    """``uniform(a, b)`` into ``("uniform", [a, b])``; a list means ``choice`` among its items.

    Returns:
        The kind (uniform, loguniform, randint, choice) and its arguments: two numbers, or the choices.

    Raises:
        ConfigError: for anything else, or bounds that do not make a distribution.
    """
    if isinstance(distribution, list):
        if not distribution:
            raise ConfigError("choice needs at least one value", source=source)
        return "choice", list(distribution)
    match = _DISTRIBUTION.match(str(distribution))
    if not match:
        raise ConfigError(f"'{distribution}' is not a distribution: use uniform(a, b), loguniform(a, b), "
                          "randint(a, b) or choice(v1, v2, ...)", source=source)
    kind, raw = match.groups()
    args = [parse_yaml(part, source).data for part in _split_top_level(raw)]
    if kind == "choice":
        if not args:
            raise ConfigError("choice needs at least one value", source=source)
        return kind, args
    try:  # YAML 1.1 reads 1e-4 (no dot) as text; here it can only mean a number
        low, high = (float(a) if not isinstance(a, bool) else None for a in args)
    except (TypeError, ValueError):
        raise ConfigError(f"{kind} takes two numbers, got {raw!r}", source=source) from None
    if low > high:
        raise ConfigError(f"{kind}'s low bound {low:g} is above its high bound {high:g}", source=source)
    if kind == "loguniform" and (low <= 0 or high <= 0):
        raise ConfigError("loguniform needs two positive numbers", source=source)
    return kind, [low, high]


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
    combos = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] if keys else [{}]
    points = [{**variant, **combo} for variant in (variants or [{}]) for combo in combos]
    if not random:
        return points if keys or variants else []
    rng = np.random.default_rng(seed)
    trials = []
    for point in points:
        for _ in range(n_random):
            trials.append({**point, **{k: sample(d, rng, f"sweep.random.params.{k}") for k, d in random.items()}})
    return trials


def build_trials(base: Config, params: list[dict[str, Any]], seeds: list[int] | None = None) -> list[Trial]:
    """Validate every trial's config before any trial starts.

    Each trial's config is validated in full (the schema, with its overrides); the Keras
    objects are built once per distinct layer, optimizer, loss and metric
    (:func:`check_keras_objects`), so a grid of 10,000 trials over a few values of each
    key validates in seconds.

    Args:
        base: the sweep's config.
        params: one ``{dotted key: value}`` per trial.
        seeds: repeat every trial with each of these seeds (``--seeds``); None: once, with its own seed.

    Returns:
        The runs: one per trial, or per trial and seed (trial by trial, seeds in order).

    Raises:
        ConfigError: naming the trial and its parameters for the first one refused.
    """
    if not params:
        raise ConfigError("the sweep has no trials: give --grid KEY=V1,V2 or --random N with --param, "
                          "or a sweep section in the config", source=base.source)
    trials = []
    checked: set[str] = set()
    without_sweep = [] if base.sweep is None else ["sweep=null"]  # a trial is a normal config
    for i, point in enumerate(params):
        overrides = without_sweep + [f"{key}={json.dumps(value)}" for key, value in point.items()]
        try:
            config = base.with_overrides(overrides)
            check_keras_objects(config, checked)  # Keras names and arguments, before any trial starts
        except ConfigError as err:
            raise ConfigError(f"trial {i} ({_describe(point)}) is not a valid config: {err}",
                              source=base.source) from None
        if seeds is None:
            trials.append(Trial(i, point, config))
        else:
            trials.extend(Trial(i, point, config.with_overrides([f"seed={seed}"]), repeat)
                          for repeat, seed in enumerate(seeds))
    return trials


def check_keras_objects(config: Config, checked: set[str]) -> None:
    """What :func:`nnlab.keras_objects.build_objects` checks, each distinct part built once.

    A layer's, the optimizer's, the loss's and a metric's validity depend on their own
    config form only, so a part already built for an earlier trial is not built again.

    Args:
        config: a trial's config.
        checked: the parts built so far (their canonical JSON); updated.

    Raises:
        ConfigError: naming the key of the first part Keras refuses.
    """
    from nnlab import keras_objects as objects

    parts = [(["layer", spec], lambda i=i, spec=spec: objects.layer(spec, config, ("model", "layers", i)))
             for i, spec in enumerate(config.model.layers)]
    parts.append((["optimizer", config.optimizer.name, config.optimizer.options], lambda: objects.optimizer(config)))
    parts.append((["loss", config.loss], lambda: objects.loss(config.loss, config)))
    parts.extend((["metric", m], lambda i=i, m=m: objects.metric(m, config, ("metrics", i)))
                 for i, m in enumerate(config.metrics))
    for form, build in parts:
        key = json.dumps(form, sort_keys=True, default=str)
        if key not in checked:
            build()
            checked.add(key)


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

    def size(self) -> int:
        """How many points :meth:`points` makes, counted without making them."""
        if not self.grid and not self.variants and not self.random:
            return 0
        count = max(1, len(self.variants)) * math.prod(len(values) for values in self.grid.values())
        return count * self.n_random if self.random else count

    def as_dict(self) -> dict[str, Any]:
        """For sweep.json."""
        return {"variants": self.variants, "grid": self.grid, "random": self.random, "n_random": self.n_random}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "Space":
        """The space sweep.json recorded (:meth:`as_dict`).

        Raises:
            NnlabError: when ``data`` is not such a record.
        """
        try:
            space = cls(grid=dict(data["grid"]), random=dict(data["random"]), n_random=int(data["n_random"]),
                        variants=[dict(v) for v in data["variants"]])
        except (KeyError, TypeError, ValueError):
            raise NnlabError("sweep.json records no parameter space nnlab can read (edited, or damaged)",
                             source=source) from None
        if any(not isinstance(v, list) for v in space.grid.values()):
            raise NnlabError("sweep.json's grid is damaged: every key needs a list of values", source=source)
        return space


def check_size(space: Space, seeds: list[int] | None = None, limit: int | None = None) -> str:
    """Refuse a sweep of more runs than ``limit``, before a single trial is expanded or validated.

    Args:
        space: the sweep's space.
        seeds: the seeds of ``--seeds`` (each trial runs once per seed), or None.
        limit: the most runs allowed (``--max-trials``); default :data:`MAX_TRIALS`.

    Returns:
        The sweep's size in words: ``1,000 trials``, or ``40 trials x 5 seeds = 200 runs``.

    Raises:
        NnlabError: naming the count, the limit and ``--max-trials``.
    """
    limit = MAX_TRIALS if limit is None else limit
    trials = space.size()
    runs = trials * (len(seeds) if seeds else 1)
    count = f"{trials:,} {'trial' if trials == 1 else 'trials'}"
    if seeds:
        count += f" x {len(seeds)} {'seed' if len(seeds) == 1 else 'seeds'} = {runs:,} runs"
    if runs > limit:
        raise NnlabError(f"the sweep has {count}, more than the limit of {limit:,}; narrow the space, or give "
                         f"--max-trials {runs} to run them all")
    return count


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


def _describe(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in point.items())


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

"""Repeated seeds (``--seeds``): one config run with several seeds, and what the repeats say together.

The seed drives weight initialisation, shuffling and dropout; the data split stays as
the config fixes it (``dataset.split_seed``, the k-fold cut), so the repeats differ by
seed noise alone. Each repeat is a normal run folder whose metrics.json records the
config's ``group`` and its ``repeat``; :func:`group_summary` gives each metric's mean,
standard deviation and 95% confidence interval over them.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from nnlab.config import Config
from nnlab.errors import ConfigError, NnlabError

#: The most repeats one command may ask for.
MAX_SEEDS = 1000
_MAX_SEED = 2**32 - 1


def seeds_text(seeds: str | int | Sequence[int] | None) -> str | None:
    """``--seeds`` as the text :func:`nnlab.repeats.parse_seeds` reads: ``5``, ``0,1,7`` (None stays None)."""
    if seeds is None or isinstance(seeds, str):
        return seeds
    if isinstance(seeds, bool):
        raise NnlabError("give a number of repeats (seeds=5) or the seeds themselves (seeds=[0, 1, 7])",
                         source="seeds")
    if isinstance(seeds, int):
        return str(seeds)
    return ",".join(str(s) for s in seeds)


def parse_seeds(text: str, base_seed: int) -> list[int]:
    """``--seeds N`` (seeds ``base_seed`` .. ``base_seed + N - 1``) or ``--seeds 0,1,7`` (those seeds).

    Args:
        text: what the user gave.
        base_seed: the config's seed, where ``N`` seeds start.

    Returns:
        The seeds, in order.

    Raises:
        ConfigError: for 0 seeds, more than :data:`MAX_SEEDS`, a negative or too large seed,
            something that is not a whole number, or a seed given twice.
    """
    source = f"--seeds {text}"
    parts = [p.strip() for p in str(text).split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ConfigError("give a number of repeats (--seeds 5) or the seeds themselves (--seeds 0,1,7)",
                          source=source) from None
    if len(parts) == 1:
        count = numbers[0]
        if not 1 <= count <= MAX_SEEDS:
            raise ConfigError(f"the number of repeats must be 1 to {MAX_SEEDS} (got {count})", source=source)
        seeds = [(base_seed + i) % (_MAX_SEED + 1) for i in range(count)]
    else:
        seeds = numbers
        if len(seeds) > MAX_SEEDS:
            raise ConfigError(f"at most {MAX_SEEDS} seeds (got {len(seeds)})", source=source)
    bad = [s for s in seeds if not 0 <= s <= _MAX_SEED]
    if bad:
        raise ConfigError(f"a seed is a whole number from 0 to {_MAX_SEED} (got {bad[0]})", source=source)
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"seed {twice[0]} is given twice: each repeat needs its own seed", source=source)
    return seeds


def repeat_configs(config: Config, seeds: list[int]) -> list[Config]:
    """The config once per seed (validated again, the seed recorded as an override)."""
    return [config.with_overrides([f"seed={seed}"]) for seed in seeds]


def run_repeats(configs: list[Config], run_one: Callable[[Config, int], Any]) -> list[Any]:
    """Run each repeat in turn; a stop (Ctrl-C) ends them, keeping the ones that finished.

    Args:
        configs: from :func:`repeat_configs`.
        run_one: ``run_one(config, repeat)`` runs one and returns its result (with ``exit_code``).

    Returns:
        The results of the repeats that ran, in order.
    """
    results = []
    for repeat, config in enumerate(configs):
        result = run_one(config, repeat)
        results.append(result)
        if result.exit_code in (130, 143):
            break
    return results


def group_summary(metrics: Iterable[dict[str, Any]], parts: tuple[str, ...] = ("train", "validation", "test")
                  ) -> dict[str, dict[str, Any]]:
    """Each metric of each part over the repeats: mean, std, 95% CI, min, max, n.

    Args:
        metrics: the repeats' metrics.json contents.
        parts: the metrics.json parts to summarise.

    Returns:
        ``{part: {metric: Description}}`` (only parts some repeat has).
    """
    from nnlab.stats import describe

    metrics = list(metrics)
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        names = list(dict.fromkeys(name for m in metrics for name in (m.get(part) or {})))
        if names:
            out[part] = {name: describe((m.get(part) or {}).get(name) for m in metrics) for name in names}
    return out

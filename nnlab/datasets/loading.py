"""Loading the dataset a config names."""

from __future__ import annotations

from pathlib import Path

from nnlab.config import Config
from nnlab.datasets.base import Dataset
from nnlab.datasets.registry import get
from nnlab.errors import ConfigError, NnlabError


def load_dataset(config: Config, data_dir: str | Path | None = None) -> Dataset:
    """Load ``config.dataset`` through the registry.

    Args:
        config: the validated config.
        data_dir: a folder of downloaded dataset files (``--data-dir``).

    Returns:
        The dataset, as its source provides it (preprocessing comes later).

    Raises:
        DataError: when the data cannot be found or read.
        ConfigError: when the loader refuses its options.
    """
    spec = get(config.dataset.name)
    options = config.dataset.options
    if data_dir is not None and "data_dir" in spec.options and "data_dir" not in options:
        options["data_dir"] = str(data_dir)
    try:
        return spec.load(**options)
    except NnlabError as err:
        if err.source == config.source:
            raise
        # Name the config key that led to the file as well as the file itself.
        raise config.error(("dataset", "path") if "path" in options else ("dataset",), str(err)) from None
    except ValueError as err:
        raise config.error(("dataset",), f"dataset '{spec.name}' refused its options: {err}") from None
    except MemoryError:
        raise config.error(("dataset",), f"dataset '{spec.name}' with these options does not fit in "
                                         "memory; use smaller options") from None
    except OSError as err:
        raise ConfigError(f"cannot read the data of '{spec.name}': {err}", source=config.source,
                          key="dataset") from None

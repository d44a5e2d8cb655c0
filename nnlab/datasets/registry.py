"""The dataset registry: adding a dataset is one decorated function.

    @register("spiral", task="multiclass", summary="2-D spiral, K arms")
    def spiral(points_per_class: int = 100, classes: int = 3) -> Dataset: ...

The function's keyword arguments are the dataset's options in a config; their
type hints validate them (through pydantic) before anything is loaded.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable

import pydantic

from nnlab.datasets.base import Dataset, Task
from nnlab.suggestions import unknown_name_message


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader and what is known before loading it."""

    name: str
    loader: Callable[..., Dataset]
    task: Task | None  # None where the options decide (csv, npz files)
    summary: str
    options_model: type[pydantic.BaseModel]

    @property
    def options(self) -> dict[str, inspect.Parameter]:
        """The loader's keyword arguments, by name."""
        return dict(inspect.signature(self.loader).parameters)

    def load(self, **options: Any) -> Dataset:
        """Validate ``options`` and call the loader.

        Returns:
            The loaded dataset.
        """
        validated = self.options_model.model_validate(options)
        return self.loader(**dict(validated))


_REGISTRY: dict[str, DatasetSpec] = {}


def register(name: str, *, task: Task | None, summary: str = "") -> Callable:
    """Register a loader function under ``name``.

    Args:
        name: the name configs use (``dataset.name``).
        task: the task the dataset always has, or None when its options decide.
        summary: one line for ``nnlab datasets``.

    Returns:
        A decorator that returns the function unchanged.
    """

    def decorator(loader: Callable[..., Dataset]) -> Callable[..., Dataset]:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is registered twice")
        fields = {}
        hints = typing.get_type_hints(loader, include_extras=True)
        for param in inspect.signature(loader).parameters.values():
            annotation = hints.get(param.name, Any)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
        model = pydantic.create_model(
            f"{name}_options", __config__=pydantic.ConfigDict(extra="forbid", strict=True), **fields)
        _REGISTRY[name] = DatasetSpec(name, loader, task, summary or (loader.__doc__ or "").split("\n")[0],
                                      model)
        return loader

    return decorator


def names() -> list[str]:
    """Names of every registered dataset, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> DatasetSpec:
    """The registered dataset called ``name``.

    Raises:
        KeyError: with a "did you mean" suggestion when no dataset has that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(unknown_name_message("dataset", name, _REGISTRY)) from None

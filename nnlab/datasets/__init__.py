"""Datasets by name: ``get("spiral").load(points_per_class=100)``."""

from nnlab.datasets.base import Dataset
from nnlab.datasets.registry import DatasetSpec, get, names, register

# Importing the loaders runs their @register decorators: the registry itself imports none of them.
from nnlab.datasets import files, keras_sets, scikit, spiral  # noqa: E402,F401  (isort: skip)

__all__ = ["Dataset", "DatasetSpec", "get", "names", "register"]

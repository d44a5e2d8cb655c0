"""Datasets by name: ``get("spiral").load(points_per_class=100)``."""

from nnlab.datasets.base import Dataset
from nnlab.datasets.registry import DatasetSpec, get, names, register

__all__ = ["Dataset", "DatasetSpec", "get", "names", "register"]

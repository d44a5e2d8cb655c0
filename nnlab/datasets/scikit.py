"""The small datasets that scikit-learn ships inside its package (no network)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from nnlab.datasets.base import Dataset
from nnlab.datasets.registry import register

TestSize = Annotated[float, Field(gt=0, lt=1)]


def split_seeded(x, y, *, test_size: float, split_seed: int, stratify: bool):
    """scikit-learn's train_test_split with a fixed seed (stratified for classification)."""
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_size, random_state=split_seed,
                            stratify=y if stratify else None)


def _bundled(name: str, loader_name: str, task, *, test_size: float, split_seed: int,
             image_shape=None) -> Dataset:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader_name)()
    x = np.asarray(bunch.data, dtype="float32")
    y = np.asarray(bunch.target)
    y = y.astype("float32") if task == "regression" else y.astype("int64")
    classification = task != "regression"
    x_train, x_test, y_train, y_test = split_seeded(x, y, test_size=test_size, split_seed=split_seed,
                                                    stratify=classification)
    class_names = [str(c) for c in bunch.target_names] if classification else None
    return Dataset(name=name, task=task, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=class_names, image_shape=image_shape,
                   feature_names=[str(f) for f in getattr(bunch, "feature_names", [])] or None,
                   source=f"scikit-learn {loader_name}")


@register("digits", task="multiclass", summary="8x8 handwritten digits, 1,797 images (scikit-learn)")
def digits(test_size: TestSize = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's digits: 1,797 8x8 images with values 0..16, 10 classes."""
    return _bundled("digits", "load_digits", "multiclass", test_size=test_size, split_seed=split_seed,
                    image_shape=(8, 8))


@register("iris", task="multiclass", summary="150 iris flowers, 4 features, 3 species (scikit-learn)")
def iris(test_size: TestSize = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's iris."""
    return _bundled("iris", "load_iris", "multiclass", test_size=test_size, split_seed=split_seed)


@register("wine", task="multiclass", summary="178 wines, 13 features, 3 cultivars (scikit-learn)")
def wine(test_size: TestSize = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's wine."""
    return _bundled("wine", "load_wine", "multiclass", test_size=test_size, split_seed=split_seed)


@register("breast_cancer", task="binary", summary="569 tumours, 30 features, malignant/benign (scikit-learn)")
def breast_cancer(test_size: TestSize = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's breast cancer Wisconsin (diagnostic)."""
    return _bundled("breast_cancer", "load_breast_cancer", "binary", test_size=test_size,
                    split_seed=split_seed)


@register("diabetes", task="regression", summary="442 patients, 10 features, disease progression (scikit-learn)")
def diabetes(test_size: TestSize = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's diabetes regression."""
    return _bundled("diabetes", "load_diabetes", "regression", test_size=test_size, split_seed=split_seed)

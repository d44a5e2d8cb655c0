"""The 2-D spiral toy problem of the CS231n-style case study."""

from __future__ import annotations

import numpy as np
from typing import Annotated

from pydantic import Field

Points = Annotated[int, Field(ge=1, le=10_000_000)]

from nnlab.datasets.base import Dataset
from nnlab.datasets.registry import register


def make_spiral(points_per_class: int, classes: int, noise: float, seed: int):
    """Generate the spiral exactly as the lesson's listing does.

    For class j: radius ``linspace(0, 1, N)``, angle ``linspace(4j, 4(j+1), N)``
    plus ``noise * randn(N)``, point ``(r sin t, r cos t)``; the normal draws come
    from ``numpy.random.RandomState(seed)``, so ``np.random.seed(seed)`` followed
    by the listing gives the same points.

    Returns:
        ``(x, y)``: float32 points of shape (N*K, 2) and uint8 labels of shape (N*K,).
    """
    rng = np.random.RandomState(seed)
    n = points_per_class
    x = np.zeros((n * classes, 2))
    y = np.zeros(n * classes, dtype="uint8")
    for j in range(classes):
        ix = range(n * j, n * (j + 1))
        r = np.linspace(0.0, 1, n)
        t = np.linspace(j * 4, (j + 1) * 4, n) + rng.randn(n) * noise
        x[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return x.astype("float32"), y


@register("spiral", task="multiclass", summary="2-D spiral with K arms (generated, seeded)")
def spiral(points_per_class: Points = 100, classes: Annotated[int, Field(ge=2, le=1000)] = 3, noise: float = 0.2,
           seed: Annotated[int, Field(ge=0, le=2**32 - 2)] = 0,
           test_points_per_class: Points | None = None) -> Dataset:
    """2-D spiral: the training part is the lesson's points; the test part a fresh draw.

    Args:
        points_per_class: N, points per arm.
        classes: K, number of arms.
        noise: standard deviation of the angle noise.
        seed: seed of the training draw; the test draw uses ``seed + 1``.
        test_points_per_class: points per arm in the test part (default N).

    Returns:
        The dataset.
    """
    x_train, y_train = make_spiral(points_per_class, classes, noise, seed)
    x_test, y_test = make_spiral(test_points_per_class or points_per_class, classes, noise, seed + 1)
    return Dataset(name="spiral", task="multiclass", x_train=x_train, y_train=y_train,
                   x_test=x_test, y_test=y_test, class_names=[f"arm {j}" for j in range(classes)],
                   feature_names=["x1", "x2"], source="generated")

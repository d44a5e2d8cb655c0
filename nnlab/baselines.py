"""Trivial baselines on the same test set, because every network is judged against one."""

from __future__ import annotations

from typing import Any

import numpy as np


def baseline(task: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
             y_test: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Scores of trivial models on the test set.

    Classification: accuracy of always predicting the training part's majority
    class, and of the test labels shuffled (the lessons' "random guessing").
    Regression: scikit-learn's LinearRegression fitted on the training rows, and
    the training mean, each with test MAE and MSE.

    Args:
        task: binary, multiclass or regression.
        x_train, y_train: the training rows (after preprocessing; labels as integers).
        x_test, y_test: the test rows.
        seed: seed of the label shuffle.

    Returns:
        ``{"name": ..., metric: value, ...}`` with the main figure first.
    """
    y_train, y_test = _labels(y_train), _labels(y_test)
    if task == "regression":
        from sklearn.dummy import DummyRegressor
        from sklearn.linear_model import LinearRegression
        from sklearn.metrics import mean_absolute_error, mean_squared_error

        flat_train, flat_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
        linear = LinearRegression().fit(flat_train, y_train).predict(flat_test)
        mean = DummyRegressor().fit(flat_train, y_train).predict(flat_test)
        return {
            "name": "linear_regression",
            "linear_regression_mae": float(mean_absolute_error(y_test, linear)),
            "linear_regression_mse": float(mean_squared_error(y_test, linear)),
            "mean_predictor_mae": float(mean_absolute_error(y_test, mean)),
            "mean_predictor_mse": float(mean_squared_error(y_test, mean)),
        }
    values, counts = np.unique(y_train, return_counts=True)
    majority = values[np.argmax(counts)]
    shuffled = np.random.default_rng(seed).permutation(y_test)
    return {
        "name": "majority_class",
        "majority_class_accuracy": float(np.mean(y_test == majority)),
        "shuffled_labels_accuracy": float(np.mean(shuffled == y_test)),
    }


def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot back to class indices
        return y.argmax(axis=1)
    return y.reshape(len(y))

"""Checking a config all the way without training it (``nnlab validate``)."""

from __future__ import annotations

from pathlib import Path

from nnlab.config import Config


def check_config(config: Config, data_dir: str | Path | None = None) -> str:
    """Load the data, build and compile the model, check it against the data, and compute the
    loss and metrics on two real rows.

    Args:
        config: a config that passed the schema.
        data_dir: a folder of downloaded dataset files.

    Returns:
        One line describing what was checked (dataset shape, parameters).

    Raises:
        NnlabError: the first problem found, with its file, line and key.
    """
    from nnlab.datasets.loading import load_dataset
    from nnlab.model import build_model, count_params
    from nnlab.training.data import prepare

    from nnlab.model import check_on_rows

    dataset = load_dataset(config, data_dir)
    data = prepare(config, dataset)
    model = build_model(config, data.input_shape, task=dataset.task, num_classes=dataset.num_classes)
    check_on_rows(config, model, data.x_train, data.y_train)
    return (f"{dataset.name} ({dataset.task}, {len(data.x_train)} training rows of shape "
            f"{data.input_shape}), {len(model.layers)} layers, {count_params(model):,} parameters")

"""Model building through Keras's registries, and models that do not fit their data."""

from __future__ import annotations

import pytest

from nnlab.config import config_from_text
from nnlab.errors import ConfigError
from nnlab.model import build_model

from conftest import SPIRAL


def build(text: str, input_shape=(2,), task="multiclass", classes=3):
    config = config_from_text(text, "exp.yaml")
    return build_model(config, input_shape, task=task, num_classes=classes)


def refused(text: str, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(text, **kwargs)
    return info.value


def test_layers_and_nested_objects_resolve_through_keras():
    model = build(SPIRAL)
    dense = model.layers[0]
    assert type(dense).__name__ == "Dense" and dense.units == 32
    assert type(dense.kernel_regularizer).__name__ == "L2"
    assert float(dense.kernel_regularizer.l2) == pytest.approx(0.0005)
    assert type(model.optimizer).__name__ == "SGD"
    assert float(model.optimizer.learning_rate) == pytest.approx(1.0)
    assert model.count_params() == 2 * 32 + 32 + 32 * 3 + 3


def test_any_keras_layer_with_its_own_arguments():
    text = SPIRAL.replace("""    - Dense: {units: 32, activation: relu, kernel_regularizer: {L2: {l2: 0.0005}}}
""", """    - Reshape: {target_shape: [4, 4, 1]}
    - Conv2D: {filters: 4, kernel_size: 2, padding: same, activation: relu,
               kernel_initializer: {HeNormal: {seed: 1}}}
    - MaxPooling2D: {pool_size: 2}
    - BatchNormalization
    - Dropout: {rate: 0.1}
    - Flatten
""").replace("optimizer: {name: sgd, learning_rate: 1.0}",
             "optimizer: {name: adam, learning_rate: {ExponentialDecay: "
             "{initial_learning_rate: 0.01, decay_steps: 10, decay_rate: 0.9}}}")
    model = build(text, input_shape=(16,))
    assert [type(l).__name__ for l in model.layers] == ["Reshape", "Conv2D", "MaxPooling2D",
                                                        "BatchNormalization", "Dropout", "Flatten", "Dense"]
    assert type(model.optimizer.learning_rate).__name__ != "float"


@pytest.mark.parametrize("old, new, key, words", [
    ("- Dense: {units: 3, activation: softmax}", "- Dens: {units: 3}", "model.layers.1", "did you mean 'Dense'"),
    ("activation: softmax", "activation: softmaxx", "model.layers.1.Dense.activation", "did you mean 'softmax'"),
    ("{units: 3, activation: softmax}", "{unitz: 3}", "model.layers.1.Dense.unitz", "did you mean 'units'"),
    ("{units: 3, activation: softmax}", "{units: -3}", "model.layers.1.Dense", "Keras refused"),
    ("name: sgd", "name: sgdd", "optimizer.name", "did you mean 'sgd'"),
    ("learning_rate: 1.0", "learnin_rate: 1.0", "optimizer", "learnin_rate"),
    ("loss: sparse_categorical_crossentropy", "loss: sparse_categorical_crossentropi", "loss", "did you mean"),
    ("metrics: [accuracy]", "metrics: [acuracy]", "metrics.0", "did you mean 'accuracy'"),
    ("{L2: {l2: 0.0005}}", "{L3: {l2: 0.0005}}", "model.layers.0.Dense.kernel_regularizer", "L3"),
])
def test_unknown_names_and_rejected_arguments_point_at_their_key(old, new, key, words):
    assert old in SPIRAL
    err = refused(SPIRAL.replace(old, new))
    assert err.key == key and words in str(err)
    assert err.source == "exp.yaml" and err.line is not None


def test_models_that_do_not_fit_their_data():
    err = refused(SPIRAL.replace("{units: 3, activation: softmax}", "{units: 1}"), classes=10)
    assert err.key == "model.layers.1" and "10 classes" in str(err)
    conv = SPIRAL.replace("- Dense: {units: 32", "- Conv2D: {filters: 2, kernel_size: 2}\n    - Dense: {units: 32")
    err = refused(conv, input_shape=(64,))
    assert err.key == "model.layers.0" and "Conv2D" in str(err) and "(batch, 64)" in str(err)
    err = refused(SPIRAL, task="regression")
    assert err.key == "loss" and "regression" in str(err)
    err = refused(SPIRAL.replace("sparse_categorical_crossentropy", "binary_crossentropy"))
    assert err.key == "loss" and "two classes" in str(err)

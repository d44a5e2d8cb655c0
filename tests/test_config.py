"""The config schema: what is accepted, what is refused, and how refusals read."""

from __future__ import annotations

import json

import pytest

from nnlab.config import (apply_override, config_from_text, example_names, json_schema, load_config,
                          resolve_config_path)
from nnlab.errors import ConfigError

from conftest import REPO, SPIRAL


def refuse(text: str, overrides=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_text(text, "exp.yaml", list(overrides))
    return info.value


def test_issue_example_is_accepted_and_resolved():
    config = config_from_text(SPIRAL, "exp.yaml")
    assert config.name == "tiny_spiral"
    assert config.dataset.options == {"points_per_class": 50, "classes": 3}
    assert config.model.layers[0] == {"Dense": {"units": 32, "activation": "relu",
                                                "kernel_regularizer": {"L2": {"l2": 0.0005}}}}
    assert config.training.batch_size == "full"
    assert config.optimizer.options == {"learning_rate": 1.0}
    resolved = config.to_dict()
    assert resolved["dataset"]["points_per_class"] == 50
    assert resolved["kfold"] == {"k": 4, "shuffle": False, "monitor": "val_loss", "smoothing": 0.0,
                                 "skip_first_epochs": 10, "mode": "auto", "split_seed": 0}


def test_bare_names_are_normalized_to_one_key_form():
    config = config_from_text(SPIRAL.replace("- Dense: {units: 3, activation: softmax}",
                                             "- Flatten\n    - Dense: {units: 3, activation: softmax}")
                              .replace("optimizer: {name: sgd, learning_rate: 1.0}", "optimizer: adam"), "x.yaml")
    assert config.model.layers[1] == {"Flatten": {}}
    assert config.optimizer.name == "adam" and config.optimizer.options == {}


@pytest.mark.parametrize("old, new, key, line, words", [
    ("training: {epochs: 5, batch_size: full}", "training: {epochs: 0}", "training.epochs", 11,
     "greater than or equal to 1"),
    ("training: {epochs: 5, batch_size: full}", "training: {epochs: 5, batch_size: 0}", "training.batch_size",
     11, "'full'"),
    ("training: {epochs: 5, batch_size: full}", "training: {epochs: 5, validation_split: 1.0}",
     "training.validation_split", 11, "less than 1"),
    ("training: {epochs: 5, batch_size: full}", "training: {epochs: 5, epoch: 4}", "training.epoch", 11,
     "did you mean 'epochs'"),
    ("dataset: {name: spiral, points_per_class: 50, classes: 3}", "dataset: {name: spirl}", "dataset.name", 3,
     "did you mean 'spiral'"),
    ("dataset: {name: spiral, points_per_class: 50, classes: 3}", "dataset: {name: spiral, clases: 3}",
     "dataset.clases", 3, "did you mean 'classes'"),
    ("dataset: {name: spiral, points_per_class: 50, classes: 3}", "dataset: {name: spiral, classes: many}",
     "dataset.classes", 3, "valid integer"),
    ("seed: 0", "seed: -1", "seed", 2, "greater than or equal to 0"),
    ("name: tiny_spiral", "name: ../escape", "name", 1, "letters, digits"),
    ("seed: 0", "seeed: 0", "seeed", 2, "did you mean 'seed'"),
])
def test_refusals_name_file_line_key_and_what_is_accepted(old, new, key, line, words):
    assert old in SPIRAL
    err = refuse(SPIRAL.replace(old, new))
    problems = err.problems or [err]
    match = [p for p in problems if p.key == key]
    assert match, f"no problem at {key}: {err}"
    assert match[0].source == "exp.yaml"
    assert match[0].line == line
    assert words in str(match[0])
    assert str(err).startswith("exp.yaml")


def test_both_validation_forms_are_refused_together():
    err = refuse(SPIRAL.replace("batch_size: full", "validation_split: 0.2, validation_holdout: 10"))
    assert "not both" in str(err)


def test_missing_sections_are_each_reported():
    err = refuse("name: x\n")
    text = str(err)
    for section in ("dataset", "model", "optimizer", "loss", "training"):
        assert f"{section}: required key is missing" in text


def test_empty_file_and_non_mapping_are_refused():
    assert "empty file" in str(refuse(""))
    assert "mapping" in str(refuse("- a\n- b\n"))


def test_yaml_is_read_safely():
    err = refuse(SPIRAL + "extra: !!python/object/apply:os.system ['echo hacked']\n")
    assert "not allowed" in str(err) and err.line == 12
    err = refuse(SPIRAL.replace("seed: 0", "seed: 0\nseed: 1"))
    assert "duplicate key 'seed'" in str(err) and err.line == 3


def test_overrides_apply_before_validation_and_are_recorded():
    config = config_from_text(SPIRAL, "exp.yaml", ["training.epochs=2", "model.layers.0.Dense.units=7",
                                                   "optimizer.learning_rate=0.5"])
    assert config.training.epochs == 2
    assert config.model.layers[0]["Dense"]["units"] == 7
    assert config.optimizer.options["learning_rate"] == 0.5
    assert config.overrides == ["training.epochs=2", "model.layers.0.Dense.units=7", "optimizer.learning_rate=0.5"]


def test_override_can_replace_a_subtree():
    config = config_from_text(SPIRAL, "exp.yaml", ["model.layers=[{Dense: {units: 3, activation: softmax}}]"])
    assert config.model.layers == [{"Dense": {"units": 3, "activation": "softmax"}}]


def test_bad_override_is_reported_against_the_flag():
    err = refuse(SPIRAL, ["training.epochs=0"])
    assert err.source == "--set training.epochs=0" and err.key == "training.epochs"
    with pytest.raises(ConfigError, match="not a position"):
        apply_override({"model": {"layers": [1]}}, "model.layers.3.Dense.units=2")
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "training.epochs")


def test_bare_name_resolves_to_working_directory_then_installed_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path("digits").resolve() == (REPO / "configs" / "digits.yaml").resolve()
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "digits.yaml").write_text(SPIRAL)
    assert resolve_config_path("digits") == tmp_path / "configs" / "digits.yaml"
    with pytest.raises(ConfigError, match="did you mean 'digits'"):
        resolve_config_path("digit")
    with pytest.raises(ConfigError, match="not found"):
        resolve_config_path("../etc/passwd")


def test_name_defaults_to_the_file_stem(write_config):
    path = write_config(SPIRAL.replace("name: tiny_spiral\n", ""), name="my_run.yaml")
    assert load_config(path).name == "my_run"


def test_every_example_config_passes_the_schema():
    names = example_names()
    assert {"spiral_linear", "spiral_mlp", "digits"} <= set(names)
    for name in names:
        config = load_config(name)
        assert config.name == name
        first_line = (REPO / "configs" / f"{name}.yaml").read_text().splitlines()[0]
        assert first_line.startswith("#"), f"{name}.yaml must open with a comment naming its lesson's result"


def test_schema_is_json_schema_with_every_section(cli):
    schema = json_schema()
    assert set(schema["properties"]) >= {"name", "seed", "dataset", "model", "optimizer", "loss", "metrics",
                                         "training", "kfold"}
    result = cli("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "nnlab experiment config"

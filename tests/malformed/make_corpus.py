"""Writes the corpus of malformed configs beside this file, and expected.yaml.

Each case is one mistake in an otherwise valid config; expected.yaml maps its file
to a phrase its error message must contain. Run: python tests/malformed/make_corpus.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent

BASE = """name: base
seed: 0
dataset: {name: spiral, points_per_class: 20, classes: 3}
model:
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 3, activation: softmax}
optimizer: {name: sgd, learning_rate: 0.5}
loss: sparse_categorical_crossentropy
metrics: [accuracy]
training: {epochs: 2, batch_size: 16}
"""

DIGITS = BASE.replace("{name: spiral, points_per_class: 20, classes: 3}", "{name: digits}").replace(
    "units: 3, activation: softmax", "units: 10, activation: softmax")
DIABETES = BASE.replace("{name: spiral, points_per_class: 20, classes: 3}", "{name: diabetes}").replace(
    "{units: 3, activation: softmax}", "{units: 1}").replace("sparse_categorical_crossentropy", "mse").replace(
    "[accuracy]", "[mae]")


def sub(old: str, new: str, base: str = BASE) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


CASES: dict[str, tuple[str | bytes, str]] = {
    # the file itself
    "empty": ("", "empty file"),
    "whitespace_only": ("   \n\n  \n", "empty file"),
    "comment_only": ("# nothing here\n", "empty file"),
    "top_level_list": ("- name: base\n- seed: 0\n", "mapping"),
    "top_level_string": ("just a sentence\n", "mapping"),
    "top_level_number": ("42\n", "mapping"),
    "non_utf8_bytes": (BASE.encode() + b"description: caf\xe9\n", "UTF-8"),
    "utf16_file": (BASE.encode("utf-16"), "UTF-8"),
    # YAML syntax
    "unclosed_bracket": (sub("[accuracy]", "[accuracy"), "YAML syntax error"),
    "unclosed_brace": (sub("{epochs: 2, batch_size: 16}", "{epochs: 2, batch_size: 16"), "YAML syntax error"),
    "unclosed_quote": (sub("name: base", 'name: "base'), "YAML syntax error"),
    "bad_indentation": (sub("    - Dense: {units: 3", "  - Dense: {units: 3"), "YAML syntax error"),
    "tab_indentation": (sub("    - Dense: {units: 8", "\t- Dense: {units: 8"), "tabs"),
    "two_documents": (BASE + "---\nname: second\n", "YAML syntax error"),
    "stray_colon": (sub("seed: 0", "seed: 0: 1"), "YAML syntax error"),
    "mapping_key_is_list": ("? [a, b]\n: 1\n" + BASE, "plain names"),
    # duplicate keys
    "duplicate_top_key": (sub("seed: 0", "seed: 0\nseed: 1"), "duplicate key 'seed'"),
    "duplicate_dataset_key": (sub("classes: 3}", "classes: 3, classes: 4}"), "duplicate key 'classes'"),
    "duplicate_training_key": (sub("{epochs: 2, batch_size: 16}", "{epochs: 2, epochs: 3}"), "duplicate key 'epochs'"),
    "duplicate_layer_arg": (sub("{units: 8, activation: relu}", "{units: 8, units: 9}"), "duplicate key 'units'"),
    # unsafe tags and bombs
    "python_object_apply": (BASE + "description: !!python/object/apply:os.system ['true']\n", "not allowed"),
    "python_object": (BASE + "description: !!python/object:collections.OrderedDict {}\n", "not allowed"),
    "python_name": (BASE + "description: !!python/name:os.system\n", "not allowed"),
    "python_module": (BASE + "description: !!python/module:os\n", "not allowed"),
    "python_tuple": (BASE + "description: !!python/tuple [1, 2]\n", "not allowed"),
    "binary_tag": (BASE + "description: !!binary aGVsbG8=\n", "not allowed"),
    "set_tag": (BASE + "description: !!set {a, b}\n", "not allowed"),
    "custom_tag": (BASE + "description: !shell rm -rf /\n", "not allowed"),
    "tagged_mapping": (sub("training: {epochs", "training: !!omap {epochs"), "not allowed"),
    "billion_laughs": ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       + BASE, "expands to more than"),
    # wrong types
    "epochs_string": (sub("epochs: 2", "epochs: ten"), "training.epochs"),
    "epochs_float": (sub("epochs: 2", "epochs: 2.5"), "training.epochs"),
    "epochs_list": (sub("epochs: 2", "epochs: [2]"), "training.epochs"),
    "epochs_bool": (sub("epochs: 2", "epochs: true"), "training.epochs"),
    "batch_size_string": (sub("batch_size: 16", "batch_size: big"), "training.batch_size"),
    "batch_size_float": (sub("batch_size: 16", "batch_size: 16.5"), "training.batch_size"),
    "seed_string": (sub("seed: 0", "seed: abc"), "seed"),
    "seed_float": (sub("seed: 0", "seed: 0.5"), "seed"),
    "metrics_string": (sub("metrics: [accuracy]", "metrics: accuracy"), "metrics"),
    "metrics_number": (sub("metrics: [accuracy]", "metrics: [7]"), "metrics.0"),
    "layers_mapping": (sub("  layers:\n    - Dense: {units: 8, activation: relu}\n    - Dense: {units: 3, activation: softmax}",
                           "  layers: {Dense: {units: 3}}"), "model.layers"),
    "layers_empty": (sub("  layers:\n    - Dense: {units: 8, activation: relu}\n    - Dense: {units: 3, activation: softmax}",
                         "  layers: []"), "model.layers"),
    "layer_two_keys": (sub("- Dense: {units: 8, activation: relu}", "- {Dense: {units: 8}, Dropout: {rate: 0.1}}"),
                       "model.layers.0"),
    "layer_number": (sub("- Dense: {units: 8, activation: relu}", "- 8"), "model.layers.0"),
    "layer_args_list": (sub("- Dense: {units: 8, activation: relu}", "- Dense: [8, relu]"), "model.layers.0"),
    "optimizer_number": (sub("optimizer: {name: sgd, learning_rate: 0.5}", "optimizer: 3"), "optimizer"),
    "optimizer_without_name": (sub("optimizer: {name: sgd, learning_rate: 0.5}", "optimizer: {learning_rate: 0.5}"),
                               "optimizer.name"),
    "loss_list": (sub("loss: sparse_categorical_crossentropy", "loss: [mse, mae]"), "loss"),
    "loss_number": (sub("loss: sparse_categorical_crossentropy", "loss: 1"), "loss"),
    "training_list": (sub("training: {epochs: 2, batch_size: 16}", "training: [2, 16]"), "training"),
    "dataset_string": (sub("dataset: {name: spiral, points_per_class: 20, classes: 3}", "dataset: spiral"), "dataset"),
    "dataset_option_type": (sub("classes: 3", "classes: three"), "dataset.classes"),
    "shuffle_not_bool": (sub("batch_size: 16}", "batch_size: 16, shuffle: maybe}"), "training.shuffle"),
    "kfold_k_string": (BASE + "kfold: {k: four}\n", "kfold.k"),
    "name_number_list": (sub("name: base", "name: [1, 2]"), "name"),
    "early_stopping_string": (sub("batch_size: 16}", "batch_size: 16, early_stopping: soon}"), "training.early_stopping"),
    "preprocessing_scale_string": (sub("classes: 3}", "classes: 3, preprocessing: {scale: big}}"),
                                   "dataset.preprocessing.scale"),
    "labels_unknown": (sub("classes: 3}", "classes: 3, preprocessing: {labels: words}}"), "dataset.preprocessing.labels"),
    # unknown keys at every level
    "unknown_top_key": (BASE + "epochs: 5\n", "unknown key 'epochs'"),
    "misspelled_top_key": (sub("seed: 0", "sead: 0"), "did you mean 'seed'"),
    "unknown_training_key": (sub("batch_size: 16}", "batch_size: 16, lr: 0.1}"), "unknown key 'lr'"),
    "misspelled_training_key": (sub("batch_size: 16", "batch_sise: 16"), "did you mean 'batch_size'"),
    "unknown_model_key": (sub("model:\n", "model:\n  optimizer: adam\n"), "unknown key 'optimizer'"),
    "unknown_kfold_key": (BASE + "kfold: {k: 4, folds: 3}\n", "unknown key 'folds'"),
    "unknown_early_stopping_key": (sub("batch_size: 16}", "batch_size: 16, early_stopping: {patince: 3}}"),
                                   "did you mean 'patience'"),
    "unknown_preprocessing_key": (sub("classes: 3}", "classes: 3, preprocessing: {normalise: true}}"),
                                  "unknown key 'normalise'"),
    "unknown_dataset_option": (sub("classes: 3}", "classes: 3, colour: red}"), "unknown option 'colour'"),
    "misspelled_dataset_option": (sub("points_per_class: 20", "point_per_class: 20"), "did you mean 'points_per_class'"),
    "unknown_layer_argument": (sub("{units: 8, activation: relu}", "{units: 8, activaton: relu}"),
                               "did you mean 'activation'"),
    "unknown_optimizer_argument": (sub("learning_rate: 0.5", "learning_rat: 0.5"), "learning_rat"),
    "input_shape_argument": (sub("{units: 8, activation: relu}", "{units: 8, input_shape: [2]}"),
                             "input shape comes from the data"),
    # misspelled names
    "misspelled_dataset": (sub("name: spiral", "name: spirall"), "did you mean 'spiral'"),
    "unknown_dataset": (sub("name: spiral, points_per_class: 20, classes: 3", "name: imagenet"), "unknown dataset 'imagenet'"),
    "misspelled_layer": (sub("- Dense: {units: 8", "- Dence: {units: 8"), "did you mean 'Dense'"),
    "lowercase_layer": (sub("- Dense: {units: 8", "- dense: {units: 8"), "did you mean 'Dense'"),
    "unknown_layer": (sub("- Dense: {units: 8, activation: relu}", "- Transformer: {units: 8}"), "unknown layer 'Transformer'"),
    "misspelled_optimizer": (sub("name: sgd", "name: adamm"), "did you mean 'adam'"),
    "unknown_optimizer": (sub("name: sgd", "name: newton"), "unknown optimizer 'newton'"),
    "misspelled_loss": (sub("loss: sparse_categorical_crossentropy", "loss: sparse_categorical_crossentopy"),
                        "did you mean 'sparse_categorical_crossentropy'"),
    "unknown_loss": (sub("loss: sparse_categorical_crossentropy", "loss: happiness"), "unknown loss 'happiness'"),
    "misspelled_metric": (sub("metrics: [accuracy]", "metrics: [accurracy]"), "did you mean 'accuracy'"),
    "unknown_metric_class": (sub("metrics: [accuracy]", "metrics: [{Brilliance: {}}]"), "unknown metric 'Brilliance'"),
    "misspelled_activation": (sub("activation: relu", "activation: rellu"), "did you mean 'relu'"),
    "unknown_activation": (sub("activation: relu", "activation: wiggle"), "unknown activation 'wiggle'"),
    "misspelled_regularizer": (sub("{units: 8, activation: relu}", "{units: 8, kernel_regularizer: {L3: {l2: 0.1}}}"),
                               "unknown Keras class 'L3'"),
    "misspelled_initializer": (sub("{units: 8, activation: relu}", "{units: 8, kernel_initializer: {HeNormall: {}}}"),
                               "unknown Keras class 'HeNormall'"),
    # impossible values
    "epochs_zero": (sub("epochs: 2", "epochs: 0"), "greater than or equal to 1"),
    "epochs_negative": (sub("epochs: 2", "epochs: -3"), "greater than or equal to 1"),
    "batch_size_zero": (sub("batch_size: 16", "batch_size: 0"), "training.batch_size"),
    "batch_size_negative": (sub("batch_size: 16", "batch_size: -16"), "training.batch_size"),
    "validation_split_zero": (sub("batch_size: 16}", "batch_size: 16, validation_split: 0}"), "greater than 0"),
    "validation_split_one": (sub("batch_size: 16}", "batch_size: 16, validation_split: 1}"), "less than 1"),
    "validation_split_above_one": (sub("batch_size: 16}", "batch_size: 16, validation_split: 1.5}"), "less than 1"),
    "validation_split_negative": (sub("batch_size: 16}", "batch_size: 16, validation_split: -0.2}"), "greater than 0"),
    "validation_holdout_zero": (sub("batch_size: 16}", "batch_size: 16, validation_holdout: 0}"), "greater than or equal to 1"),
    "both_validations": (sub("batch_size: 16}", "batch_size: 16, validation_split: 0.1, validation_holdout: 5}"), "not both"),
    "holdout_larger_than_data": (sub("batch_size: 16}", "batch_size: 16, validation_holdout: 5000}"), "has only 60"),
    "kfold_k_one": (BASE + "kfold: {k: 1}\n", "kfold.k"),
    "seed_negative": (sub("seed: 0", "seed: -1"), "greater than or equal to 0"),
    "patience_negative": (sub("batch_size: 16}", "batch_size: 16, early_stopping: {patience: -1}}"), "patience"),
    "scale_zero": (sub("classes: 3}", "classes: 3, preprocessing: {scale: 0}}"), "greater than 0"),
    "test_size_above_one": (DIGITS.replace("{name: digits}", "{name: digits, test_size: 1.5}"), "dataset.test_size"),
    "spiral_zero_points": (sub("points_per_class: 20", "points_per_class: 0"), "dataset.points_per_class"),
    # huge numbers
    "epochs_huge": (sub("epochs: 2", "epochs: 1000000000000"), "less than or equal to 1000000"),
    "batch_size_huge": (sub("batch_size: 16", "batch_size: 100000000000"), "training.batch_size"),
    "seed_huge": (sub("seed: 0", "seed: 18446744073709551616"), "less than or equal to 4294967295"),
    "units_huge": (sub("{units: 8, activation: relu}", "{units: 100000000000}"), "too large to allocate"),
    "points_huge": (sub("points_per_class: 20", "points_per_class: 100000000000"), "dataset.points_per_class"),
    "learning_rate_string": (sub("learning_rate: 0.5", "learning_rate: fast"), "optimizer"),
    # names that would escape the runs directory
    "name_with_slash": (sub("name: base", "name: a/b"), "letters, digits"),
    "name_dotdot": (sub("name: base", "name: .."), "name"),
    "name_parent_path": (sub("name: base", "name: ../../etc"), "letters, digits"),
    "name_absolute": (sub("name: base", "name: /tmp/x"), "letters, digits"),
    "name_backslash": (sub("name: base", "name: 'a\\\\b'"), "letters, digits"),
    "name_spaces": (sub("name: base", "name: my run"), "letters, digits"),
    "name_empty": (sub("name: base", "name: ''"), "letters, digits"),
    "name_dotdot_inside": (sub("name: base", "name: a..b"), "'..'"),
    "name_too_long": (sub("name: base", "name: " + "a" * 150), "at most 100"),
    # arguments Keras itself rejects
    "dense_units_negative": (sub("{units: 8, activation: relu}", "{units: -8}"), "Keras refused"),
    "dropout_rate_above_one": (sub("- Dense: {units: 3", "- Dropout: {rate: 2.0}\n    - Dense: {units: 3"), "Keras refused"),
    "conv_padding_unknown": (DIGITS.replace("- Dense: {units: 8, activation: relu}",
                                            "- Reshape: {target_shape: [8, 8, 1]}\n    - Conv2D: {filters: 2, kernel_size: 2, padding: sideways}\n    - Flatten"),
                             "Keras refused"),
    "optimizer_bad_momentum": (sub("learning_rate: 0.5", "learning_rate: 0.5, momentum: 5"), "Keras refused"),
    "loss_class_bad_argument": (sub("loss: sparse_categorical_crossentropy",
                                    "loss: {SparseCategoricalCrossentropy: {smoothness: 2}}"), "Keras refused"),
    # models that do not fit their data
    "dense1_sparse_ce_10_classes": (DIGITS.replace("units: 10, activation: softmax", "units: 1"), "10 classes"),
    "conv2d_on_flat_input": (sub("- Dense: {units: 8, activation: relu}", "- Conv2D: {filters: 4, kernel_size: 2}"),
                             "does not fit its input"),
    "maxpool_on_flat_input": (sub("- Dense: {units: 8, activation: relu}", "- MaxPooling2D: {pool_size: 2}"),
                              "does not fit its input"),
    "binary_loss_on_multiclass": (sub("loss: sparse_categorical_crossentropy", "loss: binary_crossentropy"),
                                  "two classes"),
    "classification_loss_on_regression": (DIABETES.replace("loss: mse", "loss: sparse_categorical_crossentropy"),
                                           "classification loss"),
    "categorical_ce_wrong_units": (sub("units: 3, activation: softmax", "units: 4, activation: softmax",
                                       sub("loss: sparse_categorical_crossentropy", "loss: categorical_crossentropy")),
                                   "3 classes"),
    "output_not_a_vector": (DIGITS.replace("- Dense: {units: 8, activation: relu}\n    - Dense: {units: 10, activation: softmax}",
                                           "- Reshape: {target_shape: [8, 8, 1]}\n    - Conv2D: {filters: 10, kernel_size: 2}"),
                            "one vector per example"),
    "reshape_wrong_size": (sub("- Dense: {units: 8, activation: relu}", "- Reshape: {target_shape: [3, 3]}"),
                           "does not fit its input"),
    # data files that are not there
    "csv_missing_file": (sub("{name: spiral, points_per_class: 20, classes: 3}",
                             "{name: csv, path: no_such_file.csv, target: y}"), "file not found"),
    "npz_missing_file": (sub("{name: spiral, points_per_class: 20, classes: 3}", "{name: npz, path: nothing.npz}"),
                         "file not found"),
    "csv_missing_target": (sub("{name: spiral, points_per_class: 20, classes: 3}", "{name: csv, path: data.csv}"),
                           "dataset.target"),
    # nesting deeper than a config can mean (PyYAML's composer would exhaust Python's stack)
    "deep_flow_lists": (sub("optimizer: {name: sgd, learning_rate: 0.5}",
                            "optimizer: {name: sgd, learning_rate: " + "[" * 5000 + "]" * 5000 + "}"),
                        "nested more than 64 levels"),
    "deep_flow_mappings": (sub("metrics: [accuracy]", "metrics: " + "{a: " * 3000 + "1" + "}" * 3000),
                           "nested more than 64 levels"),
    "deep_block_mappings": (BASE + "extra:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(400)),
                            "nested more than 64 levels"),
    "deep_block_lists": (BASE + "extra:\n" + "".join("  " * i + "- \n" for i in range(1, 400)),
                         "nested more than 64 levels"),
    "deep_layer_argument": (sub("{units: 8, activation: relu}", "{units: " + "[" * 70 + "8" + "]" * 70 + "}"),
                            "nested more than 64 levels"),
    "unclosed_deep_brackets": (sub("metrics: [accuracy]", "metrics: " + "[" * 4000), "nested more than 64 levels"),
}

#: Data files that cannot be right (tests/malformed/data/), each refused at load with the phrase below.
#: The arrays of an npz, or the text of a csv.
DATA: dict[str, tuple[dict[str, Any] | str, str]] = {
    "nan_features.npz": ({"x": [[1.0, 2.0], [float("nan"), 1.0], [0.0, 1.0]], "y": [0, 1, 0]},
                         "array 'x' holds nan at row 1, column 0"),
    "inf_targets.npz": ({"x": [[1.0], [2.0], [3.0]], "y": [0.5, float("inf"), 1.0]}, "array 'y' holds inf at row 1"),
    "string_features.npz": ({"x": [["a", "b"], ["c", "d"]], "y": [0, 1]}, "holds strings"),
    "test_rows_other_shape.npz": ({"x": [[1.0, 2.0, 3.0]] * 4, "y": [0, 1, 0, 1], "x_test": [[1.0] * 5] * 2,
                                   "y_test": [0, 1]}, "'x_test' rows have shape (5,)"),
    "test_lengths_differ.npz": ({"x": [[1.0, 2.0]] * 4, "y": [0, 1, 0, 1], "x_test": [[1.0, 2.0]] * 2,
                                 "y_test": [0, 1, 0]}, "'x_test' has 2 rows but 'y_test' has 3"),
    "test_without_targets.npz": ({"x": [[1.0, 2.0]] * 4, "y": [0, 1, 0, 1], "x_test": [[1.0, 2.0]] * 2},
                                 "no 'y_test'"),
    "scalar_features.npz": ({"x": 1.0, "y": [0, 1, 0, 1]}, "is a single value"),
    "nan_cell.csv": ("a,b,y\n1,2,0\n1,nan,1\n3,4,0\n", "column 'b' holds 'nan'"),
    "overflowing_cell.csv": ("a,b,y\n1,2,0\n1e999,2,1\n3,4,0\n", "holds '1e999'"),
    "infinite_target.csv": ("a,b,y\n1,2,0.5\n1,2,-inf\n3,4,1.5\n", "the target column 'y' holds '-inf'"),
}
for _file, (_content, _phrase) in DATA.items():
    _dataset = ("{name: npz, path: data/" + _file + "}" if _file.endswith(".npz")
                else "{name: csv, path: data/" + _file + ", target: y}")
    CASES["data_" + _file.replace(".", "_")] = (sub("{name: spiral, points_per_class: 20, classes: 3}", _dataset),
                                                _phrase)


def write_data(folder: Path) -> None:
    """Write :data:`DATA`'s files into ``folder``."""
    import numpy as np

    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, (content, _) in DATA.items():
        if isinstance(content, str):
            (folder / name).write_text(content, encoding="utf-8")
        else:
            np.savez(folder / name, **{key: np.asarray(value) for key, value in content.items()})


def main() -> None:
    for old in HERE.glob("*.yaml"):
        if old.name != "expected.yaml":
            old.unlink()
    write_data(HERE / "data")
    expected = {}
    for i, (name, (content, phrase)) in enumerate(CASES.items(), start=1):
        file = HERE / f"{i:03d}_{name}.yaml"
        if isinstance(content, bytes):
            file.write_bytes(content)
        else:
            file.write_text(content, encoding="utf-8")
        expected[file.name] = phrase
    (HERE / "expected.yaml").write_text(yaml.safe_dump(expected, sort_keys=True, allow_unicode=True))
    print(f"{len(expected)} malformed configs")


if __name__ == "__main__":
    main()

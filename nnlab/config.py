"""The experiment config: its schema, reading it from YAML, and command-line overrides.

A config is validated completely before anything trains: the schema here
(pydantic), then the Keras names (see :mod:`nnlab.keras_objects`), then the model
against its data (see :mod:`nnlab.model`). Every refusal names the file, the line
and the key.
"""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from nnlab.errors import ConfigError
from nnlab.suggestions import unknown_name_message
from nnlab.yamlfile import YamlDocument, parse_yaml, read_yaml_file

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
MAX_EPOCHS = 1_000_000
MAX_BATCH = 10_000_000
MAX_STEPS_PER_EXECUTION = 100_000
#: ``training.steps_per_execution: auto``: enough steps per call that Python's share of a step vanishes.
AUTO_STEPS_PER_EXECUTION = 128


class Strict(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Preprocessing(Strict):
    """What is done to the arrays between loading and training.

    Anything fitted (standardization) learns from the training rows only.
    """

    scale: Annotated[float, Field(gt=0)] | None = Field(
        None, description="divide inputs by this number (255 for 8-bit images)")
    standardize: bool = Field(False, description="zero mean, unit variance per feature, "
                                                 "with statistics of the training rows only")
    flatten: bool = Field(False, description="reshape each example to one vector")
    channel_axis: bool = Field(False, description="append a channel axis (28x28 -> 28x28x1) for Conv2D")
    multi_hot: bool = Field(False, description="word-index sequences (imdb, reuters) to 0/1 vectors as wide as "
                                               "the vocabulary (num_words), stored as uint8")
    labels: Literal["auto", "integer", "onehot"] = Field(
        "auto", description="auto: one-hot for categorical_crossentropy, integers otherwise")


class DatasetConfig(BaseModel):
    """``dataset``: a registered name, its loader options, and preprocessing."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: str = Field(description="a registered dataset (see `nnlab datasets`)")
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)

    @property
    def options(self) -> dict[str, Any]:
        """The loader options: every key besides name and preprocessing."""
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _known_dataset_and_options(self) -> "DatasetConfig":
        from nnlab import datasets

        try:
            spec = datasets.get(self.name)
        except KeyError as err:
            raise _located(("name",), err.args[0]) from None
        try:
            spec.options_model.model_validate(self.options)
        except pydantic.ValidationError as err:
            first = err.errors()[0]
            loc = tuple(first["loc"])
            if first["type"] == "extra_forbidden":

                accepted = [*spec.options, "preprocessing"]
                message = unknown_name_message("option", loc[0], accepted, of=f"of dataset '{self.name}'")
            else:
                message = _friendly(first)
            raise _located(loc[:1], message) from None
        return self


class EarlyStopping(Strict):
    """``training.early_stopping``: Keras's EarlyStopping callback."""

    monitor: str = "val_loss"
    patience: Annotated[int, Field(ge=0)] = 5
    min_delta: Annotated[float, Field(ge=0)] = 0.0
    restore_best_weights: bool = True
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="whether the monitor should fall (min) or rise (max); auto: Keras asks the metric")


class Training(Strict):
    """``training``: how model.fit is called."""

    epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)]
    batch_size: Union[Annotated[int, Field(ge=1, le=MAX_BATCH)], Literal["full"]] = Field(
        32, description="examples per step, or 'full' for full-batch gradient descent")
    validation_split: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="fraction of the training part held out for validation, taken from its end "
                          "(as Keras's validation_split does)")
    validation_holdout: Annotated[int, Field(ge=1)] | None = Field(
        None, description="number of training examples held out for validation, taken from its front "
                          "(as the lesson listings do)")
    shuffle: bool = True
    early_stopping: EarlyStopping | None = None
    tensorboard: bool = Field(False, description="write TensorBoard logs into the run folder")
    # Performance levers (bench/ measures them; BENCHMARKS.md has the figures). None changes what is
    # computed beyond floating-point rounding and the order of the shuffled batches.
    input_pipeline: Literal["auto", "fused", "tf_data", "device", "arrays"] = Field(
        "auto", description="how the arrays reach training and evaluation: fused, the arrays made device tensors "
                            "once and many epochs (with their validation) run in one compiled call, about a "
                            "second's worth, their logs replayed to the callbacks (TensorFlow, JAX); tf_data, a "
                            "tf.data pipeline over tensors made once, one epoch per fit call (TensorFlow); "
                            "device, the arrays put on the device once and each epoch one compiled call (JAX); "
                            "arrays, Keras's own path for NumPy arrays; auto: fused on TensorFlow and JAX "
                            "(arrays on JAX when jit_compile is false or the arrays would not fit the device's "
                            "memory), arrays on PyTorch")
    steps_per_execution: Union[Annotated[int, Field(ge=1, le=MAX_STEPS_PER_EXECUTION)], Literal["auto"]] = Field(
        "auto", description="training steps run in one call into the backend: fewer round trips through "
                            "Python; per-batch callbacks and Ctrl-C are seen between calls; auto: "
                            f"{AUTO_STEPS_PER_EXECUTION} (1 on PyTorch, which runs one step per call)")
    jit_compile: Union[bool, Literal["auto"]] = Field(
        "auto", description="compile the training step with XLA (TensorFlow, JAX) or torch.compile (PyTorch); "
                            "auto: Keras's choice (JAX: on; TensorFlow: on a GPU when deterministic is off; "
                            "PyTorch: off)")
    deterministic: bool = Field(
        True, description="TensorFlow's op determinism: the same numbers on every run of a config; free on a "
                          "CPU, costs speed on a GPU, and keeps XLA (jit_compile) off")

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size(cls, value: Any) -> Any:
        if value == "full" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_BATCH):
            return value
        raise ValueError(f"must be a whole number from 1 to {MAX_BATCH} or 'full' (got {value!r})")

    @field_validator("steps_per_execution", mode="before")
    @classmethod
    def _steps_per_execution(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                               and 1 <= value <= MAX_STEPS_PER_EXECUTION):
            return value
        raise ValueError(f"must be a whole number from 1 to {MAX_STEPS_PER_EXECUTION} or 'auto' (got {value!r})")

    @field_validator("jit_compile", mode="before")
    @classmethod
    def _jit_compile(cls, value: Any) -> Any:
        if isinstance(value, bool) or value == "auto":
            return value
        raise ValueError(f"must be true, false or auto (got {value!r})")

    @model_validator(mode="after")
    def _one_validation(self) -> "Training":
        if self.validation_split is not None and self.validation_holdout is not None:
            raise _located(("validation_holdout",),
                           "give validation_split or validation_holdout, not both")
        return self


class KFold(Strict):
    """``kfold``: k-fold cross-validation (``nnlab kfold``)."""

    k: Annotated[int, Field(ge=2, le=1000)] = 4
    shuffle: bool = False
    split_seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = Field(
        0, description="seed of the shuffle that cuts the folds (with shuffle: true); fixed apart from the "
                       "config's seed, so repeats with other seeds validate on the same folds")
    monitor: str = Field("val_loss", description="the averaged validation curve the best epoch is read "
                                                 "from, e.g. val_loss or val_mae")
    smoothing: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="exponential moving average factor applied to that curve before the best epoch "
                         "is picked (the lesson uses 0.9); 0 picks from the raw curve")
    skip_first_epochs: Annotated[int, Field(ge=0)] = Field(
        10, description="epochs left out of the second k-fold plot (their scale hides the rest)")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="whether the best epoch has the lowest (min) or highest (max) monitor; auto: "
                            "Keras's metric says, else its name (see nnlab.metric_names)")

    @field_validator("monitor")
    @classmethod
    def _validation_metric(cls, value: str) -> str:
        if not re.match(r"^val_\w+$", value):
            raise ValueError(f"must name a validation metric such as val_loss or val_mae (got {value!r})")
        return value


class RandomSearch(Strict):
    """``sweep.random``: N trials with parameters drawn from distributions."""

    n: Annotated[int, Field(ge=1, le=100_000)]
    params: dict[str, Any] = Field(description="dotted key -> 'uniform(a, b)', 'loguniform(a, b)', "
                                               "'randint(a, b)' or 'choice(v1, v2, ...)'")


class Search(Strict):
    """``sweep.search``: a model-based search (``nnlab sweep --search``): Optuna proposes each trial from the
    ones before, and a pruner may stop unpromising trials early."""

    method: str = Field("tpe", description="tpe: Optuna's TPE sampler, seeded by the config's seed")
    trials: Annotated[int, Field(ge=1, le=100_000)] = Field(description="how many trials to run")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="dotted key -> 'uniform(a, b)', 'loguniform(a, b)', 'randint(a, b)' "
                                               "or 'choice(v1, v2, ...)' (or --param)")
    pruner: str | None = Field(None, description="median, asha or hyperband: stop unpromising trials early on "
                                                 "their validation metric")
    max_epochs_total: Annotated[int, Field(ge=1)] | None = Field(
        None, description="start no trial once the trials have trained this many epochs in all")
    timeout: Annotated[float, Field(gt=0)] | None = Field(None, description="start no trial after this many seconds")


class Sweep(Strict):
    """``sweep``: a grid (and/or random draws) of variations of this config (``nnlab sweep``)."""

    grid: dict[str, list[Any]] = Field(default_factory=dict,
                                       description="dotted key -> list of values; every combination is a trial")
    variants: list[dict[str, Any]] = Field(
        default_factory=list, description="a list of variations, each a mapping of dotted keys to values "
                                          "({} is the config as it is); one trial per variant (times the grid)")
    random: RandomSearch | None = None
    search: Search | None = None
    metric: str | None = Field(None, description="what ranks the trials, e.g. val_accuracy or test_loss "
                                                 "(default: val_loss, or test_loss without validation)")
    kfold: bool = Field(False, description="run every trial as a k-fold validation")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="whether the best trial has the lowest (min) or highest (max) metric; auto: "
                            "Keras's metric says, else its name (see nnlab.metric_names)")


class ModelConfig(Strict):
    """``model``: the layer stack; the input shape comes from the data."""

    layers: list[Any] = Field(min_length=1, description="Keras layers in one-key form: "
                                                        "`- Dense: {units: 16, activation: relu}`")

    @field_validator("layers")
    @classmethod
    def _one_key_layers(cls, layers: list[Any]) -> list[dict[str, dict[str, Any]]]:
        normalized = []
        for i, layer in enumerate(layers):
            try:
                normalized.append(one_key(layer, "layer"))
            except ValueError as err:
                raise _located((i,), str(err)) from None
        return normalized


class OptimizerConfig(BaseModel):
    """``optimizer``: a Keras optimizer name plus its keyword arguments."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def options(self) -> dict[str, Any]:
        """Keyword arguments for the optimizer (learning_rate, momentum, ...)."""
        return dict(self.model_extra or {})


class Tracking(Strict):
    """``tracking``: where runs are logged besides their folder (``--mlflow`` overrides it)."""

    mlflow: str | None = Field(None, description="an MLflow tracking URI (http://127.0.0.1:5000, sqlite:///mlflow.db, "
                                                 "a folder); needs pip install 'nnlab[mlflow]'")
    experiment: str | None = Field(None, description="the MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, "
                                                     "else nnlab)")


class Config(Strict):
    """A whole experiment."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        description="names the run folder: letters, digits, '_', '-', '.'")
    description: str | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    backend: Literal["tensorflow", "jax", "torch"] = Field(
        "tensorflow", description="the Keras backend that trains (`--backend` overrides it); jax and torch need "
                                  "their package installed; a visible GPU is used by each")
    dataset: DatasetConfig
    model: ModelConfig
    optimizer: OptimizerConfig
    loss: Any = Field(description="a Keras loss name, or one-key form with arguments")
    metrics: list[Any] = Field(default_factory=list)
    training: Training
    kfold: KFold = Field(default_factory=KFold)
    sweep: Sweep | None = None
    tracking: Tracking | None = None

    _source: str = PrivateAttr(default="<config>")
    _document: YamlDocument | None = PrivateAttr(default=None)
    _overrides: list[str] = PrivateAttr(default_factory=list)
    _base_dir: Path | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _no_dots_only(cls, name: str) -> str:
        if ".." in name:
            raise ValueError("must not contain '..'")
        return name

    @model_validator(mode="after")
    def _backend_fits_training(self) -> "Config":
        steps = self.training.steps_per_execution
        if self.backend == "torch" and steps != "auto" and steps > 1:
            raise _located(("training", "steps_per_execution"),
                           f"the torch backend runs one step per call; use 1 or auto (got {steps})")
        return self

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer_name_only(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("loss")
    @classmethod
    def _loss_form(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value
        try:
            return one_key(value, "loss")
        except ValueError as err:
            raise ValueError(f"{err}; or a name such as 'mse'") from None

    @field_validator("metrics")
    @classmethod
    def _metric_forms(cls, values: list[Any]) -> list[Any]:
        out = []
        for i, value in enumerate(values):
            if isinstance(value, str):
                out.append(value)
                continue
            try:
                out.append(one_key(value, "metric"))
            except ValueError as err:
                raise _located((i,), f"{err}; or a name such as 'accuracy'") from None
        return out

    # -- where things are ---------------------------------------------------------

    @property
    def source(self) -> str:
        """The file this config was read from (or a label)."""
        return self._source

    @property
    def overrides(self) -> list[str]:
        """The ``--set key=value`` overrides applied, in order."""
        return list(self._overrides)

    def error(self, key: tuple, message: str) -> ConfigError:
        """A ConfigError pointing at ``key`` (a path such as ``("model", "layers", 1)``)."""
        return _error_at(key, message, self._source, self._document, self._overrides)

    def with_overrides(self, overrides: list[str]) -> "Config":
        """This config's document validated again with more ``key=value`` overrides.

        Args:
            overrides: applied after the config's own (errors name them as ``--set``).

        Returns:
            The new config.
        """
        document = self._document or YamlDocument(self.to_dict(), self._source)
        return config_from_document(document, [*self._overrides, *overrides], base_dir=self._base_dir)

    def group_id(self) -> str:
        """A stable id of this config without its seed: the repeats of one experiment share it.

        The SHA-256 of the resolved config (:meth:`to_dict`, the seed and tracking left out) as canonical
        JSON, so it is the same for the same config in every process and on every machine, and
        differs when anything but the seed does.

        Returns:
            12 hex digits.
        """
        import hashlib
        import json

        # Where the run is logged changes no result: runs tracked or not are repeats of one config.
        data = {key: value for key, value in self.to_dict().items() if key not in ("seed", "tracking")}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved config as plain data, in the file's form."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["dataset"] = {"name": self.dataset.name, **self.dataset.options,
                           "preprocessing": self.dataset.preprocessing.model_dump(mode="json", exclude_none=True)}
        data["optimizer"] = {"name": self.optimizer.name, **self.optimizer.options}
        return data


def one_key(value: Any, what: str) -> dict[str, dict[str, Any]]:
    """Normalize ``Name`` or ``{Name: {kwargs}}`` to ``{Name: {kwargs}}``.

    Raises:
        ValueError: when the value has another form.
    """
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, dict) and len(value) == 1:
        (name, kwargs), = value.items()
        if kwargs is None:
            kwargs = {}
        if isinstance(name, str) and isinstance(kwargs, dict):
            return {name: kwargs}
    raise ValueError(f"a {what} is a class name, or a mapping of one class name to its keyword "
                     f"arguments such as `Dense: {{units: 16}}` (got {value!r})")


# -- reading ---------------------------------------------------------------------------

def resolve_config_path(name_or_path: str, cwd: Path | None = None) -> Path:
    """Find the YAML file for ``nnlab train X``.

    A path that exists is used as is. A bare name (``spiral_mlp``) means
    ``configs/<name>.yaml`` in the working directory, else the example config
    of that name installed with nnlab.

    Returns:
        The file's path.

    Raises:
        ConfigError: when nothing matches, listing the example names.
    """
    cwd = cwd or Path.cwd()
    candidate = Path(name_or_path)
    if (cwd / candidate).is_file():
        return cwd / candidate if not candidate.is_absolute() else candidate
    looks_like_path = "/" in name_or_path or "\\" in name_or_path or candidate.suffix in (".yaml", ".yml")
    if looks_like_path or ".." in name_or_path or not re.match(NAME_PATTERN, name_or_path):
        raise ConfigError("config file not found", source=name_or_path)
    for folder in (cwd / "configs", example_configs_dir()):
        for suffix in (".yaml", ".yml"):
            if folder is not None and (folder / f"{name_or_path}{suffix}").is_file():
                return folder / f"{name_or_path}{suffix}"

    raise ConfigError(unknown_name_message("config", name_or_path, example_names())
                      + "; or give the path of a YAML file", source=name_or_path)


def example_configs_dir() -> Path | None:
    """The example configs installed with nnlab (or, in a source checkout, configs/)."""
    here = Path(__file__).resolve().parent
    for folder in (here / "configs", here.parent / "configs"):
        if folder.is_dir():
            return folder
    return None


def example_names() -> list[str]:
    """Names of the example configs shipped with nnlab."""
    folder = example_configs_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder else []


def load_config(name_or_path: str | Path | dict[str, Any], overrides: list[str] = (), *,
                base_dir: Path | None = None) -> Config:
    """Read, override and validate a config.

    Args:
        name_or_path: a YAML file or the bare name of one (see :func:`resolve_config_path`), or a dict
            in the same schema (the Python API's; validated the same way, its messages naming ``<dict>``).
        overrides: ``key=value`` strings applied before validation; values are YAML.
        base_dir: folder relative dataset paths are resolved against when they do not
            exist relative to the working directory (default: the config's folder).

    Returns:
        The validated config.

    Raises:
        ConfigError: with file, line and key of every problem found.
    """
    if isinstance(name_or_path, dict):
        return config_from_document(YamlDocument(copy.deepcopy(name_or_path), "<dict>"), list(overrides),
                                    base_dir=base_dir)
    path = resolve_config_path(str(name_or_path))
    document = read_yaml_file(path)
    return config_from_document(document, overrides, base_dir=base_dir or path.parent)


def config_from_text(text: str, source: str = "<config>", overrides: list[str] = ()) -> Config:
    """Validate a config given as YAML text (for tests and programmatic use)."""
    return config_from_document(parse_yaml(text, source), overrides)


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a config given as plain data."""
    return config_from_document(YamlDocument(copy.deepcopy(data), source), [])


def config_from_document(document: YamlDocument, overrides: list[str] = (),
                         base_dir: Path | None = None) -> Config:
    """Apply overrides to a parsed YAML document and validate it."""
    source = document.source
    data = document.data
    if data is None:
        raise ConfigError("empty file: a config is a mapping with at least name, dataset, model, "
                          "optimizer, loss and training", source=source)
    if not isinstance(data, dict):
        raise ConfigError(f"a config is a mapping of keys to values, got {type(data).__name__}",
                          source=source, line=document.line_of(()))
    data = copy.deepcopy(data)
    applied = []
    for override in overrides:
        apply_override(data, override)
        applied.append(override)
    if "name" not in data and source.endswith((".yaml", ".yml")):
        data["name"] = Path(source).stem
    _resolve_data_path(data, base_dir)
    try:
        config = Config.model_validate(data)
    except pydantic.ValidationError as err:
        problems = []
        seen = set()
        for item in err.errors():
            loc = tuple(item["loc"])
            message = _friendly(item)
            key = loc
            if isinstance(item.get("ctx", {}).get("error"), _LocatedError):
                located = item["ctx"]["error"]
                key, message = loc + located.loc, located.message
            key = _strip_union_tags(key)
            if (key, message) in seen:
                continue
            seen.add((key, message))
            if item["type"] == "extra_forbidden":
                message = _unknown_key_message(key)
            problems.append(_error_at(key, message, source, document, applied))
        problems = _drop_missing_explained_by_typo(problems)
        if len(problems) == 1:
            raise problems[0] from None
        raise ConfigError(f"{len(problems)} problems", source=source, problems=problems) from None
    config._source = source
    config._document = document
    config._overrides = applied
    config._base_dir = base_dir
    return config


def _drop_missing_explained_by_typo(problems: list[ConfigError]) -> list[ConfigError]:
    """'epochs is missing' says nothing new beside "unknown key 'epoch'; did you mean 'epochs'?"."""
    suggested = set()
    for p in problems:
        match = re.search(r"did you mean '([^']+)'", p.message)
        if match and p.key:
            suggested.add(p.key.rsplit(".", 1)[0] + "." + match.group(1) if "." in p.key else match.group(1))
    return [p for p in problems if not (p.message == "required key is missing" and p.key in suggested)]


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set ``a.b.0.c=value`` in ``data`` in place; the value is read as YAML.

    Raises:
        ConfigError: when the override is not ``key=value`` or its path does not fit the data.
    """
    from nnlab.redaction import register_overrides

    register_overrides([override])
    source = set_source(override)
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("expected key=value with a dotted key, e.g. training.epochs=5", source=source)
    value = parse_yaml(raw, source).data if raw.strip() else None
    set_dotted(data, key, value, source)


def set_source(override: str, most: int = 80) -> str:
    """How messages name a ``--set`` override: the flag and its text, cut to ``most`` characters."""
    from nnlab.redaction import redact

    override = redact(override)
    shown = override if len(override) <= most else override[:most - 3] + "..."
    return f"--set {shown}"


def set_dotted(data: dict[str, Any], key: str, value: Any, source: str = "") -> None:
    """Set the value at a dotted key path (``model.layers.1.Dense.units``) in place.

    Raises:
        ConfigError: when the path does not fit the data (a list position out of range), or is
            deeper than a config nests (:data:`nnlab.store.folder.MAX_NESTING`).
    """
    from nnlab.store.folder import MAX_NESTING

    parts = key.split(".")
    if len(parts) > MAX_NESTING:
        raise ConfigError(f"the key has {len(parts)} parts; a config nests at most {MAX_NESTING} levels",
                          source=source)
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise ConfigError(f"'{'.'.join(parts[:depth])}' is a list of {len(node)} items; "
                                  f"'{part}' is not a position in it (0 to {len(node) - 1})", source=source)
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError(f"'{'.'.join(parts[:depth])}' is a single value, it has no key '{part}'",
                              source=source)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a config, for editors."""
    schema = Config.model_json_schema()
    schema["title"] = "nnlab experiment config"
    return schema


# -- error reporting -----------------------------------------------------------------------

class _LocatedError(ValueError):
    """A validator's error about a key below the field it validates."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


def _located(loc: tuple, message: str) -> _LocatedError:
    return _LocatedError(tuple(loc), message)


def _strip_union_tags(loc: tuple) -> tuple:
    # pydantic adds the union member it tried ("int", "constrained-int", "function-after[...]").
    return tuple(p for p in loc if not (isinstance(p, str) and (
        p in ("int", "float", "str", "bool", "constrained-int", "constrained-float", "literal['full']",
              "none", "list[any]")
        or p.startswith(("function-", "literal[", "constrained-", "union[", "EarlyStopping")))))


def _friendly(item: dict[str, Any]) -> str:
    kind = item["type"]
    value = item.get("input")
    message = item["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        return (f"'{value}' is not accepted: use letters, digits, '_', '-' and '.' only "
                "(at most 100 characters, starting with a letter or digit)")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if kind not in ("value_error", "assertion_error") and "got" not in message:
        message = f"{message[0].lower()}{message[1:]} (got {shown})"
    return message


def _unknown_key_message(loc: tuple) -> str:
    fields = _fields_at(loc[:-1])
    if not fields:
        return f"unknown key '{loc[-1]}'"
    # A key of a section given one level too far out (outdented) belongs to that section.
    parents = [f for f in fields if loc[-1] in _fields_at((*loc[:-1], f))]
    if parents:
        where = ".".join(str(p) for p in (*loc[:-1], parents[0]))
        return (f"unknown key '{loc[-1]}' here; did you mean {where}.{loc[-1]}? (check its indentation: it "
                f"belongs under {parents[0]})")
    return unknown_name_message("key", loc[-1], fields)


def _fields_at(loc: tuple) -> list[str]:
    model: Any = Config
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = _unwrap(model.model_fields[part].annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    for arg in typing.get_args(annotation) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def _error_at(key: tuple, message: str, source: str, document: YamlDocument | None,
              overrides: list[str]) -> ConfigError:
    dotted = ".".join(str(k) for k in key)
    line = document.line_of(key) if document is not None else None
    for override in reversed(overrides):
        set_key = override.partition("=")[0].strip()
        if dotted == set_key or dotted.startswith(set_key + "."):
            return ConfigError(message, source=set_source(override), key=dotted or None)
        if set_key.startswith(dotted + "."):  # the override changed something inside this key
            return ConfigError(f"{message} (after --set {override})", source=source, line=line,
                               key=dotted or None)
    return ConfigError(message, source=source, line=line, key=dotted or None)


def _resolve_data_path(data: dict[str, Any], base_dir: Path | None) -> None:
    dataset = data.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("path"), str) or base_dir is None:
        return
    path = Path(dataset["path"]).expanduser()
    if not path.is_absolute() and not path.exists() and (base_dir / path).exists():
        dataset["path"] = str(base_dir / path)

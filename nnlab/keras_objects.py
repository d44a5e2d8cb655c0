"""Keras objects from their config form, through Keras's own registries.

A config names Keras classes in one-key form: ``Dense: {units: 16}``, and nested
objects the same way: ``kernel_regularizer: {L2: {l2: 0.0005}}``. This module turns
that form into Keras's serialization format and lets Keras build the objects
(``keras.layers.deserialize``, ``keras.optimizers.get``, ``keras.losses.get``,
``keras.metrics.get``); it keeps no table of names of its own. Any problem becomes a
ConfigError that points at the config key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnlab.backend import keras
from nnlab.config import Config
from nnlab.suggestions import unknown_name_message

# Where a nested class name is looked for, by the keyword it is given to.
_NESTED_MODULES = {
    "regularizer": "regularizers", "initializer": "initializers", "constraint": "constraints",
    "learning_rate": "optimizers.schedules", "layer": "layers", "activation": "layers",
}
_ALL_NESTED = ["regularizers", "initializers", "constraints", "optimizers.schedules", "layers", "metrics",
               "losses"]


@dataclass
class KerasObjects:
    """What compile and the model need, built from a config."""

    layers: list[Any]
    optimizer: Any
    loss: Any
    metrics: list[Any]


def build_objects(config: Config) -> KerasObjects:
    """Build fresh layers, optimizer, loss and metrics for ``config``.

    Returns:
        The Keras objects (layers not yet connected to an input).

    Raises:
        ConfigError: naming the key and line of the first name or argument Keras refuses.
    """
    layers = [layer(spec, config, ("model", "layers", i)) for i, spec in enumerate(config.model.layers)]
    return KerasObjects(layers=layers, optimizer=optimizer(config), loss=loss(config.loss, config),
                        metrics=[metric(m, config, ("metrics", i)) for i, m in enumerate(config.metrics)])


def layer(spec: dict[str, dict[str, Any]], config: Config, key: tuple) -> Any:
    """One Keras layer from ``{ClassName: kwargs}``."""
    k = keras()
    (name, kwargs), = spec.items()
    known = public_names(k.layers, k.layers.Layer)
    custom = custom_layers()
    if name not in known and name not in custom:
        raise config.error(key, unknown_name_message("layer", name, known + sorted(custom)) +
                           "; layers are Keras class names (keras.io/api/layers), or classes registered "
                           "with keras.saving.register_keras_serializable in a --plugin module")
    cls = custom.get(name) or getattr(k.layers, name)
    _check_arguments(cls, kwargs, config, key + (name,))
    _check_activations(kwargs, config, key + (name,))
    arguments = _nested(kwargs, config, key + (name,))
    try:
        if name in custom:
            return cls.from_config(arguments)
        return k.layers.deserialize({"module": "keras.layers", "class_name": name, "config": arguments})
    except Exception as err:  # Keras raises TypeError/ValueError of many shapes here
        raise config.error(key + (name,), f"Keras refused the arguments of {name}: {keras_reason(err)}") from None


def optimizer(config: Config) -> Any:
    """The Keras optimizer named by ``config.optimizer``."""
    k = keras()
    name, options = config.optimizer.name, config.optimizer.options
    classes = public_names(k.optimizers, k.optimizers.Optimizer)
    lookup = {n.lower(): n for n in classes}
    if name.lower() not in lookup:
        raise config.error(("optimizer", "name"), unknown_name_message(
            "optimizer", name, sorted(n.lower() for n in classes)))
    keras_config = {"class_name": lookup[name.lower()], "config": _nested(options, config, ("optimizer",))}
    try:
        return k.optimizers.get(keras_config)
    except Exception as err:
        raise config.error(("optimizer",), f"Keras refused the optimizer's arguments: {keras_reason(err)}") from None


def loss(value: Any, config: Config) -> Any:
    """The Keras loss for ``config.loss`` (a name, or one-key form with arguments)."""
    k = keras()
    if isinstance(value, str):
        try:
            return k.losses.get(value)
        except Exception:
            raise config.error(("loss",), unknown_name_message("loss", value, loss_names())) from None
    (name, kwargs), = value.items()
    try:
        return k.losses.deserialize({"module": "keras.losses", "class_name": name,
                                     "config": _nested(kwargs, config, ("loss", name))})
    except Exception as err:
        if name not in public_names(k.losses, k.losses.Loss):
            raise config.error(("loss",), unknown_name_message(
                "loss", name, public_names(k.losses, k.losses.Loss))) from None
        raise config.error(("loss", name), f"Keras refused the loss's arguments: {keras_reason(err)}") from None


def metric(value: Any, config: Config, key: tuple) -> Any:
    """A metric for compile: names stay names (so Keras picks the right accuracy), classes are built."""
    k = keras()
    if isinstance(value, str):
        try:
            k.metrics.get(value)
        except Exception:
            raise config.error(key, unknown_name_message("metric", value, metric_names())) from None
        return value
    (name, kwargs), = value.items()
    if name not in public_names(k.metrics, k.metrics.Metric):
        raise config.error(key, unknown_name_message("metric", name, public_names(k.metrics, k.metrics.Metric)))
    try:
        return k.metrics.deserialize({"module": "keras.metrics", "class_name": name,
                                      "config": _nested(kwargs, config, key + (name,))})
    except Exception as err:
        raise config.error(key + (name,), f"Keras refused the metric's arguments: {keras_reason(err)}") from None


def custom_layers() -> dict[str, type]:
    """Layer classes registered with ``keras.saving.register_keras_serializable`` (by ``--plugin`` modules)."""
    k = keras()
    found = {}
    for registered, obj in k.saving.get_custom_objects().items():
        if isinstance(obj, type) and issubclass(obj, k.layers.Layer):
            found[registered.split(">")[-1]] = obj
    return found


def public_names(module: Any, base: type) -> list[str]:
    """Public class names in a Keras API module that subclass ``base``."""
    return sorted(n for n in dir(module) if not n.startswith("_") and isinstance(getattr(module, n), type)
                  and issubclass(getattr(module, n), base) and getattr(module, n) is not base)


def loss_names() -> list[str]:
    """Loss function names Keras accepts as strings."""
    k = keras()
    return sorted(n for n in dir(k.losses) if not n.startswith("_") and n[0].islower()
                  and callable(getattr(k.losses, n)) and n not in ("get", "serialize", "deserialize"))


def metric_names() -> list[str]:
    """Metric function names Keras accepts as strings."""
    k = keras()
    return sorted({"accuracy", "acc", *(n for n in dir(k.metrics) if not n.startswith("_") and n[0].islower()
                                         and callable(getattr(k.metrics, n))
                                         and n not in ("get", "serialize", "deserialize"))})


def keras_reason(err: Exception) -> str:
    """The useful sentence of a Keras exception (the innermost cause, first lines only)."""
    text = str(err)
    marker = "Exception encountered: "
    if marker in text:
        text = text.split(marker, 1)[1]
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
        if str(err):
            text = str(err)
    text = " ".join(text.split())
    return text if len(text) < 400 else text[:397] + "..."


def _check_arguments(cls: type, kwargs: dict[str, Any], config: Config, key: tuple) -> None:
    """Refuse keyword arguments that no ``__init__`` along the class's hierarchy names."""
    import inspect

    accepted: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return  # cannot tell: let Keras judge
        accepted |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
    for arg in kwargs:
        if arg in ("input_shape", "input_dim", "batch_input_shape"):
            raise config.error(key + (arg,), "the input shape comes from the data; remove this argument")
        if arg not in accepted:
            raise config.error(key + (arg,), unknown_name_message("argument", arg, accepted,
                                                                  of=f"of {cls.__name__}"))


def _check_activations(kwargs: dict[str, Any], config: Config, key: tuple) -> None:
    k = keras()
    for arg, value in kwargs.items():
        if (arg == "activation" or arg.endswith("_activation")) and isinstance(value, str):
            try:
                k.activations.get(value)
            except Exception:
                names = [n for n in dir(k.activations) if not n.startswith("_") and n[0].islower()
                         and n not in ("get", "serialize", "deserialize")]
                raise config.error(key + (arg,), unknown_name_message("activation", value, names)) from None


def _nested(kwargs: dict[str, Any], config: Config, key: tuple) -> dict[str, Any]:
    """Turn one-key Keras objects inside ``kwargs`` into Keras's serialized form."""
    return {arg: _nested_value(arg, value, config, key + (arg,)) for arg, value in kwargs.items()}


def _nested_value(arg: str, value: Any, config: Config, key: tuple) -> Any:
    if not (isinstance(value, dict) and len(value) == 1):
        return value
    (name, kwargs), = value.items()
    if not (isinstance(name, str) and name[:1].isupper() and (kwargs is None or isinstance(kwargs, dict))):
        return value
    k = keras()
    preferred = [m for suffix, m in _NESTED_MODULES.items() if arg.endswith(suffix)]
    for module_name in preferred + _ALL_NESTED:
        module = k
        for part in module_name.split("."):
            module = getattr(module, part)
        if isinstance(getattr(module, name, None), type):
            return {"module": f"keras.{module_name}", "class_name": name,
                    "config": _nested(kwargs or {}, config, key + (name,))}
    wanted = preferred[0] if preferred else "a Keras module"
    raise config.error(key, f"unknown Keras class '{name}' for {arg} (looked in keras.{wanted} and "
                            f"{', '.join('keras.' + m for m in _ALL_NESTED)})")

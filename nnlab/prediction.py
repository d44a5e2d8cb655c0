"""``nnlab predict RUN``: a trained run's model applied to one test example or to your own input.

The dataset is loaded again through the run's own config.yaml and
:func:`nnlab.training.run.prepare`, so the input goes through exactly the
preprocessing the model was trained with (standardization statistics of the same
training rows included). Inputs are given in the dataset's raw form (pixel
values as the dataset stores them, words for text datasets); one example gets
the batch axis Keras needs added for it, as the lessons do by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnlab.errors import DataError, NnlabError
from nnlab.store.format import MODEL, Status
from nnlab.store.reading import read_env, read_metrics, read_run_config, resolve_run

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
TEXT_SUFFIXES = (".txt",)
#: Printed predictions of a batch input, at most.
MAX_PRINTED = 20


@dataclass
class Prediction:
    """The model's answer for one example.

    Args:
        task: binary, multiclass or regression.
        probabilities: class probabilities (classification), else None.
        value: the predicted value (regression), else None.
        true: the true class index or value, for a test example.
        class_names: a name per class.
        note: how the outputs were read (e.g. a softmax applied to logits).
    """

    task: str
    probabilities: list[float] | None = None
    value: float | list[float] | None = None
    true: Any = None
    class_names: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def predicted(self) -> int | None:
        """The predicted class index (classification)."""
        return None if self.probabilities is None else int(np.argmax(self.probabilities))

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k most probable classes with their probabilities."""
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:k]
        return [(self.class_names[i], float(self.probabilities[i])) for i in order]

    def as_dict(self, k: int) -> dict[str, Any]:
        """JSON-friendly form (``--json``)."""
        out: dict[str, Any] = {"task": self.task}
        if self.probabilities is not None:
            out["predicted"] = self.class_names[self.predicted]
            out["top"] = [{"class": name, "probability": p} for name, p in self.top(k)]
            if self.true is not None:
                out["true"] = self.class_names[self.true]
                out["right"] = self.predicted == self.true
        else:
            out["value"] = self.value
            if self.true is not None:
                out["true"] = self.true
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class PredictResult:
    """Everything ``nnlab predict`` prints: the run, the input, each example's prediction."""

    folder: Path
    source: str
    predictions: list[Prediction]
    plot: Path | None = None
    warnings: list[str] = field(default_factory=list)


def predict(arg: str, *, runs_dir: str | Path = "runs", index: int | None = None, input_file: Path | None = None,
            plot: Path | None = None, data_dir: str | Path | None = None, invert: bool = False,
            inputs: Any = None) -> PredictResult:
    """Load a run's model.keras and predict for a test example or an input file.

    Args:
        arg: a run folder, run id, unique prefix of one, or ``last``.
        runs_dir: where run ids are looked up.
        index: position of an example in the run's test set.
        input_file: a .npy/.npz array, an image file, or a text file of words.
        plot: a PNG file for the picture of the (first) example.
        data_dir: a folder of downloaded dataset files (default: the one the run recorded).
        invert: turn an image input's dark into light and back (a black digit drawn on white,
            for a model trained on white digits on black).
        inputs: an array of one example or a batch, instead of a file (the Python API's ``x``).

    Returns:
        The predictions, and warnings (an image whose polarity is the opposite of the training images').

    Raises:
        NnlabError: for a run without a model, an index out of range, or input of the wrong
            shape or kind (exit code 2; the message says what is expected).
    """
    if sum(given is not None for given in (index, input_file, inputs)) != 1:
        raise NnlabError("give either --index I (a test example) or --input FILE", source="nnlab predict")
    if plot is not None and Path(plot).suffix.lower() != ".png":
        raise NnlabError("the figure is written as PNG: give a file name ending in .png", source=f"--plot {plot}")
    folder = resolve_run(arg, runs_dir)
    model_file = folder / MODEL
    if not model_file.is_file():
        try:
            status = Status.of(read_metrics(folder).get("status"))
        except NnlabError:
            status = Status.UNREADABLE
        raise NnlabError(f"has no {MODEL} (status {status}); predict needs a completed run "
                         "(a k-fold run has one after --final)", source=str(folder))
    config, dataset, data = _data_of(folder, data_dir)
    warnings: list[str] = []
    if index is not None:
        n = len(data.x_test)
        if not 0 <= index < n:
            raise NnlabError(f"the test set of this run has {n} examples: give 0 to {n - 1}", source="--index")
        x = data.x_test[index:index + 1]  # the batch axis Keras needs, around one example
        raw = np.asarray(dataset.x_test[index:index + 1])
        truths = [_label(dataset, dataset.y_test[index])]
        source = f"test example {index}"
    else:
        if inputs is not None:
            source = f"x, an array of shape {tuple(np.shape(inputs))}"
            raw = _as_sequences(_ragged(inputs), "x") if dataset.extras.get("sequences") else \
                as_examples(np.asarray(inputs), dataset, "x")
        else:
            source = str(input_file)
            raw = read_input(Path(input_file), dataset, config)
        if invert or (input_file is not None and Path(input_file).suffix.lower() in IMAGE_SUFFIXES):
            raw, notes = _polarity(raw, dataset, invert, source)
            warnings.extend(notes)
        x = data.preprocessor.transform_x(raw)
        truths = [None] * len(raw)
    model = load_model(model_file)
    _check_model_input(model, x, dataset, source)
    outputs = np.asarray(model.predict(x, batch_size=256, verbose=0))
    predictions = [_read_output(outputs[i], dataset, truths[i]) for i in range(len(outputs))]
    written = None
    if plot is not None:
        try:
            written = _draw(plot, predictions[0], raw[0], dataset, title=f"{folder.name}: {source}")
        except OSError as err:
            raise NnlabError(f"cannot write the figure: {err.strerror or err}", source=f"--plot {plot}") from None
    return PredictResult(folder=folder, source=source, predictions=predictions, plot=written, warnings=warnings)


def _polarity(images: np.ndarray, dataset, invert: bool, source: str) -> tuple[np.ndarray, list[str]]:
    """Images inverted if asked, and a warning when their background is the opposite of the training images'.

    The background is read off the border pixels: MNIST's are black (white strokes), a digit drawn
    on paper is white. A model answers such an inverted image with confidence all the same.
    """
    images = np.asarray(images, dtype="float32")
    if not np.size(dataset.x_train) or images.ndim < 3:
        return images, []
    top = float(np.max(dataset.x_train)) or 1.0
    if invert:
        images = top - images
    trained = _border(np.asarray(dataset.x_train[:200], dtype="float32")) / top
    given = _border(images) / top
    if abs(trained - given) > 0.5:
        light = "light" if given > 0.5 else "dark"
        other = "dark" if light == "light" else "light"
        hint = "leave out --invert" if invert else "pass --invert to turn it round"
        return images, [f"{source}: its background is {light}, the training images' is {other}: the prediction "
                        f"is of an image unlike any the model saw ({hint})"]
    return images, []


def _border(images: np.ndarray) -> float:
    """The median of the images' border pixels (rows and columns at their edges)."""
    edges = np.concatenate([images[:, 0].reshape(-1), images[:, -1].reshape(-1), images[:, :, 0].reshape(-1),
                            images[:, :, -1].reshape(-1)])
    return float(np.median(edges))


def _data_of(folder: Path, data_dir):
    """The run's config, its dataset, and the data prepared as the run prepared it."""
    from nnlab.datasets.loading import load_dataset
    from nnlab.training.data import prepare

    config = read_run_config(folder)
    if data_dir is None:  # where the run found its data, if it was a data directory that is still there
        recorded = (read_env(folder).get("data") or {}).get("data_dir")
        data_dir = recorded if recorded and Path(recorded).is_dir() else None
    dataset = load_dataset(config, data_dir)
    try:
        kind = read_metrics(folder).get("kind")
    except NnlabError:
        kind = None
    if kind == "kfold":  # the final model of a k-fold run trained on the whole training part
        data = prepare(config, dataset, np.arange(len(dataset.x_train)), None)
    else:
        data = prepare(config, dataset)
    return config, dataset, data


def load_model(path: Path):
    """A run's model.keras, loaded; a damaged or foreign file is one :class:`NnlabError`, not a traceback."""
    from nnlab.backend import keras
    from nnlab.keras_objects import keras_reason

    try:
        return keras().models.load_model(path)
    except Exception as err:  # a damaged or foreign file: say so, no traceback
        raise NnlabError(f"cannot load {MODEL}: {keras_reason(err)}", source=str(path)) from None


def _label(dataset, y) -> Any:
    y = np.asarray(y)
    if dataset.task == "regression":
        return float(y.reshape(-1)[0]) if y.size == 1 else y.astype(float).tolist()
    return int(np.argmax(y)) if y.ndim >= 1 and y.size > 1 else int(y.reshape(-1)[0])


def _read_output(out: np.ndarray, dataset, true: Any) -> Prediction:
    out = np.asarray(out, dtype="float64").reshape(-1)
    if dataset.task == "regression":
        return Prediction("regression", value=float(out[0]) if out.size == 1 else out.tolist(), true=true)
    names = list(dataset.class_names or [str(i) for i in range(max(dataset.num_classes or 0, out.size, 2))])
    note = None
    if out.size == 1:  # one sigmoid unit: P(class 1)
        p1 = float(out[0])
        if not 0 <= p1 <= 1:
            p1, note = float(1 / (1 + np.exp(-p1))), "the model outputs logits; a sigmoid was applied"
        probabilities = [1 - p1, p1]
    else:
        if out.min() < 0 or out.max() > 1 or abs(out.sum() - 1) > 1e-3:
            e = np.exp(out - out.max())
            out, note = e / e.sum(), "the model outputs logits; a softmax was applied"
        probabilities = out.tolist()
    names = names + [str(i) for i in range(len(names), len(probabilities))]
    return Prediction(dataset.task, probabilities=probabilities, true=true, class_names=names, note=note)


# -- input files ----------------------------------------------------------------------------------

def read_input(path: Path, dataset, config) -> np.ndarray:
    """An input file as a batch of raw examples, shape ``(n, *dataset.input_shape)``.

    Args:
        path: a .npy or .npz array (key ``x``, or its only array), an image file, or a
            text file of words (text datasets).
        dataset: the run's dataset (its input shape and value range).
        config: the run's config.

    Returns:
        The batch.

    Raises:
        DataError: when the file cannot be read, or its shape fits neither one example nor a batch.
    """
    if not path.is_file():
        raise DataError("no such file", source=str(path))
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        array = _read_array(path)
        if dataset.extras.get("sequences"):
            return _as_sequences(array, str(path))
    elif suffix in IMAGE_SUFFIXES:
        array = _read_image(path, dataset)
    elif suffix in TEXT_SUFFIXES:
        return _read_text(path, dataset, config)  # word-index sequences have no fixed shape to check
    else:
        raise DataError(f"unknown kind of input file '{suffix}' (accepted: "
                        f"{', '.join(ARRAY_SUFFIXES + IMAGE_SUFFIXES + TEXT_SUFFIXES)})", source=str(path))
    return as_examples(array, dataset, str(path))


def as_examples(array: np.ndarray, dataset, source: str) -> np.ndarray:
    """One example or a batch, checked against the dataset's input shape, as a batch.

    Images may come in their picture shape for datasets stored flat (8x8 for the 64
    values of scikit-learn's digits).

    Raises:
        DataError: naming the shape given and the shapes accepted.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise DataError(f"holds {array.dtype} values; the model takes numbers", source=source)
    shape = tuple(dataset.input_shape)
    forms = [shape]
    image = tuple(dataset.image_shape) if dataset.image_shape else None
    if image and image != shape and int(np.prod(image)) == int(np.prod(shape)):
        forms.append(image)
    for form in forms:
        if array.shape == form:
            return array.reshape((1, *shape))
        if array.ndim == len(form) + 1 and array.shape[1:] == form and len(array) > 0:
            return array.reshape((len(array), *shape))
        if array.shape == form + (1,):  # a picture with its channel axis
            return array.reshape((1, *shape))
    accepted = " or ".join(_shape(f) for f in forms)
    batches = " or ".join(_shape(("n", *f)) for f in forms)
    raise DataError(f"input of shape {_shape(array.shape)} does not fit this run's model: it expects one example "
                    f"of shape {accepted}, or a batch of shape {batches}", source=source)


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _read_array(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return loaded
            keys = list(loaded.files)
            key = next((k for k in ("x", "x_test", "inputs") if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise DataError(f"holds arrays {', '.join(keys) or '(none)'}; name the input array 'x'",
                                source=str(path))
            return loaded[key]
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "pickled" in reason:  # numpy's guess for any file without its magic header
            reason = "not a NumPy .npy/.npz file, or one holding Python objects (refused: they could run code)"
        raise DataError(f"cannot read the array: {reason}", source=str(path)) from None


def _read_image(path: Path, dataset) -> np.ndarray:
    shape = tuple(dataset.image_shape or dataset.input_shape)
    if len(shape) < 2:
        raise DataError(f"this run's model does not take images (it takes examples of shape {_shape(shape)}); "
                        "give a .npy or .npz array", source=str(path))
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise DataError("reading image files needs Pillow (pip install pillow); or give a .npy array",
                        source=str(path)) from None
    channels = shape[2] if len(shape) == 3 else 1
    try:
        with Image.open(path) as picture:
            picture = picture.convert("L" if channels == 1 else "RGB")
            if picture.size != (shape[1], shape[0]):
                picture = picture.resize((shape[1], shape[0]))
            pixels = np.asarray(picture, dtype="float32")
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the image: {err}", source=str(path)) from None
    # An 8-bit picture is brought to the range the dataset's images are stored in (0..16 for digits).
    top = float(np.max(dataset.x_train)) if np.size(dataset.x_train) else 255.0
    top = 1.0 if top <= 1.0 else top
    pixels = pixels * (top / 255.0)
    return pixels.reshape(shape)


def _ragged(inputs: Any) -> np.ndarray:
    """A list of word-index sequences of any lengths (or one sequence) as an array :func:`_as_sequences` reads."""
    if isinstance(inputs, np.ndarray):
        return inputs
    rows = list(inputs)
    if rows and all(np.ndim(r) == 1 for r in rows):
        batch = np.empty(len(rows), dtype=object)
        batch[:] = [list(r) for r in rows]
        return batch
    return np.asarray(rows)


def _as_sequences(array: np.ndarray, source: str) -> np.ndarray:
    """Word indices for a text dataset: one sequence (1-D), rows of a 2-D array, or a ragged object array."""
    if array.dtype == object:
        rows = list(array.reshape(-1))
    elif array.dtype.kind in "iu" and array.ndim in (1, 2):
        rows = [array] if array.ndim == 1 else list(array)
    else:
        raise DataError(f"holds {array.dtype} values of shape {_shape(array.shape)}; this run's model takes "
                        "word indices: one sequence (n,) of whole numbers, or a batch (rows, n)", source=source)
    batch = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        batch[i] = [int(v) for v in np.ravel(row)]
    return batch


def _read_text(path: Path, dataset, config) -> np.ndarray:
    """A text file of words as one word-index sequence, encoded as the dataset's loader encodes
    (its word index, num_words, index_from, start and out-of-vocabulary characters)."""
    if not dataset.extras.get("sequences"):
        raise DataError(f"this run's model does not take text (it takes examples of shape "
                        f"{_shape(dataset.input_shape)}); give a .npy or .npz array", source=str(path))
    try:
        from nnlab.datasets.keras_sets import encode_words, read_word_index
    except ImportError:
        raise DataError("text input needs the word index of the Keras text datasets (imdb, reuters), which "
                        "this nnlab does not have; give a .npy array of word indices", source=str(path)) from None
    word_index = dataset.extras.get("word_index_file")
    if not word_index:
        raise DataError(f"needs the word index of '{dataset.name}' ({dataset.name}_word_index.json) beside the "
                        "data or in --data-dir, to turn the words into indices", source=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the text: {err}", source=str(path)) from None
    from nnlab.datasets.registry import get

    # The loader's own defaults, overridden by the run's config: the words are encoded as its data was.
    options = {name: p.default for name, p in get(config.dataset.name).options.items()}
    options.update(config.dataset.options)
    sequence = encode_words(text, read_word_index(word_index), num_words=options.get("num_words"),
                            index_from=options.get("index_from", 3), start_char=options.get("start_char", 1),
                            oov_char=options.get("oov_char", 2))
    batch = np.empty(1, dtype=object)  # a ragged batch of one sequence, as the dataset stores them
    batch[0] = sequence
    return batch


def _check_model_input(model: Any, x: np.ndarray, dataset, source: str) -> None:
    expected = getattr(model, "input_shape", None)
    if isinstance(expected, list):
        expected = expected[0]
    if expected is None:
        return
    want = tuple(expected[1:])
    if len(want) != x.ndim - 1 or any(w is not None and w != h for w, h in zip(want, x.shape[1:])):
        raise NnlabError(f"after preprocessing the input has shape {_shape(x.shape[1:])} but the model takes "
                         f"{_shape(want)}; give raw examples of shape {_shape(dataset.input_shape)}", source=source)


# -- the picture ----------------------------------------------------------------------------------

def _draw(path: Path, prediction: Prediction, raw: np.ndarray, dataset, title: str) -> Path:
    from nnlab import plots

    if prediction.task == "regression":
        value = prediction.value if isinstance(prediction.value, float) else float(np.ravel(prediction.value)[0])
        true = prediction.true if isinstance(prediction.true, (int, float)) else None
        return plots.regression_prediction(value, path, true=true, title=title)
    image = None
    shape = dataset.image_shape or (dataset.input_shape if len(dataset.input_shape) >= 2 else None)
    if shape is not None and int(np.prod(shape)) == raw.size:
        image = np.asarray(raw, dtype="float32").reshape(shape)
    return plots.single_prediction(np.asarray(prediction.probabilities), prediction.class_names, path,
                                   image=image, true=prediction.true, title=title)


def render(result: PredictResult, top: int, console=None) -> None:
    """Print the predictions: top classes with probabilities (or the value), and the true label."""
    from rich.console import Console
    from rich.table import Table

    from nnlab.views.style import number

    console = console or Console(highlight=False)
    for warning in result.warnings:
        Console(stderr=True, highlight=False).print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    console.print(f"run {result.folder.name}: {result.source}", soft_wrap=True)
    shown = result.predictions[:MAX_PRINTED]
    for i, p in enumerate(shown):
        prefix = f"[{i}] " if len(result.predictions) > 1 else ""
        if p.probabilities is None:
            value = p.value if isinstance(p.value, list) else number(p.value)
            line = f"{prefix}predicted value: {value}"
            if p.true is not None:
                line += f"   true value: {p.true if isinstance(p.true, list) else number(p.true)}"
            console.print(line)
            continue
        name = p.class_names[p.predicted]
        line = f"{prefix}predicted: [bold]{name}[/] ({100 * p.probabilities[p.predicted]:.1f}%)"
        if p.true is not None:
            right = p.predicted == p.true
            line += (f"   true: {p.class_names[p.true]}  "
                     + ("[blue]right[/]" if right else "[red]wrong[/]"))
        console.print(line)
        table = Table(header_style="bold", show_edge=False, box=None, pad_edge=False)
        table.add_column("class")
        table.add_column("probability", justify="right")
        for cls, prob in p.top(top):
            table.add_row(cls, number(prob))
        console.print(table)
        if p.note:
            console.print(f"[yellow]note:[/] {p.note}")
    if len(result.predictions) > len(shown):
        console.print(f"... and {len(result.predictions) - len(shown)} more examples (use --json for all)")
    if result.plot is not None:
        console.print(f"picture: {result.plot}")

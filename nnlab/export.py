"""``nnlab export RUN --format saved_model|onnx|tflite``: a run's model.keras as a model for serving.

The export goes through Keras's own ``model.export`` (``tf_saved_model``, ``onnx`` through
tf2onnx, ``litert`` through the TFLite converter), always on the TensorFlow backend: the
three formats are TensorFlow's or converted from a TensorFlow graph, and a ``.keras`` file
loads on any backend.

Every export is checked before it takes its name: it is loaded with its own runtime
(TensorFlow's ``tf.saved_model.load``, onnxruntime, the LiteRT/TFLite interpreter) and run on
the first test examples of the run's own data, prepared as :mod:`nnlab.prediction` prepares
them; its outputs must equal model.keras's within :data:`TOLERANCE`. The file (or folder) is
written under a temporary name beside its final one and renamed only when the check passed,
so a half-written or wrong export never stands under the final name.

The exported model takes what model.keras takes: inputs already preprocessed as the run's
config says (scaled, reshaped, standardized with the training rows' statistics).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nnlab.errors import NnlabError
from nnlab.store.format import CHECKPOINT, MODEL, Status
from nnlab.store.reading import read_metrics, read_run_config, resolve_run

#: The folder inside a run folder that exports go to by default.
EXPORT_FOLDER = "export"
#: How many test examples the check runs through both models.
CHECK_EXAMPLES = 10
#: The largest absolute difference between an export's outputs and model.keras's that passes.
TOLERANCE = 1e-5
#: What installs the ONNX exporter and runtime.
INSTALL_EXPORT = "pip install 'nnlab[export]'"


@dataclass(frozen=True)
class ExportFormat:
    """One format ``--format`` accepts.

    Args:
        name: the name on the command line.
        keras_format: the name ``keras.Model.export`` knows it by.
        default_name: the file (or folder) it is written to inside ``<run>/export/``.
        folder: True when the export is a folder (a SavedModel), not one file.
        runtime: what loads it for the check, as printed.
    """

    name: str
    keras_format: str
    default_name: str
    folder: bool
    runtime: str


FORMATS = {f.name: f for f in (
    ExportFormat("saved_model", "tf_saved_model", "saved_model", True, "TensorFlow (tf.saved_model.load)"),
    ExportFormat("onnx", "onnx", "model.onnx", False, "onnxruntime"),
    ExportFormat("tflite", "litert", "model.tflite", False, "the TFLite interpreter"),
)}


class ExportFailed(NnlabError):
    """The converter failed, or the export it wrote does not give model.keras's outputs (exit code 1)."""

    exit_code = 1


@dataclass
class ExportResult:
    """What ``nnlab export`` wrote and how it was checked.

    Args:
        folder: the run folder.
        format: the export format.
        path: the export written (a file, or a SavedModel's folder).
        size_bytes: its size (a folder: all its files).
        examples: how many test examples were checked (0 when the check was skipped).
        max_difference: the largest absolute difference from model.keras's outputs, or None unchecked.
        runtime: what loaded the export for the check.
        inputs: what the exported model takes, in words (its shape and the run's preprocessing).
        warnings: a skipped check, and why.
    """

    folder: Path
    format: ExportFormat
    path: Path
    size_bytes: int
    examples: int
    max_difference: float | None
    runtime: str
    inputs: str
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``--json``)."""
        return {"run": self.folder.name, "format": self.format.name, "path": str(self.path),
                "size_bytes": self.size_bytes, "checked_examples": self.examples,
                "max_difference": self.max_difference, "tolerance": TOLERANCE, "runtime": self.runtime,
                "inputs": self.inputs, "warnings": self.warnings}


def export_run(arg: str, *, fmt: str, output: str | Path | None = None, force: bool = False,
               runs_dir: str | Path = "runs", data_dir: str | Path | None = None) -> ExportResult:
    """Export a run's model.keras, check it with its own runtime, and give it its name.

    Args:
        arg: a run folder, run id, unique prefix of one, or ``last``.
        fmt: ``saved_model``, ``onnx`` or ``tflite``.
        output: where the export goes (a file, or a SavedModel's folder); an existing folder
            for onnx or tflite receives ``model.onnx`` / ``model.tflite``. Default:
            ``<run>/export/saved_model/``, ``<run>/export/model.onnx``, ``<run>/export/model.tflite``.
        force: replace an existing export there (a file, or a folder holding a SavedModel).
        runs_dir: where run ids are looked up.
        data_dir: a folder of downloaded dataset files (default: the one the run recorded).

    Returns:
        The export, its size and the check's largest difference.

    Raises:
        NnlabError: an unknown format, a run without a model, an output that exists, the
            ONNX extra not installed (exit code 2; nothing is written).
        ExportFailed: the converter failed, or the export's outputs differ from model.keras's
            by more than :data:`TOLERANCE` (exit code 1; nothing is left behind).
    """
    export_format = _format(fmt)
    folder = resolve_run(arg, runs_dir)
    model_file = exportable_model(folder)
    target = output_path(folder, export_format, output)
    _check_target(target, export_format, force)

    from nnlab.backend import keras, use_backend
    from nnlab.prediction import load_model

    use_backend("tensorflow", source="nnlab export", key=None)  # all three formats convert a TensorFlow graph
    keras()  # first, so that TensorFlow starts quietly even when tf2onnx is what imports it
    if export_format.name == "onnx":
        _require_onnx()
    model = load_model(model_file)
    examples, inputs, notes = _check_examples(folder, model, data_dir)
    # Keras exports only a model that has been called; model.keras loads uncalled.
    expected = _outputs_of(model, examples)
    partial = _partial_path(target, export_format)
    created = None
    try:
        created = _make_parent(target)
        _write(model, export_format, partial, target)
        difference = None
        if examples is not None:
            difference = _max_difference(expected, run_export(export_format, partial, examples))
            if not difference <= TOLERANCE:  # NaN fails too
                raise ExportFailed(f"the {export_format.name} export gives other outputs than {MODEL} on the first "
                                   f"{len(examples)} test examples: max |difference| {difference:.3g}, more than "
                                   f"{TOLERANCE:g}; nothing was written", source=str(target))
        _put_in_place(partial, target)
    except OSError as err:  # a read-only or full disk: one message, and nothing left behind
        raise ExportFailed(f"cannot write the export: {err.strerror or err}", source=str(target)) from None
    finally:
        _remove(partial)
        _remove_empty_folders(target.parent, created)  # the folders this call made, left empty by a failure
    return ExportResult(folder=folder, format=export_format, path=target, size_bytes=_size(target),
                        examples=0 if examples is None else len(examples), max_difference=difference,
                        runtime=export_format.runtime, inputs=inputs, warnings=notes)


def _format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise NnlabError(f"unknown export format '{name}' (accepted: {', '.join(FORMATS)})", source="--format")
    return FORMATS[name]


def exportable_model(folder: Path) -> Path:
    """The model.keras of a run that has a finished model to export.

    Args:
        folder: the run folder.

    Returns:
        Its model.keras.

    Raises:
        NnlabError: for a sweep folder, a k-fold run without ``--final``, a run that did not
            complete (failed, interrupted, diverged, still running), or one with no model.keras;
            the message says which and what would give a model.
    """
    try:
        metrics = read_metrics(folder)
    except NnlabError:
        metrics = {}
    status, kind = Status.of(metrics.get("status")), metrics.get("kind")
    model = folder / MODEL
    if kind == "sweep":
        raise NnlabError("is a sweep folder, which holds no model of its own; export one of its trials "
                         "(their run folders are listed in sweep.json)", source=str(folder))
    if kind == "kfold" and not metrics.get("final") and not model.is_file():
        raise NnlabError(f"is a k-fold run without --final: its folds' models are not kept, so it has no "
                         f"{MODEL}; run nnlab kfold CONFIG --final for a final model to export", source=str(folder))
    if status is not Status.COMPLETED and metrics:
        resume = " (nnlab train --resume RUN finishes it)" if (folder / CHECKPOINT).is_file() else ""
        raise NnlabError(f"has status {status}: only a completed run has a trained model to export{resume}",
                         source=str(folder))
    if not model.is_file():
        raise NnlabError(f"has no {MODEL} (status {status if metrics else Status.UNREADABLE}); export needs a "
                         "completed run", source=str(folder))
    return model


def output_path(folder: Path, export_format: ExportFormat, output: str | Path | None) -> Path:
    """Where the export goes: ``output``, or ``<run>/export/<default name>``.

    An existing folder given for a one-file format (onnx, tflite) receives the file under its
    default name; for a SavedModel, ``output`` is always the SavedModel's own folder.
    """
    if output is None:
        return folder / EXPORT_FOLDER / export_format.default_name
    target = Path(output)
    if not export_format.folder and target.is_dir():
        return target / export_format.default_name
    return target


def _check_target(target: Path, export_format: ExportFormat, force: bool) -> None:
    """Refuse an output that exists (unless ``force``), and anything ``force`` should not replace."""
    if not target.exists() and not target.is_symlink():
        if target.parent.exists() and not target.parent.is_dir():
            raise NnlabError(f"{target.parent} is a file, not a folder", source=f"-o {target}")
        return
    if not force:
        raise NnlabError("exists already; pass --force to replace it, or -o PATH for another place",
                         source=str(target))
    # --force replaces an export, never a folder of something else (`-o . --force` must not empty the cwd).
    if export_format.folder and not (target.is_dir() and (target / "saved_model.pb").is_file()):
        raise NnlabError("exists and is not a SavedModel folder (no saved_model.pb); --force replaces only "
                         "an earlier export", source=str(target))
    if not export_format.folder and not target.is_file():
        raise NnlabError("exists and is not a file; --force replaces only an earlier export", source=str(target))


def _require_onnx() -> None:
    """The ONNX exporter (tf2onnx, onnx) and the runtime the check loads it with (onnxruntime).

    Raises:
        NnlabError: naming the extra that installs them (exit code 2).
    """
    missing = []
    for module in ("onnx", "tf2onnx", "onnxruntime"):
        try:
            with _quiet_conversion():  # tf2onnx imports TensorFlow, whose start-up talks on stderr
                __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise NnlabError(f"the ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                         f"not installed: {INSTALL_EXPORT}", source="--format onnx")


def _check_examples(folder: Path, model: Any, data_dir) -> tuple[np.ndarray | None, str, list[str]]:
    """The first test examples of the run's own data, preprocessed as the run did, for the check.

    Returns:
        The examples (None when the data cannot be loaded here), what the model takes in
        words, and a warning when the check must be skipped.
    """
    from nnlab.prediction import _data_of

    try:
        # Keras says "Downloading data from ..." on stdout; stdout is for the export's own lines (--json).
        with contextlib.redirect_stdout(sys.stderr):
            config, _, data = _data_of(folder, data_dir)
    except NnlabError as err:  # the data is not here (offline, moved) or the run's config cannot be read
        try:
            inputs = _inputs_in_words(model, read_run_config(folder))
        except NnlabError:
            inputs = _inputs_in_words(model, None)
        return None, inputs, [f"the run's test data cannot be loaded here, so the export was not checked against "
                              f"{MODEL} (give --data-dir DIR to check it): {err}"]
    examples = np.asarray(data.x_test[:CHECK_EXAMPLES])
    inputs = _inputs_in_words(model, config)
    if not len(examples):
        return None, inputs, [f"the run has no test examples; the export was not checked against {MODEL}"]
    dtype = getattr(model.inputs[0], "dtype", None) or "float32"
    return examples.astype(dtype), inputs, []


def _inputs_in_words(model: Any, config) -> str:
    """What the exported model takes: its input shape and the preprocessing the run applied (``config``,
    None when the run's config cannot be read)."""
    shape = tuple(model.inputs[0].shape)
    shown = "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"
    if config is None:
        return f"{shown} float32, preprocessed as the run's data was"
    steps = []
    options = config.dataset.preprocessing
    if options.multi_hot:
        steps.append("word indices as 0/1 vectors")
    if options.scale:
        steps.append(f"divided by {options.scale:g}")
    if options.flatten:
        steps.append("flattened")
    if options.channel_axis:
        steps.append("with a channel axis")
    if options.standardize:
        steps.append("standardized with the training rows' mean and standard deviation (nnlab predict applies them)")
    done = "; ".join(steps) if steps else "as the dataset stores them"
    return f"{shown} float32, preprocessed as the run's {config.dataset.name} data was: {done}"


def _make_parent(target: Path) -> Path | None:
    """Create the export's parent folder if needed; returns the top folder this made, to remove on failure."""
    parent = target.parent
    missing = None
    while not parent.exists():
        missing, parent = parent, parent.parent
    if missing is not None:
        target.parent.mkdir(parents=True)
    return missing


def _remove_empty_folders(folder: Path, top: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``top`` (the first folder :func:`_make_parent` made) while empty."""
    if top is None:
        return
    while True:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        if folder == top or folder == folder.parent:
            return
        folder = folder.parent


def _partial_path(target: Path, export_format: ExportFormat) -> Path:
    """The temporary name beside ``target`` the export is written and checked under.

    It keeps ``target``'s suffix (Keras's LiteRT exporter insists on ``.tflite``).
    """
    suffix = "" if export_format.folder else (".tflite" if export_format.name == "tflite" else target.suffix)
    return target.with_name(f".{target.stem if suffix else target.name}.partial-{os.getpid()}{suffix}")


def _outputs_of(model: Any, examples: np.ndarray | None) -> np.ndarray:
    """model.keras's outputs for the check's examples (for no examples: for one batch of zeros, which
    only serves to call the model)."""
    if examples is None:
        shape = [1 if d is None else d for d in model.inputs[0].shape]
        examples = np.zeros(shape, dtype=getattr(model.inputs[0], "dtype", None) or "float32")
    return np.asarray(model.predict(examples, batch_size=len(examples), verbose=0))


def _write(model: Any, export_format: ExportFormat, path: Path, target: Path) -> None:
    """``model.export(path, format=...)``, its converters' chatter kept off the terminal.

    Raises:
        ExportFailed: with the converter's reason.
    """
    from nnlab.keras_objects import keras_reason

    try:
        with _quiet_conversion():
            model.export(str(path), format=export_format.keras_format, verbose=False)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # a layer the converter cannot express, an op TFLite lacks: say which
        raise ExportFailed(f"Keras could not export the model as {export_format.name}: {keras_reason(err)}",
                           source=str(target)) from None


def run_export(export_format: ExportFormat, path: Path, examples: np.ndarray) -> np.ndarray:
    """An export's outputs for ``examples``, computed by its own runtime.

    Args:
        export_format: the export's format.
        path: the export (a SavedModel folder, an .onnx or .tflite file).
        examples: a batch of preprocessed inputs, in the model's input dtype.

    Returns:
        The outputs, one row per example.
    """
    with _quiet_conversion():
        if export_format.name == "saved_model":
            import tensorflow as tf

            loaded = tf.saved_model.load(str(path))  # kept referenced: serve() needs its variables alive
            return _as_array(loaded.serve(tf.constant(examples)))
        if export_format.name == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            return _as_array(session.run(None, {session.get_inputs()[0].name: examples}))
        interpreter = tflite_interpreter(path)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, list(examples.shape))  # exported with a batch of any size
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, examples)
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def tflite_interpreter(path: Path) -> Any:
    """The LiteRT interpreter (the ``ai_edge_litert`` package) when installed, else TensorFlow's own
    ``tf.lite.Interpreter``, which TensorFlow deprecates in its favour."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path))


def _as_array(outputs: Any) -> np.ndarray:
    """A runtime's outputs of a one-output model as one array (runtimes wrap it in a list or dict)."""
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            return np.concatenate([np.asarray(o).reshape(len(o), -1) for o in outputs], axis=1)
        outputs = outputs[0]
    return np.asarray(outputs)


def _max_difference(expected: np.ndarray, got: np.ndarray) -> float:
    """The largest absolute difference; infinite when the shapes differ."""
    expected, got = np.asarray(expected, dtype="float64"), np.asarray(got, dtype="float64")
    if expected.size != got.size:
        return float("inf")
    return float(np.max(np.abs(expected.reshape(-1) - got.reshape(-1)))) if expected.size else 0.0


def _put_in_place(partial: Path, target: Path) -> None:
    """Rename the checked export onto its name; an earlier export there (``--force``) goes only after."""
    if partial.is_dir() and target.is_dir():  # rename() replaces files, not a folder that is not empty
        old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
        os.replace(target, old)
        os.replace(partial, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


@contextlib.contextmanager
def _quiet_conversion() -> Iterator[None]:
    """TensorFlow's converters log to file descriptor 2 from C++ (MLIR passes, the XNNPACK delegate) and
    warn about their own deprecations; none of it is for the user, whose answer is the check's figure."""
    from nnlab.backend import _quiet_stderr

    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        yield


def size_in_words(size: int) -> str:
    """A size as people read it: 812 B, 63.7 kB, 12.4 MB."""
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def render(result: ExportResult, console=None) -> None:
    """Print what was written, its size, and the check's largest difference (or why it was skipped)."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console(highlight=False)
    for warning in result.warnings:
        Console(stderr=True, highlight=False).print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    shown = f"{result.path}/" if result.format.folder else str(result.path)  # a SavedModel is a folder
    console.print(f"wrote [bold]{escape(shown)}[/] ({result.format.name}, "
                  f"{size_in_words(result.size_bytes)})", soft_wrap=True)
    if result.max_difference is not None:
        console.print(f"checked with {result.runtime} on the first {result.examples} test examples: max |difference| "
                      f"from {MODEL} {result.max_difference:.3g} (tolerance {TOLERANCE:g})", soft_wrap=True)
    console.print(f"input: {escape(result.inputs)}", soft_wrap=True)

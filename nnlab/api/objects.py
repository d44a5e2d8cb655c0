"""What the Python API returns: a run folder (:class:`Run`), repeats of one config (:class:`RunGroup`), a
report (:class:`Report`) and predictions (:class:`Predictions`).

Each reads its run folders (the files are the truth, as for the command line) and shows itself as
HTML in a notebook (``_repr_html_``, :mod:`nnlab.views.html`). Tables come as pandas DataFrames,
imported only when one is asked for (:func:`pandas`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from nnlab.errors import NnlabError

#: What installs pandas (a dependency of nnlab), named when it is missing all the same.
PANDAS_INSTALL = "pip install pandas"


def pandas(what: str = "nnlab.runs"):
    """The pandas module.

    Raises:
        NnlabError: naming what installs it, when it is not installed (an environment nnlab's own
            dependencies did not make).
    """
    try:
        import pandas
    except ImportError:
        raise NnlabError(f"tables come as pandas DataFrames, and pandas is not installed: {PANDAS_INSTALL}",
                         source=what) from None
    return pandas


def history_frame(columns: dict[str, list[float]], what: str):
    """A history (``{column: values}``, with ``epoch``) as a DataFrame indexed by epoch."""
    pd = pandas(what)
    frame = pd.DataFrame({k: v for k, v in columns.items() if k != "epoch"})
    epochs = columns.get("epoch") or list(range(1, len(frame) + 1))
    frame.index = pd.Index([int(e) for e in epochs][: len(frame)], name="epoch")
    return frame


class Run:
    """One run folder: a training run, a k-fold validation or a sweep.

    Args:
        path: the run folder.

    Attributes are read from the folder each time, so a run that is still training reads as it is now.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.path.resolve() == other.path.resolve()

    def __hash__(self) -> int:
        return hash(self.path.resolve())

    def __fspath__(self) -> str:
        return str(self.path)

    def _repr_html_(self) -> str:
        from nnlab.views.html import run_html

        return run_html(self.path)

    @property
    def run_id(self) -> str:
        """The folder's name: ``<UTC start>_<name>[_kfold|_sweep]``."""
        return self.path.name

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json: status, the train/validation/test metrics, the baseline, what ran.

        Raises:
            NnlabError: when it cannot be read.
        """
        from nnlab.store.reading import read_metrics

        return read_metrics(self.path)

    @property
    def summary(self) -> dict[str, Any]:
        """The run as one row of ``nnlab compare``: ``run_id``, ``status``, ``test_accuracy``, ``best_epoch``..."""
        from nnlab.store.reading import read_run

        return dict(read_run(self.path).fields)

    @property
    def status(self) -> str:
        """completed, running, failed, interrupted, diverged; ``lost`` for a run whose process is gone."""
        return str(self.summary.get("status"))

    @property
    def kind(self) -> str | None:
        """train, kfold or sweep."""
        return self.summary.get("kind")

    @property
    def config(self) -> dict[str, Any]:
        """The fully resolved config the run ran with (config.yaml), as a dict."""
        from nnlab.store.reading import read_config

        return read_config(self.path)

    @property
    def history(self):
        """The per-epoch history as a pandas DataFrame indexed by epoch, one column per metric
        (a k-fold run: each metric's mean and std over the folds; a sweep: empty)."""
        from nnlab.store.reading import read_history

        columns = read_history(self.path, prefer_mean=self.kind == "kfold")
        # The reader names a k-fold mean twice (val_loss_mean, and val_loss for plots): once is enough here.
        columns = {k: v for k, v in columns.items() if f"{k}_mean" not in columns}
        return history_frame(columns, "Run.history")

    @property
    def plots(self) -> list[Path]:
        """The run's pictures (learning curves first), as paths."""
        from nnlab.views.html import plot_files

        try:
            metrics = self.metrics
        except NnlabError:
            metrics = {}
        return plot_files(self.path, metrics)

    @property
    def kfold(self) -> dict[str, Any] | None:
        """A k-fold run's kfold.json (folds, mean, std, best epoch, final model); None for other runs."""
        from nnlab.store.reading import read_kfold

        return read_kfold(self.path)

    @property
    def sweep(self) -> dict[str, Any] | None:
        """A sweep folder's sweep.json (space, trials, ranking); None for other runs."""
        from nnlab.store.reading import read_sweep

        return read_sweep(self.path)

    @property
    def trials(self) -> list["Run"]:
        """A sweep's trials as runs, in trial order (those with a folder); [] for other runs."""
        sweep = self.sweep or {}
        folders = [t.get("folder") for t in sweep.get("trials") or [] if isinstance(t, dict)]
        runs = []
        for folder in folders:
            if isinstance(folder, str):
                path = Path(folder)
                if not path.is_dir():  # recorded relative to another working directory: trials sit beside
                    path = self.path.parent / path.name
                if path.is_dir():
                    runs.append(Run(path))
        return runs

    def model(self):
        """The trained Keras model (model.keras; a k-fold run has one after ``final=True``).

        Raises:
            NnlabError: when the run has no model.
        """
        from nnlab.prediction import load_model
        from nnlab.store.format import MODEL

        path = self.path / MODEL
        if not path.is_file():
            raise NnlabError(f"has no {MODEL} (status {self.status}); a completed train run has one, a k-fold "
                             "run after final=True", source=str(self.path))
        return load_model(path)

    def predict(self, x: Any, **options: Any) -> "Predictions":
        """:func:`nnlab.predict` with this run."""
        from nnlab.api import predict

        return predict(self, x, **options)


class RunGroup(Sequence[Run]):
    """Repeats of one config with different seeds (``seeds=``): the runs, and what they say together.

    Args:
        runs: the runs, in order.
        seeds: each run's seed.
        name: the config's name.
    """

    def __init__(self, runs: Sequence[Run], seeds: Sequence[int], name: str):
        self.runs, self.seeds, self.name = list(runs), list(seeds), name

    def __repr__(self) -> str:
        return f"RunGroup({self.name!r}, {len(self.runs)} runs, seeds={self.seeds})"

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index):
        return self.runs[index]

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def _metrics(self) -> list[dict[str, Any]]:
        return [r.metrics for r in self.runs]

    def _repr_html_(self) -> str:
        from nnlab.api.notebook import notebook_run
        from nnlab.views.html import group_html

        with notebook_run():  # it draws the repeats' curves with matplotlib
            return group_html(self.name, self._metrics(), [r.path for r in self.runs], self.seeds)

    @property
    def statuses(self) -> list[str]:
        """Each run's status."""
        return [r.status for r in self.runs]

    @property
    def summary(self) -> dict[str, dict[str, Any]]:
        """``{part: {metric: Description}}`` over the completed runs (:func:`nnlab.repeats.group_summary`)."""
        from nnlab.repeats import group_summary

        return group_summary([m for m in self._metrics() if m.get("status") == "completed"])

    @property
    def table(self):
        """Every metric over the completed runs as a DataFrame: one row per metric (``test_accuracy``...),
        columns mean, std, ci_low, ci_high (95% CI of the mean), min, max, n."""
        pd = pandas("RunGroup.table")
        prefixes = {"train": "train_", "validation": "val_", "test": "test_"}
        rows = {prefixes[part] + metric: {k: getattr(d, k) for k in ("mean", "std", "ci_low", "ci_high", "min",
                                                                      "max", "n")}
                for part, described in self.summary.items() for metric, d in described.items()}
        frame = pd.DataFrame.from_dict(rows, orient="index",
                                       columns=["mean", "std", "ci_low", "ci_high", "min", "max", "n"])
        frame.index.name = "metric"
        return frame


class Report:
    """An HTML report written by :func:`nnlab.report`; it shows itself inline in a notebook.

    Args:
        path: the HTML file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Report({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def _repr_html_(self) -> str:
        from nnlab.views.html import report_html

        return report_html(self.path)


class Predictions(Sequence[Any]):
    """What :func:`nnlab.predict` returns: a run's model on some examples.

    Args:
        result: the :class:`nnlab.prediction.PredictResult`.
    """

    def __init__(self, result: Any):
        self.result = result

    def __repr__(self) -> str:
        return f"Predictions({self.result.folder.name!r}, {len(self)} examples)"

    def __len__(self) -> int:
        return len(self.result.predictions)

    def __getitem__(self, index):
        return self.result.predictions[index]

    def _repr_html_(self) -> str:
        from nnlab.views.html import predictions_html

        return predictions_html(self.result)

    @property
    def warnings(self) -> list[str]:
        """Warnings about the input (an image of the opposite polarity to the training images)."""
        return list(self.result.warnings)

    @property
    def classes(self) -> list[str] | None:
        """Each example's predicted class name (classification), else None."""
        if not self.result.predictions or self.result.predictions[0].probabilities is None:
            return None
        return [p.class_names[p.predicted] for p in self.result.predictions]

    @property
    def probabilities(self):
        """Each example's class probabilities as an array ``(n, classes)`` (classification), else None."""
        import numpy as np

        if not self.result.predictions or self.result.predictions[0].probabilities is None:
            return None
        return np.asarray([p.probabilities for p in self.result.predictions])

    @property
    def values(self):
        """Each example's predicted value (regression), else None."""
        import numpy as np

        if not self.result.predictions or self.result.predictions[0].probabilities is not None:
            return None
        return np.asarray([p.value for p in self.result.predictions])

    def to_dicts(self, top: int = 5) -> list[dict[str, Any]]:
        """Each prediction as ``nnlab predict --json`` prints it."""
        return [p.as_dict(top) for p in self.result.predictions]

"""The notebook side of the API: whether we run in one, and live progress displays for it.

A notebook (Jupyter, Colab, VS Code: an IPython kernel) gets one output that is updated in
place (an IPython display handle with a progress bar per run or fold, a few updates a second at
most) instead of a printed line per epoch. Outside a kernel nothing here imports IPython: the
displays are the terminal's (:mod:`nnlab.views.progress`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Iterator

from nnlab.views.progress import STARTING, format_logs

#: At most this many updates of a display a second (a spiral trains thousands of epochs a second).
UPDATES_PER_SECOND = 4
#: The backend a notebook draws matplotlib figures with (ipykernel's default).
INLINE = "module://matplotlib_inline.backend_inline"


def in_notebook() -> bool:
    """Whether this process is a notebook's kernel: IPython imported, with a kernel behind its shell."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Live:
    """One output of the notebook, redrawn in place (at most :data:`UPDATES_PER_SECOND` times a second)."""

    def __init__(self):
        self._handle = None
        self._last = 0.0

    def show(self, html: str, *, force: bool = False) -> None:
        from IPython.display import HTML, display

        now = time.monotonic()
        if self._handle is None:
            self._handle = display(HTML(html), display_id=True)
            self._last = now
        elif force or now - self._last >= 1 / UPDATES_PER_SECOND:
            self._handle.update(HTML(html))
            self._last = now


class NotebookEpochProgress:
    """Per-epoch progress of one run in a notebook (the interface of :class:`nnlab.views.progress.EpochProgress`).

    Args:
        label: what is training (the config's name).
        total: epochs planned (None: learnt from the first report).
    """

    def __init__(self, label: str, total: int | None = None):
        self.label, self.total = label, total
        self.done, self.logs = 0, STARTING
        self._live = _Live()

    def _html(self, note: str = "") -> str:
        from nnlab.views.html import progress_html

        return progress_html([(self.label, self.done, self.total, self.logs)], note)

    def __enter__(self) -> "NotebookEpochProgress":
        self._live.show(self._html())
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        stopped = kind is not None and issubclass(kind, KeyboardInterrupt)
        self._live.show(self._html("stopped" if stopped else ""), force=True)

    def __call__(self, epoch: int, epochs: int, logs: dict[str, float], seconds: float) -> None:
        self.done, self.total, self.logs = epoch, epochs, format_logs(logs)
        self._live.show(self._html(), force=epoch == epochs)


class NotebookKFoldProgress:
    """Progress of a k-fold validation in a notebook: a bar per fold, then the final model's
    (the interface of :class:`nnlab.views.progress.KFoldProgress`)."""

    def __init__(self, label: str):
        self.label = label
        self._rows: dict[int, list] = {}
        self._k = 0
        self._live = _Live()

    def _html(self) -> str:
        from nnlab.views.html import progress_html

        rows = [tuple(r) for _, r in sorted(self._rows.items(), key=lambda item: (item[0] < 0, item[0]))]
        return progress_html(rows or [(self.label, 0, None, STARTING)])

    def __enter__(self) -> "NotebookKFoldProgress":
        self._live.show(self._html())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.show(self._html(), force=True)

    def fold_started(self, fold: int, k: int, epochs: int) -> None:
        self._k = k
        self._rows[fold] = [f"{self.label} fold {fold + 1}/{k}", 0, epochs, STARTING if not self._rows else ""]
        self._live.show(self._html(), force=True)

    def epoch(self, fold: int, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        row = self._rows.setdefault(fold, [f"{self.label} fold {fold + 1}/{self._k}", 0, epochs, ""])
        row[1:] = [epoch, epochs, format_logs(logs)]
        self._live.show(self._html(), force=epoch == epochs)

    def fold_finished(self, result: Any) -> None:
        logs = {f"val_{name}": value for name, value in result.validation.items()}
        self._rows[result.fold] = [f"{self.label} fold {result.fold + 1}/{result.k} {result.status}",
                                   result.epochs_run, result.epochs_run, format_logs(logs)]
        self._live.show(self._html(), force=True)

    def final_started(self, epochs: int) -> None:
        self._rows[-1] = [f"{self.label} final model", 0, epochs, STARTING]
        self._live.show(self._html(), force=True)


class NotebookTrials:
    """A sweep's finished trials in a notebook: how many of how many, and the latest ones
    (the interface of :class:`nnlab.views.progress.TrialLines`)."""

    #: The latest trials listed.
    SHOWN = 8

    def __init__(self, label: str = "sweep"):
        self.label = label
        self.done = 0
        self._lines: list[str] = []
        self._live = _Live()

    def __call__(self, outcome: Any, total: int) -> None:
        from nnlab.views.style import compact

        self.done += 1
        params = ", ".join(f"{k}={compact(v)}" for k, v in outcome.params.items()) or "(the config as it is)"
        repeat = getattr(outcome, "repeat", None)
        which = f"trial {outcome.index}" + ("" if repeat is None else f" repeat {repeat}")
        self._lines = (self._lines + [f"{which} {outcome.status} {params}"])[-self.SHOWN:]
        from nnlab.views.html import progress_html

        self._live.show(progress_html([(self.label, self.done, total, "")], "; ".join(reversed(self._lines))),
                        force=self.done == total)


def epoch_progress(label: str, total: int | None):
    """A run's progress display: in a notebook its own, elsewhere the terminal's."""
    if in_notebook():
        return NotebookEpochProgress(label, total)
    from nnlab.views.progress import EpochProgress

    return EpochProgress(label, total)


def kfold_progress(label: str):
    """A k-fold validation's progress display: in a notebook its own, elsewhere the terminal's."""
    if in_notebook():
        return NotebookKFoldProgress(label)
    from nnlab.views.progress import KFoldProgress

    return KFoldProgress(label)


def trial_progress(label: str = "sweep"):
    """A sweep's display of finished trials: in a notebook its own, elsewhere a line per trial."""
    if in_notebook():
        return NotebookTrials(label)
    from nnlab.views.progress import TrialLines

    return TrialLines()


@contextlib.contextmanager
def notebook_run() -> Iterator[None]:
    """Around a run in a notebook (nothing happens outside one): the notebook's matplotlib backend is
    given back afterwards (nnlab draws its figures with Agg, which would leave the notebook's own ``plt``
    figures undrawn), and rich consoles made meanwhile print text, not HTML (Keras captures its model
    summary through one, which in a notebook leaves an empty output behind)."""
    if not in_notebook():
        yield
        return
    import matplotlib.pyplot as plt
    import rich.console

    before = plt.get_backend()
    detect = getattr(rich.console, "_is_jupyter", None)
    if detect is not None:
        rich.console._is_jupyter = lambda: False
    try:
        yield
    finally:
        if detect is not None:
            rich.console._is_jupyter = detect
        if plt.get_backend() != before:
            try:
                if before in ("inline", INLINE):  # as %matplotlib inline does: the backend and its kernel hook
                    sys.modules["IPython"].get_ipython().enable_matplotlib("inline")
                else:
                    plt.switch_backend(before)
            except Exception:  # a backend that cannot come back: the figures are still saved in the run folder
                pass

"""Running a run folder again: ``nnlab rerun`` (a new run from its config) and ``nnlab verify``
(that new run's final metrics beside the original's).

A run folder holds what it takes to run it again: config.yaml (the resolved config,
overrides applied), metrics.json (its kind and final metrics) and env.json (the versions
and the SHA-256 of every data file it read). :func:`original_run` reads and checks them,
:func:`rerun` starts the new run, a train run or a k-fold run as the original was, tagged
``rerun_of`` in its metrics.json, and :func:`verify` trains it again and compares.

``verify`` trains into a temporary runs folder that is removed afterwards unless it is
asked to keep the run (``keep``): a verification run has the same config and seed as the
original, so kept by default it would count twice among the repeats of that config.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.errors import NnlabError
from nnlab.store import format as runfile
from nnlab.store.format import Status
from nnlab.store.reading import read_env, read_metrics

#: The parts of metrics.json whose final figures ``verify`` compares.
PARTS = ("train", "validation", "test")
#: The kinds of run folder that can run again.
RERUNNABLE = ("train", "kfold")
#: The default tolerance of ``nnlab verify``: the largest absolute difference that still agrees.
DEFAULT_TOLERANCE = 1e-6


@dataclass
class Original:
    """A run folder, read and checked, ready to run again.

    Args:
        path: the run folder.
        kind: ``train`` or ``kfold``.
        config: its config.yaml validated, with the new overrides applied.
        metrics: its metrics.json ({} when it could not be read; ``verify`` refuses that).
        env: its env.json ({} when it has none or it cannot be read).
        notes: what could not be read but does not stop a re-run (a damaged env.json).
    """

    path: Path
    kind: str
    config: Any
    metrics: dict[str, Any]
    env: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        """The folder's name, what the new run records as ``rerun_of``."""
        return self.path.name


def original_run(folder: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                 verifying: bool = False) -> Original:
    """Read a run folder to run it again.

    Args:
        folder: the run folder (already resolved from a RUN argument).
        overrides: ``key=value`` strings applied to its config.yaml, validated as ``nnlab train`` does.
        verifying: also require what ``verify`` compares against: a readable metrics.json of a
            completed run with final metrics.

    Returns:
        The :class:`Original`.

    Raises:
        NnlabError: one message saying why the folder cannot run again (exit code 2); ConfigError
            when its config (with the overrides) is not valid.
    """
    from nnlab.config import load_config

    path = Path(folder)
    what = "verified" if verifying else "run again"
    try:
        metrics = read_metrics(path)
    except NnlabError as err:
        if verifying:
            raise NnlabError(f"cannot be verified: {err.message}; there are no final metrics to compare with",
                             source=str(path)) from None
        metrics = {}
    kind = metrics.get("kind") if isinstance(metrics.get("kind"), str) else _kind_from_name(path.name)
    if kind not in RERUNNABLE:
        hint = " (run its trials again one by one, or the sweep with nnlab sweep)" if kind == "sweep" else ""
        raise NnlabError(f"cannot be {what}: it is a {kind} folder; only train and k-fold runs can{hint}",
                         source=str(path))
    if not (path / runfile.CONFIG).is_file():
        raise NnlabError(f"cannot be {what}: it has no {runfile.CONFIG} (not a run folder, or it stopped "
                         "before it started)", source=str(path))
    if verifying:
        _check_verifiable(path, metrics)
    env, notes = {}, []
    try:
        env = read_env(path)
    except (NnlabError, RecursionError) as err:
        notes.append(f"{path}: {getattr(err, 'message', 'env.json is nested too deeply')}: the versions and data "
                     "files of the run cannot be checked")
    config = load_config(path / runfile.CONFIG, list(overrides), base_dir=path)
    return Original(path=path, kind=kind, config=config, metrics=metrics, env=env, notes=notes)


def _kind_from_name(name: str) -> str:
    """The kind a folder's name says (``..._kfold``, ``..._sweep``), for a folder whose metrics.json is unreadable."""
    for kind, suffix in runfile.KIND_SUFFIX.items():
        if suffix and name.endswith(suffix):
            return kind
    return "train"


def _check_verifiable(path: Path, metrics: dict[str, Any]) -> None:
    status = Status.of(metrics.get("status"))
    if status is Status.RUNNING:
        raise NnlabError("cannot be verified: it is still running (or stopped without a trace); verify it once "
                         "it has completed", source=str(path))
    if status is not Status.COMPLETED:
        raise NnlabError(f"cannot be verified: it ended {status.value}, without the final metrics of a completed "
                         "run; start it again with nnlab rerun", source=str(path))
    if not final_metrics(metrics):
        raise NnlabError(f"cannot be verified: its {runfile.METRICS} holds no final metrics "
                         f"({', '.join(PARTS)})", source=str(path))


def final_metrics(metrics: dict[str, Any]) -> dict[tuple[str, str], float]:
    """``{(part, metric): value}`` of metrics.json's train, validation and test figures (numbers only)."""
    found = {}
    for part in PARTS:
        figures = metrics.get(part)
        if isinstance(figures, dict):
            for name, value in figures.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    found[(part, str(name))] = float(value)
    return found


def data_dir_of(original: Original, data_dir: str | Path | None) -> str | Path | None:
    """The data directory for the new run: the one given, else the one the run recorded if it is still there."""
    if data_dir is not None:
        return data_dir
    recorded = (original.env.get("data") or {}).get("data_dir") if isinstance(original.env.get("data"), dict) else None
    return recorded if isinstance(recorded, str) and Path(recorded).is_dir() else None


def rerun(original: Original, *, runs_dir: str | Path | None = None, data_dir: str | Path | None = None,
          report: Any = None, argv: list[str] | None = None) -> Any:
    """Start a new run from an original's config: a train run, or a k-fold run as the original was
    (with its ``--final`` and ``--jobs``); its metrics.json records ``rerun_of``.

    Args:
        original: from :func:`original_run`.
        runs_dir: where the new run folder goes (default: beside the original).
        data_dir: the data directory (default: the one the original recorded, if still there).
        report: the progress display (an epoch report for train runs, a fold report for k-fold runs).
        argv: the command line for env.json.

    Returns:
        :class:`nnlab.training.run.RunResult` or :class:`nnlab.crossval.run.KFoldResult`.

    Raises:
        NnlabError: for anything refused before the new run folder exists.
    """
    tags = {"rerun_of": original.run_id}
    runs_dir = original.path.parent if runs_dir is None else runs_dir
    data_dir = data_dir_of(original, data_dir)
    if original.kind == "kfold":
        from nnlab.crossval.run import run_kfold

        jobs = original.metrics.get("jobs")
        return run_kfold(original.config, runs_dir=runs_dir, data_dir=data_dir,
                         final=bool(original.metrics.get("final")), jobs=jobs if isinstance(jobs, int) and jobs > 0 else 1,
                         report=report, argv=argv, tags=tags)
    from nnlab.training.run import train

    return train(original.config, runs_dir=runs_dir, data_dir=data_dir, report=report, argv=argv, tags=tags)


# -- verify ------------------------------------------------------------------------------------

def provenance_warnings(original: Original, data_dir: str | Path | None = None) -> list[str]:
    """What differs between the environment the run recorded and this one, before it trains again.

    nnlab's version, Keras's, the backend's (same backend), and the SHA-256 of every data file the
    run read (found where it was, or under ``data_dir`` when another data directory is given).
    Reads no data file while it is unchanged since it was hashed (:mod:`nnlab.datasets.digests`).

    Returns:
        One line per difference (and per note of :attr:`Original.notes`).
    """
    import nnlab
    from nnlab.backend import BACKEND_PACKAGES

    env = original.env
    warnings = list(original.notes)
    if not env:
        return warnings
    backend = original.config.backend
    backend_package = BACKEND_PACKAGES.get(backend, (backend,))[0]
    checks = [("nnlab", env.get("nnlab"), nnlab.__version__), ("Keras", env.get("keras"), _installed("keras"))]
    if env.get("backend") == backend:
        checks.append((backend_package, env.get("backend_version"), _installed(backend_package)))
    elif env.get("backend"):
        warnings.append(f"the run trained on the {env['backend']} backend; this one trains on {backend}")
    for name, recorded, now in checks:
        if recorded and recorded != now:
            warnings.append(f"{name} {now or 'is not installed'} here; the run used {name} {recorded}")
    warnings += data_warnings(env.get("data"), data_dir)
    return warnings


def _installed(package: str) -> str | None:
    """The installed version of a package, without importing it."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def data_warnings(recorded: Any, data_dir: str | Path | None = None) -> list[str]:
    """A line for each data file of env.json's ``data`` record that is gone or whose SHA-256 changed."""
    from nnlab.datasets.digests import sha256_of

    if not isinstance(recorded, dict) or not isinstance(recorded.get("files"), dict):
        return []
    old_dir = recorded.get("data_dir")
    lines = []
    for name, digest in recorded["files"].items():
        file = _moved(Path(name), old_dir, data_dir)
        if not file.is_file():
            lines.append(f"{file}: the data file the run read is not there any more")
            continue
        try:
            now = sha256_of(file)
        except OSError as err:
            lines.append(f"{file}: cannot be read to check its SHA-256 ({err.strerror or err})")
            continue
        if isinstance(digest, str) and now != digest:
            lines.append(f"{file}: the data file changed since the run: its SHA-256 is {now[:12]}..., "
                         f"the run read {digest[:12]}...")
    return lines


def _moved(file: Path, old_dir: Any, data_dir: str | Path | None) -> Path:
    """Where a recorded file lies when another data directory is given for the new run."""
    if data_dir is None or not isinstance(old_dir, str):
        return file
    try:
        return Path(data_dir).expanduser().resolve() / file.resolve().relative_to(Path(old_dir))
    except ValueError:
        return file


@dataclass
class MetricCheck:
    """One final metric of the original beside the same metric of the new run.

    Args:
        part: train, validation or test.
        metric: its name (``loss``, ``accuracy``, ...).
        original, rerun: the two figures (None where one run lacks the metric).
        difference: ``|rerun - original|`` (None where one is missing; 0 when both are NaN).
        within: whether the difference is at most the tolerance (False where one is missing).
    """

    part: str
    metric: str
    original: float | None
    rerun: float | None
    difference: float | None
    within: bool

    @property
    def label(self) -> str:
        """``test accuracy``, as the messages name it."""
        return f"{self.part} {self.metric}"


def compare_metrics(original: dict[str, Any], new: dict[str, Any], tolerance: float) -> list[MetricCheck]:
    """Every final metric of either run (metrics.json contents), in the original's order, compared.

    Args:
        original: the original's metrics.json.
        new: the new run's metrics.json.
        tolerance: the largest absolute difference that agrees.

    Returns:
        One :class:`MetricCheck` per (part, metric).
    """
    before, after = final_metrics(original), final_metrics(new)
    checks = []
    for key in dict.fromkeys([*before, *after]):
        a, b = before.get(key), after.get(key)
        if a is None or b is None:
            difference, within = None, False
        elif math.isnan(a) and math.isnan(b):
            difference, within = 0.0, True
        else:
            difference = abs(b - a)
            within = difference <= tolerance  # NaN against a number is never within
        checks.append(MetricCheck(key[0], key[1], a, b, difference, bool(within)))
    return checks


@dataclass
class Verification:
    """What :func:`verify` found.

    Args:
        original: the run verified.
        tolerance: the tolerance used.
        checks: each final metric compared (empty when the new run did not complete).
        status, message: the new run's status and message.
        kept: the new run folder when it was kept, else None.
        rerun_exit_code: the new run's own exit code (130/143 when it was stopped).
    """

    original: Original
    tolerance: float
    checks: list[MetricCheck]
    status: str
    message: str | None
    kept: Path | None
    rerun_exit_code: int

    @property
    def outside(self) -> list[MetricCheck]:
        """The metrics whose difference is above the tolerance (or that one run lacks)."""
        return [c for c in self.checks if not c.within]

    @property
    def verified(self) -> bool:
        """Whether the new run completed and every final metric agreed within the tolerance."""
        return self.status == Status.COMPLETED.value and bool(self.checks) and not self.outside

    @property
    def exit_code(self) -> int:
        """0 verified; 1 a metric outside the tolerance or the new run did not complete; 130/143 stopped."""
        if self.rerun_exit_code in (130, 143):
            return self.rerun_exit_code
        return 0 if self.verified else 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``nnlab verify --json``)."""
        return {"run": str(self.original.path), "tolerance": self.tolerance, "verified": self.verified,
                "status": self.status, "message": self.message, "kept": None if self.kept is None else str(self.kept),
                "outside": [c.label for c in self.outside],
                "metrics": [{"part": c.part, "metric": c.metric, "original": c.original, "rerun": c.rerun,
                             "difference": c.difference, "within": c.within} for c in self.checks]}


def verify(original: Original, *, tolerance: float = DEFAULT_TOLERANCE, keep: bool = False,
           runs_dir: str | Path | None = None, data_dir: str | Path | None = None, report: Any = None,
           argv: list[str] | None = None) -> Verification:
    """Train a run again from its config and compare every final metric with the original's.

    Args:
        original: from :func:`original_run` with ``verifying=True``.
        tolerance: the largest absolute difference that agrees (0: identical figures).
        keep: keep the new run folder (beside the original, or in ``runs_dir``), tagged ``rerun_of``;
            otherwise it trains in a temporary folder that is removed afterwards.
        runs_dir: where a kept run goes.
        data_dir: the data directory (default: the one the original recorded, if still there).
        report: the progress display.
        argv: the command line for the new run's env.json.

    Returns:
        The :class:`Verification`.

    Raises:
        NnlabError: for anything refused before the new run starts (its data, its config).
    """
    if not (tolerance >= 0):
        raise NnlabError(f"must be 0 or more (got {tolerance})", source="--tol")
    scratch = None if keep else Path(tempfile.mkdtemp(prefix="nnlab-verify-"))
    try:
        result = rerun(original, runs_dir=scratch if scratch is not None else runs_dir, data_dir=data_dir,
                       report=report, argv=argv)
        metrics = result.metrics
        status = str(metrics.get("status"))
        checks = compare_metrics(original.metrics, metrics, tolerance) if status == Status.COMPLETED.value else []
        return Verification(original=original, tolerance=tolerance, checks=checks, status=status,
                            message=metrics.get("message"), kept=None if scratch is not None else result.run.path,
                            rerun_exit_code=result.exit_code)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

"""Where independent tasks (sweep trials, k-fold folds) run: here, in worker processes, or on Ray.

A task is a picklable module-level function and its picklable arguments; it returns
plain data (histories, metrics, file contents) and writes nothing the driver needs,
so workers need no shared filesystem. Results come back as tasks finish.

One pool serves ``nnlab kfold --jobs`` and ``nnlab sweep --jobs``: :class:`ProcessExecutor`.
Its workers start at once and import TensorFlow while the driver is still reading
the config; with ``driver_helps`` the driver takes tasks too whenever every worker
is busy, so N jobs cost N - 1 extra TensorFlow start-ups, not N.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
from typing import Any, Callable, Iterable, Iterator

from nnlab.errors import NnlabError

def worker_threads(jobs: int) -> int:
    """Threads per worker so that ``jobs`` workers share this machine's cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def limit_threads(threads: int) -> None:
    """Cap the math libraries' threads in this process (call before TensorFlow is imported)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"


def _worker_init(threads: int) -> None:
    """A worker process's start: its share of the cores, then Keras (and TensorFlow) imported."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group; the driver handles it
    limit_threads(threads)
    from nnlab.backend import keras

    k = keras()
    if k.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


class Executor:
    """Runs ``fn(*args)`` for many argument tuples; results come back as tasks finish.

    ``submit`` hands one task over and returns a handle; ``gather`` yields
    ``(position, result, error)`` for a list of handles as each finishes, and cancels
    those still pending when the caller stops early. ``run`` is both at once.
    """

    #: True when tasks run in the caller's process (they may write run folders themselves).
    in_process = False

    def submit(self, fn: Callable[..., Any], args: tuple) -> Any:
        raise NotImplementedError

    def gather(self, handles: list[Any]) -> Iterator[tuple[int, Any, BaseException | None]]:
        raise NotImplementedError

    def cancel(self, handles: Iterable[Any]) -> None:
        """Give up tasks not started yet (those running may finish)."""

    def run(self, fn: Callable[..., Any], tasks: list[tuple],
            here: Callable[[int, tuple], Any] | None = None) -> Iterator[tuple[int, Any, BaseException | None]]:
        """Submit every task, then yield ``(index, result, error)`` as each finishes.

        Args:
            fn: the task function (module-level, picklable).
            tasks: its argument tuples.
            here: how a task runs when it runs in this process (``here(index, args)``, e.g. with live
                progress); default ``fn(*args)``. Executors whose tasks run elsewhere ignore it.
        """
        yield from self.gather([self.submit(fn, args) for args in tasks])

    def close(self) -> None:
        """Release workers (and cancel what has not started)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalExecutor(Executor):
    """One task after another in this process (a submitted task runs when it is gathered)."""

    in_process = True

    def submit(self, fn, args):
        return fn, args

    def gather(self, handles):
        for i, (fn, args) in enumerate(handles):
            yield (i, *_call(fn, args))

    def run(self, fn, tasks, here=None):
        if here is None:
            yield from super().run(fn, tasks)
            return
        for i, args in enumerate(tasks):
            yield (i, *_call(here, (i, args)))


def _call(fn: Callable[..., Any], args: tuple) -> tuple[Any, BaseException | None]:
    """``(fn(*args), None)``, or ``(None, error)``: one task's failure is recorded; the others go on."""
    try:
        return fn(*args), None
    except Exception as err:
        return None, err


class ProcessExecutor(Executor):
    """A pool of worker processes on this machine, each with its own TensorFlow, started at once.

    Each worker is a fresh interpreter (spawn: no TensorFlow state shared) whose math
    threads are its share of the cores; it imports TensorFlow as soon as it starts, so
    a pool made before the config is read has its start-up overlap the driver's.
    Workers ignore Ctrl-C: the driver records the stop and :meth:`close` ends them.

    Args:
        jobs: processes that run tasks at once.
        driver_helps: this process is one of the ``jobs``: it starts ``jobs - 1`` workers
            and :meth:`run` gives it a task whenever every worker is busy (k-fold folds,
            whose driver has TensorFlow loaded for its checks anyway).
    """

    def __init__(self, jobs: int, *, driver_helps: bool = False):
        import sys

        self.jobs = jobs
        self.driver_helps = driver_helps
        self.workers = max(1, jobs - 1) if driver_helps else jobs
        threads = worker_threads(jobs)
        if driver_helps and "keras" not in sys.modules and "tensorflow" not in sys.modules:
            limit_threads(threads)  # this process trains tasks too: its share, set before TensorFlow loads
        context = multiprocessing.get_context("spawn")
        self._pool = futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                                 initializer=_worker_init, initargs=(threads,))
        for _ in range(self.workers):  # each submission starts a process now, not at the first task
            self._pool.submit(_ready)

    def submit(self, fn, args):
        return self._pool.submit(fn, *args)

    def gather(self, handles):
        position = {future: i for i, future in enumerate(handles)}
        try:
            for future in futures.as_completed(position):
                yield (position[future], *_outcome(future))
        finally:
            self.cancel(handles)

    def run(self, fn, tasks, here=None):
        if not self.driver_helps:
            yield from super().run(fn, tasks)
            return
        waiting = list(enumerate(tasks))
        running: dict[futures.Future, int] = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.workers:
                    i, args = waiting.pop(0)
                    running[self._pool.submit(fn, *args)] = i
                if waiting:  # every worker is busy: this process takes the next task
                    i, args = waiting.pop(0)
                    yield (i, *_call(here or fn, (i, args) if here else args))
                else:
                    futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in [f for f in running if f.done()]:
                    yield (running.pop(future), *_outcome(future))
        finally:
            self.cancel(running)

    def cancel(self, handles):
        for future in handles:
            future.cancel()

    def close(self) -> None:
        # Running tasks are not waited for: their results would be read by nobody. The pool's own
        # thread notices the ended workers and reaps them; waiting for it leaves no process behind.
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():  # still importing TensorFlow on a loaded machine, say
                process.kill()
                process.join(timeout=5)


def _ready() -> None:
    """The first task of each worker: nothing (its initializer has imported TensorFlow)."""


def _outcome(future: futures.Future) -> tuple[Any, BaseException | None]:
    from concurrent.futures.process import BrokenProcessPool

    error = future.exception()
    if isinstance(error, BrokenProcessPool):
        error = RuntimeError("its worker process died (killed, or out of memory)")
    return (None, error) if error else (future.result(), None)


class RayExecutor(Executor):
    """Tasks as Ray tasks: on the cluster at ``address``, or on a local Ray instance.

    Args:
        address: ``auto``, ``ray://host:port``, a ``host:port`` of a running head, or None
            for a local instance started here (and stopped by :meth:`close`).
        cpus: CPUs each task asks for.
        gpus: GPUs each task asks for.
        num_cpus: CPUs of a local instance (default: all).
    """

    def __init__(self, address: str | None = None, cpus: float = 1, gpus: float = 0, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise NnlabError("the Ray executor needs Ray: pip install 'nnlab[ray]'", source="--executor ray") from None
        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False}
            if address:
                _check_reachable(address)
                options["address"] = address
            else:
                # A private instance for this sweep, stopped by close(). Ray's processes listen on
                # this machine's network address (Ray maps 127.0.0.1 to it), as for any Ray node.
                os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # Ray's default; a user's own setting wins
                options["num_cpus"] = num_cpus
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise NnlabError(f"cannot connect to Ray at {address or 'a local instance'}: {err}",
                                 source="--address") from None
        self.cpus, self.gpus = cpus, gpus
        self._remote = ray.remote(num_cpus=cpus, num_gpus=gpus)(_ray_task)
        self._outstanding: set[Any] = set()

    def submit(self, fn, args):
        ref = self._remote.remote(fn, max(1, int(self.cpus)), args)
        self._outstanding.add(ref)
        return ref

    def gather(self, handles):
        ray = self._ray
        position = {ref: i for i, ref in enumerate(handles)}
        waiting = list(handles)
        try:
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                ref = done[0]
                self._outstanding.discard(ref)
                try:
                    yield position[ref], ray.get(ref), None
                except ray.exceptions.RayTaskError as err:
                    yield position[ref], None, err.cause if isinstance(err.cause, BaseException) else err
                except ray.exceptions.RayError as err:
                    yield position[ref], None, err
        finally:
            self.cancel(waiting)

    def cancel(self, handles):
        for ref in handles:
            self._outstanding.discard(ref)
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished, or the cluster is gone: nothing left to stop
                pass

    def close(self) -> None:
        if self._ray.is_initialized():
            self.cancel(list(self._outstanding))
            if self._started_here:
                self._ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse at once a ``host:port`` or ``ray://host:port`` where nothing listens.

    Ray itself retries an unreachable head for many minutes before it gives up.
    """
    import socket

    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        return  # "auto", or a form Ray understands and we do not
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as err:
        raise NnlabError(f"nothing answers at {host}:{port} ({err.strerror or err}); start the cluster's head "
                         "with `ray start --head` (GCS port 6379, Ray Client port 10001), or use --address auto "
                         "on a node of the cluster", source=f"--address {address}") from None


def _ray_task(fn: Callable[..., Any], threads: int, args: tuple) -> Any:
    _worker_init(threads)
    return fn(*args)


def make_executor(kind: str = "local", *, jobs: int = 1, address: str | None = None, cpus: float = 1,
                  gpus: float = 0, driver_helps: bool = False) -> Executor:
    """The executor a command line asks for.

    Args:
        kind: ``local`` (``process`` when jobs > 1) or ``ray``.
        jobs: worker processes for the local kinds; for a local Ray instance, its CPUs.
        address: the Ray cluster's address.
        cpus, gpus: resources per Ray task.
        driver_helps: with jobs > 1, this process is one of the jobs (see :class:`ProcessExecutor`).

    Returns:
        The executor (a context manager).
    """
    if kind not in ("local", "ray"):
        raise NnlabError(f"unknown executor '{kind}' (accepted: local, ray)", source="--executor")
    if kind == "ray":
        return RayExecutor(address, cpus=cpus, gpus=gpus, num_cpus=jobs if jobs > 1 else None)
    if address:
        raise NnlabError("--address is for --executor ray", source="--address")
    return ProcessExecutor(jobs, driver_helps=driver_helps) if jobs > 1 else LocalExecutor()

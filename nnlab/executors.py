"""Where independent tasks (sweep trials, k-fold folds) run: here, in worker processes, or on Ray.

A task is a picklable module-level function and its picklable arguments; it returns
plain data (histories, metrics, file contents) and writes nothing the driver needs,
so workers need no shared filesystem. Results come back as tasks finish.

One pool serves ``nnlab kfold --jobs`` and ``nnlab sweep --jobs``: :class:`ProcessExecutor`.
Its workers start at once and import TensorFlow while the driver is still reading
the config; with ``driver_helps`` the driver takes tasks too whenever every worker
is busy, so N jobs cost N - 1 extra TensorFlow start-ups, not N.

A worker that dies (killed, out of memory, a crash in native code) is not a task's
error: on the pool and on Ray the task it was running is tried once more on a fresh
worker, and only when that worker dies too is it given up, as :class:`WorkerDied`.
The other tasks go on.
"""

from __future__ import annotations

import concurrent.futures as futures
import itertools
import multiprocessing
import os
import shutil
import signal
import tempfile
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from nnlab.errors import NnlabError

#: How many times a task is started on a fresh worker when its worker dies under it (the first try included).
TRIES = 2


class WorkerDied(Exception):
    """A task's worker process (or its node) died under it on every try: not an error of the task."""


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

    def stream(self, fn: Callable[..., Any], tasks: Iterable[tuple],
               width: int) -> Iterator[tuple[tuple, Any, BaseException | None]]:
        """Keep ``width`` tasks running, taking the next from ``tasks`` only when one has finished.

        For work whose next task depends on the results so far (a model-based search asks
        its sampler for the next trial after it has told it the last one's result).

        Args:
            fn: the task function (module-level, picklable).
            tasks: argument tuples, pulled lazily; it may end early.
            width: tasks running at once.

        Yields:
            ``(args, result, error)`` as each task finishes; those still running are cancelled
            when the caller stops early.
        """
        running: list[tuple[Any, tuple]] = []
        pending = iter(tasks)
        more = True
        try:
            while True:
                while more and len(running) < max(1, width):
                    args = next(pending, None)
                    if args is None:
                        more = False
                    else:
                        running.append((self.submit(fn, args), args))
                if not running:
                    return
                position, result, error = self._first([handle for handle, _ in running])
                _, args = running.pop(position)
                yield args, result, error
        finally:
            self.cancel([handle for handle, _ in running])

    def _first(self, handles: list[Any]) -> tuple[int, Any, BaseException | None]:
        """Wait for the first of ``handles`` to finish: ``(its position, result, error)``."""
        raise NotImplementedError

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

    def _first(self, handles):
        fn, args = handles[0]
        return (0, *_call(fn, args))


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

    A worker that dies breaks a ``ProcessPoolExecutor`` and fails every task it held.
    Here a fresh pool takes over: the task that was running in the dead worker counts a
    try, every other task is submitted again as if nothing happened, and a task whose
    worker died on each of its :data:`TRIES` ends with :class:`WorkerDied`. Each task
    notes which worker started it (a file named after the task in a private folder), so
    the dead worker's task is told from its neighbours.

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
        self._threads = worker_threads(jobs)
        if driver_helps and "keras" not in sys.modules and "tensorflow" not in sys.modules:
            limit_threads(self._threads)  # this process trains tasks too: its share, set before TensorFlow loads
        self._context = multiprocessing.get_context("spawn")
        self._starts = Path(tempfile.mkdtemp(prefix="nnlab-pool-"))
        self._numbers = itertools.count()
        self._live: dict[int, _PoolTask] = {}  # submitted, not yet gathered nor cancelled
        self._pool = self._new_pool()

    def _new_pool(self) -> futures.ProcessPoolExecutor:
        pool = futures.ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context,
                                           initializer=_worker_init, initargs=(self._threads,))
        for _ in range(self.workers):  # each submission starts a process now, not at the first task
            pool.submit(_ready)
        return pool

    def submit(self, fn, args):
        task = _PoolTask(next(self._numbers), fn, args)
        self._live[task.number] = task
        self._start(task)
        return task

    def _start(self, task: "_PoolTask") -> None:
        (self._starts / str(task.number)).unlink(missing_ok=True)
        task.pool = self._pool
        try:
            task.future = self._pool.submit(_started, str(self._starts), task.number, task.fn, task.args)
        except BrokenProcessPool:  # the pool broke since the last task: a fresh one takes this one too
            task.future = futures.Future()
            task.future.set_exception(BrokenProcessPool("broken before the task was sent"))
            self._replace(task.pool)

    @staticmethod
    def _broke(task: "_PoolTask") -> bool:
        future = task.future
        return future.done() and not future.cancelled() and isinstance(future.exception(), BrokenProcessPool)

    def _replace(self, broken: futures.ProcessPoolExecutor) -> None:
        """A fresh pool instead of ``broken``, and every task ``broken`` failed submitted to it again
        or given up (once: a later call for the same pool does nothing).

        The task that was running in the worker that died counts a try. The pool ends its
        other workers itself (SIGTERM; those still alive are killed here, as their results
        can no longer come back); a worker that another signal ended died on its own. When
        none is known to have (one was killed with SIGTERM, say), every task that had
        started counts a try, and when none had started (a worker died starting), every one.
        """
        if broken is not self._pool:
            return
        processes = list((getattr(broken, "_processes", None) or {}).values())
        exits = _exit_codes(processes)
        # Killed by a signal, not the pool's SIGTERM. (A worker that caught that SIGTERM in training
        # ends its task as interrupted, then exits with code 1 when it finds the pool gone.)
        died = {pid for pid, code in exits.items() if code is not None and code < 0 and code != -signal.SIGTERM}
        for process in processes:  # a worker in training turns the pool's SIGTERM into a stop and lives on
            if process.is_alive():
                process.kill()
        broken.shutdown(wait=True, cancel_futures=True)  # every task it held has failed by now
        self._pool = self._new_pool()
        hit = [t for t in self._live.values() if t.pool is broken and self._broke(t)]
        started = {t.number: self._worker_of(t) for t in hit}
        counted = ([t for t in hit if started[t.number] in died] or
                   [t for t in hit if started[t.number] is not None] or hit)
        for task in counted:
            task.tries += 1
        for task in hit:
            if task.tries >= TRIES:
                task.died = True
            else:
                self._start(task)

    def _worker_of(self, task: "_PoolTask") -> int | None:
        """The process id of the worker that started ``task``, or None if none did."""
        try:
            return int((self._starts / str(task.number)).read_text())
        except (OSError, ValueError):
            return None

    def _settle(self, task: "_PoolTask") -> bool:
        """For a task whose future is done: True when that is its outcome, False when it runs
        again (its pool broke under it)."""
        if not task.died and self._broke(task):
            self._replace(task.pool)
        return task.died or task.future.done() and not self._broke(task)

    def _outcome(self, task: "_PoolTask") -> tuple[Any, BaseException | None]:
        self._live.pop(task.number, None)
        if task.died:
            return None, WorkerDied(f"its worker process died on each of {TRIES} tries (killed, or out of memory)")
        error = task.future.exception()
        return (None, error) if error else (task.future.result(), None)

    def gather(self, handles):
        position = {task.number: i for i, task in enumerate(handles)}
        waiting = list(handles)
        try:
            while waiting:
                futures.wait([t.future for t in waiting], return_when=futures.FIRST_COMPLETED)
                for task in [t for t in waiting if t.future.done()]:
                    if self._settle(task):
                        waiting.remove(task)
                        yield (position[task.number], *self._outcome(task))
        finally:
            self.cancel(handles)

    def _first(self, handles):
        while True:
            futures.wait([t.future for t in handles], return_when=futures.FIRST_COMPLETED)
            for position, task in enumerate(handles):
                if task.future.done() and self._settle(task):
                    return (position, *self._outcome(task))

    def run(self, fn, tasks, here=None):
        if not self.driver_helps:
            yield from super().run(fn, tasks)
            return
        waiting = list(enumerate(tasks))
        running: dict[int, _PoolTask] = {}  # position -> task
        try:
            while waiting or running:
                while waiting and len(running) < self.workers:
                    i, args = waiting.pop(0)
                    running[i] = self.submit(fn, args)
                if waiting:  # every worker is busy: this process takes the next task
                    i, args = waiting.pop(0)
                    yield (i, *_call(here or fn, (i, args) if here else args))
                else:
                    futures.wait([t.future for t in running.values()], return_when=futures.FIRST_COMPLETED)
                for i, task in [(i, t) for i, t in running.items() if t.future.done()]:
                    if self._settle(task):
                        del running[i]
                        yield (i, *self._outcome(task))
        finally:
            self.cancel(running.values())

    def cancel(self, handles):
        for task in list(handles):
            task.future.cancel()
            self._live.pop(task.number, None)

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
        shutil.rmtree(self._starts, ignore_errors=True)


def _exit_codes(processes: list[Any], wait: float = 5.0) -> dict[int, int | None]:
    """Each process's exit code; None for one still alive.

    The pool's own thread may be reaping a dead worker at this very moment, and until it
    has, the worker's exit code reads None: a worker whose end is visible (its sentinel)
    is given up to ``wait`` seconds for its code to show.
    """
    import time
    from multiprocessing.connection import wait as ended

    deadline = time.monotonic() + wait
    while True:
        gone = {p.pid for p in processes if ended([p.sentinel], 0)}
        codes = {p.pid: p.exitcode for p in processes}
        if all(codes[pid] is not None for pid in gone) or time.monotonic() > deadline:
            return codes
        time.sleep(0.02)


class _PoolTask:
    """A task on the pool: what to submit again if its worker dies, and its current future."""

    def __init__(self, number: int, fn: Callable[..., Any], args: tuple):
        self.number, self.fn, self.args = number, fn, args
        self.future: futures.Future = None  # type: ignore[assignment]
        self.pool: futures.ProcessPoolExecutor | None = None
        self.tries = 0
        self.died = False


def _started(starts: str, number: int, fn: Callable[..., Any], args: tuple) -> Any:
    """A task in a worker: first a note of which worker runs it (its process id), then the task."""
    with open(os.path.join(starts, str(number)), "w") as note:
        note.write(str(os.getpid()))
    return fn(*args)


def _ready() -> None:
    """The first task of each worker: nothing (its initializer has imported TensorFlow)."""


class RayExecutor(Executor):
    """Tasks as Ray tasks: on the cluster at ``address``, or on a local Ray instance.

    A task whose worker or node dies is run again once by Ray itself (``max_retries``);
    one whose worker dies on both tries ends with :class:`WorkerDied` and the reason. A
    task that raises is not run again: that is its outcome.

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
        # Ray runs a task again when its worker or node dies (not when the task raises): once.
        self._remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=TRIES - 1)(_ray_task)
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
                yield (position[done[0]], *self._outcome(done[0]))
        finally:
            self.cancel(waiting)

    def _first(self, handles):
        done, _ = self._ray.wait(list(handles), num_returns=1)
        return (handles.index(done[0]), *self._outcome(done[0]))

    def _outcome(self, ref: Any) -> tuple[Any, BaseException | None]:
        """A finished task's ``(result, error)``; a worker that died on every try is :class:`WorkerDied`."""
        ray = self._ray
        self._outstanding.discard(ref)
        try:
            return ray.get(ref), None
        except ray.exceptions.RayTaskError as err:
            return None, err.cause if isinstance(err.cause, BaseException) else err
        except ray.exceptions.TaskCancelledError as err:
            return None, err
        except ray.exceptions.RayError as err:  # its worker or node died, on every try
            reason = " ".join(str(err).split())
            reason = reason if len(reason) <= 300 else reason[:297] + "..."
            return None, WorkerDied(f"its Ray worker died on each of {TRIES} tries ({type(err).__name__}: {reason})")

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

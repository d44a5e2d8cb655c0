"""Whether a run whose metrics.json says ``running`` is still alive, or ``lost``.

A process killed with SIGKILL, by the out-of-memory killer or a power cut writes nothing
more: its folder keeps ``status: running``. So a running run records who runs it (``pid``,
``host``, ``process_start``) and a ``heartbeat`` (the time, rewritten every
:data:`HEARTBEAT_SECONDS` by :class:`Heartbeat`, a thread, so a long epoch does not
silence it). A reader then calls the run :attr:`~nnlab.store.format.Status.LOST` when

- on the host that runs it: its process is gone (or the pid now belongs to another process);
- on any other host: no heartbeat came for :data:`LOST_AFTER_SECONDS` (the heartbeat comes
  every half minute whatever the epochs' length, so that much silence is no slow epoch).

``lost`` is a reader's conclusion, never written: the folder keeps what its process last
wrote, and ``nnlab train --resume`` continues it from its checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping

#: Seconds between two heartbeats of a running run.
HEARTBEAT_SECONDS = 30.0
#: Seconds without a heartbeat after which a run on another host is lost.
LOST_AFTER_SECONDS = 600.0


def host_name() -> str:
    """This machine's name, as runs record it."""
    return socket.gethostname()


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux's /proc); None elsewhere or when
    there is no such process. With the pid it names one process: pids are reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[19])  # field 22 of stat(5)


def this_process() -> dict[str, Any]:
    """``{"pid", "host", "process_start"}`` of the running process, for metrics.json."""
    pid = os.getpid()
    return {"pid": pid, "host": host_name(), "process_start": process_start(pid)}


def _alive(pid: int, started: Any) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, run by another user
    except (OSError, OverflowError, ValueError):
        return False
    if isinstance(started, int):
        now = process_start(pid)
        return now is None or now == started
    return True


def lost_reason(metrics: Mapping[str, Any], now: datetime | None = None) -> str | None:
    """Why a run that metrics.json says is running has no process behind it any more.

    Args:
        metrics: metrics.json's content (train, k-fold or sweep).
        now: the time to judge the heartbeat's age at (default: now).

    Returns:
        The reason (``its process (pid 123) on this host is gone``), or None when the run is not
        recorded as running, may still be running, or was written before nnlab recorded its process.
    """
    if metrics.get("status") != "running":
        return None
    pid, host = metrics.get("pid"), metrics.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(host, str):
        return None
    if host == host_name():
        return None if _alive(pid, metrics.get("process_start")) else f"its process (pid {pid}) on this host is gone"
    age = heartbeat_age(metrics, now)
    if age is not None and age > LOST_AFTER_SECONDS:
        return f"no heartbeat from {host} for {_minutes(age)}"
    return None


def still_running(metrics: Mapping[str, Any], now: datetime | None = None) -> str | None:
    """What says a running run may still be alive, or None when it is not running or is lost.

    Returns:
        ``pid 123 on this host`` / ``on HOST, heartbeat 2 minutes ago``; None otherwise.
    """
    if metrics.get("status") != "running" or lost_reason(metrics, now) is not None:
        return None
    host, pid = metrics.get("host"), metrics.get("pid")
    if host == host_name():
        return f"pid {pid} on this host"
    age = heartbeat_age(metrics, now)
    return f"on {host}" + (f", last heartbeat {_minutes(age)} ago" if age is not None else "")


def heartbeat_age(metrics: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """Seconds since the run's last heartbeat, or None when it has none."""
    try:
        beat = datetime.fromisoformat(str(metrics["heartbeat"]))
    except (KeyError, ValueError):
        return None
    if beat.tzinfo is None:
        return None
    from nnlab.store.folder import utc_now

    return ((now or utc_now()) - beat).total_seconds()


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} hours"


class Heartbeat:
    """A thread that calls ``beat()`` every :data:`HEARTBEAT_SECONDS` while the block runs.

    ``beat`` sets the run's heartbeat and rewrites its metrics.json; it must hold the run
    folder's write lock while it reads the metrics and writes them, so a beat never lands
    after (and undoes) the last write of the run's own thread.

    Args:
        beat: sets the heartbeat and writes metrics.json.
        seconds: the interval.
    """

    def __init__(self, beat: Callable[[], None], seconds: float = HEARTBEAT_SECONDS):
        self.beat, self.seconds = beat, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nnlab-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.beat()
            except Exception:  # a full disk, say: the run's own writes will say so
                pass

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def beating(run: Any, metrics: Any) -> Iterator[None]:
    """While the block runs, rewrite the run's metrics.json with a new ``heartbeat`` every
    :data:`HEARTBEAT_SECONDS`; records this process (``pid``, ``host``, ``process_start``) first.

    Args:
        run: the :class:`~nnlab.store.folder.RunFolder`.
        metrics: its :class:`~nnlab.store.format.RunMetrics` (or anything with those fields and ``to_dict``).
    """
    from nnlab.store.folder import utc_now
    from nnlab.store.format import METRICS

    for key, value in this_process().items():
        setattr(metrics, key, value)
    metrics.heartbeat = utc_now().isoformat(timespec="seconds")

    def beat() -> None:
        with run.lock:  # read and write as one step: see Heartbeat
            metrics.heartbeat = utc_now().isoformat(timespec="seconds")
            run.write_json(METRICS, metrics.to_dict())

    with Heartbeat(beat, HEARTBEAT_SECONDS):
        yield

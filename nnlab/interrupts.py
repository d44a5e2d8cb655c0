"""Ctrl-C and SIGTERM as one exception, so a stopped run can record an honest status."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Interrupted(BaseException):
    """The process was asked to stop (SIGINT or SIGTERM).

    Args:
        signum: the signal's number; the exit code is 128 + signum.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


#: The signal received inside :func:`stop_signals`, until the block ends or :func:`raise_pending` raises it.
_pending: int | None = None

#: Inside :func:`signals_deferred`: a signal is kept pending instead of raised.
_deferred = 0


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread.

    The handler raises wherever the main thread is, and that can be inside Python code
    that C code called and whose errors it discards (TensorFlow's eager fast path calls
    ``TensorShape.__len__`` and drops what it raises): the stop would be lost and
    training would go on. So the signal is also kept as pending, and
    :func:`raise_pending`, which the training callbacks call after every batch and
    epoch, raises it again.
    """
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        global _pending
        _pending = signum
        if not _deferred:
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT) from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _pending = None


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """A stop signal received within the block is raised at its end, not inside it.

    The fused loop replays a chunk of finished epochs to the callbacks; a stop in the
    middle of that replay would leave a history that ends before the weights do.
    """
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
    raise_pending()


def raise_pending() -> None:
    """Raise :class:`Interrupted` for a stop signal received in :func:`stop_signals` whose
    exception was swallowed on its way out; nothing when none is pending (or while
    :func:`signals_deferred` holds it)."""
    global _pending
    if _pending is not None and not _deferred:
        signum, _pending = _pending, None
        raise Interrupted(signum)

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


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(signal.SIGINT) from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

"""Ctrl-C (SIGINT) that waits for the end of a critical section, for ``fit``.

``with DeferredInterrupt() as guard:`` installs a SIGINT handler for the block and restores the
previous one on exit. Outside ``with guard.critical():`` a SIGINT acts at once, as usual (the
previous handler runs: Python's default raises ``KeyboardInterrupt``). Inside, the first SIGINT
is held until the section ends and acts there, so a parameter update is never cut half-way; a
second SIGINT inside the same section acts at once (a force quit, as PyTorch users expect) and
sets ``guard.forced``.

A ``KeyboardInterrupt`` raised by a handler can be lost: when the signal lands while the garbage
collector runs a ``__del__`` (a tqdm bar's, say), Python prints "Exception ignored" and goes on.
So every SIGINT is also remembered until its handler returns, and ``critical()`` acts on a
remembered one on entry (before the update) and on exit.

The handler is installed only in the main thread (Python runs signal handlers there and nowhere
else, and only there may a handler be set) and only over a Python-level handler: when SIGINT is
ignored (``SIG_IGN``), left to the operating system (``SIG_DFL``) or set outside Python, nothing
is deferred and nothing changes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]


class DeferredInterrupt:
    """Hold SIGINT until the current ``critical()`` section is complete (see the module)."""

    def __init__(self) -> None:
        self.installed = False
        self.forced = False
        self._previous: Handler = signal.default_int_handler
        self._critical = False
        self._pending = False

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
                self.installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self._previous)
            self.installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._critical and not self._pending:
            self._pending = True
            return
        self.forced = self._critical
        self._pending = True  # stays set if what the previous handler raises is lost
        self._previous(signum, frame)
        self._pending = False  # it returned: a handler that does not stop the run

    def _act_on_pending(self) -> None:
        if self._pending:
            self._pending = False
            self._previous(signal.SIGINT, None)

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A section that a single SIGINT does not cut: it acts when the section ends (unless
        the section raises: that error wins). A SIGINT remembered from before acts on entry."""
        self._act_on_pending()
        self._critical = True
        try:
            yield
        finally:
            self._critical = False
        self._act_on_pending()

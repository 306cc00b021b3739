"""Posting finished emails in order on a thread of their own, so the thread's draft keeps showing
the email being written while an earlier one waits its turn in the channel (Slack allows about
one message per second per channel, and the workspace's budget may hold a post back)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_DONE = object()


class EmailPoster:
    """Runs `post(step, email)` for each email handed to it, one at a time, in order. The first
    failure stops it; the caller meets it at its next `check`, or when it waits with `finish`."""

    def __init__(self, post: Callable[[int, Any], None], name: str = "email-poster"):
        self._post = post
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def hand(self, step: int, email: Any) -> None:
        self.check()
        self._queue.put((step, email))

    def check(self) -> None:
        """Raise what stopped the poster, if anything has."""
        if self.error is not None:
            raise self.error

    def finish(self, timeout: float | None = None) -> None:
        """Wait until every email handed over is posted; raise what stopped it, if anything."""
        self._queue.put(_DONE)
        self._thread.join(timeout)
        self.check()

    def stop(self) -> None:
        """Post nothing more than the email already on its way."""
        self._stopping.set()
        self._queue.put(_DONE)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE or self._stopping.is_set():
                return
            try:
                self._post(*item)
            except BaseException as exc:  # handed to the caller, which decides what it means
                self.error = exc
                return

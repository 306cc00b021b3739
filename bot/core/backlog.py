"""Work that runs after an ack, on a pool with a bounded backlog: when the backlog is full the
pool refuses new work at once, so the caller answers "busy" instead of queueing work that
would only be done too late."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class BoundedPool:
    """`threads` run at once; at most `backlog` more wait; beyond that `try_submit` says no."""

    def __init__(self, threads: int, backlog: int, name: str):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._room = threading.BoundedSemaphore(threads + backlog)

    def try_submit(self, work: Callable[..., object], /, *args: object) -> bool:
        """Run `work(*args)` on the pool, or return False at once when it is full."""
        if not self._room.acquire(blocking=False):
            return False
        try:
            self._pool.submit(self._run, work, args)
        except RuntimeError:  # shutting down
            self._room.release()
            return False
        return True

    def _run(self, work: Callable[..., object], args: tuple) -> None:
        try:
            work(*args)
        except Exception:
            log.exception("work after an ack failed")
        finally:
            self._room.release()

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)

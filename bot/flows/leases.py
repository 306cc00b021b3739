"""Leases on running generations: this process's name on them, and the keeper that renews every
lease the process holds, so a process that dies loses its generations to another within one
lease."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from sqlalchemy import Engine

from bot.core.clock import SYSTEM_CLOCK, Clock
from storage.generations import renew_lease

log = logging.getLogger(__name__)

# How a lease is renewed: (engine, id, owner=, lease_seconds=, now=) -> still held.
Renew = Callable[..., bool]


def owner_name() -> str:
    """A name for what this process holds: host, pid and a nonce (pids are reused, and a
    forked child must not take its parent's name)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(Exception):
    """Another process took this generation over (or it was failed): stop posting."""


class HandedBack(Exception):
    """This process is stopping: the generation went back to the queue to be resumed."""


class LeaseKeeper:
    """Renews the leases of the generations this process runs, all in one thread, every third
    of the lease. A generation whose renewal fails has been taken over: it is marked lost and
    its loop stops before posting anything more."""

    def __init__(self, engine: Engine, lease_seconds: float, clock: Clock = SYSTEM_CLOCK):
        self.engine = engine
        self.owner = owner_name()
        self.seconds = lease_seconds
        self.clock = clock
        self._held: dict[str, threading.Event] = {}
        self._renewers: dict[str, Renew] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Set when this process stops: each generation hands itself back at its next email.
        self.draining = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def hold(self, generation_id: str, renew: Renew = renew_lease) -> threading.Event:
        """Start renewing `generation_id`'s lease (with `renew`: a lead list's is renewed on
        its own table); the event is set once the lease is lost."""
        lost = threading.Event()
        with self._lock:
            self._held[generation_id] = lost
            self._renewers[generation_id] = renew
        return lost

    def drop(self, generation_id: str) -> None:
        with self._lock:
            self._held.pop(generation_id, None)
            self._renewers.pop(generation_id, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def stop_all(self) -> None:
        """Every generation held here stops at once (they were handed back for resumption)."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for lost in held:
            lost.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def renew(self) -> None:
        """One pass: renew every lease held, marking lost those another process has taken."""
        for generation_id in self.held():
            try:
                with self._lock:
                    renew = self._renewers.get(generation_id, renew_lease)
                kept = renew(
                    self.engine,
                    generation_id,
                    owner=self.owner,
                    lease_seconds=self.seconds,
                    now=self.clock.now(),
                )
            except Exception as exc:  # the database is away: the lease may still run out
                log.warning("could not renew a lease: %s", exc)
                continue
            if not kept:
                with self._lock:
                    lost = self._held.pop(generation_id, None)
                if lost is not None:
                    lost.set()

    def _loop(self) -> None:
        while not self.clock.wait(self._stop, self.seconds / 3):
            self.renew()

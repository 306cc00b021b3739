"""The embedded mode's runner: generations run on a thread pool in this process (they wait on
the model, not the CPU, so one process holds many at once), and a stopping process lets them
finish for a while before handing the rest back for resumption."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bot.core.clock import SYSTEM_CLOCK, Clock
from bot.core.dispatch import LEAD_LIST, TryLater
from bot.flows.jobs import run_job
from bot.flows.leases import LeaseKeeper
from bot.flows.sweeper import Announcer
from bot.slack.services import Services
from storage.db import UNAVAILABLE_ERRORS
from storage.generations import hand_back
from storage.lead_leases import hand_back_list

log = logging.getLogger(__name__)
# A job whose claim found the database unavailable runs again after this long.
DATABASE_RETRY_SECONDS = 2.0

# After the grace period, how long generations get to hand themselves back at their next email
# before the rest (still waiting on the model) are handed back from here.
DRAIN_SECONDS = 5.0


class InProcessPool:
    """A Dispatcher running generations on this process's own threads."""

    def __init__(self, services: Services, threads: int, clock: Clock = SYSTEM_CLOCK):
        self.services = services
        self.keeper = LeaseKeeper(services.engine, services.settings.lease_seconds, clock).start()
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="generation")
        self._waiting: set[str] = set()
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.announcer = Announcer(services, clock=clock).start()

    def dispatch(self, generation_id: str) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("shutting down")
            if generation_id in self._waiting:
                return
            self._waiting.add(generation_id)
        self.pool.submit(self._run, generation_id)

    def _run(self, generation_id: str) -> None:
        retry: float | None = None
        try:
            run_job(self.services, self.keeper, generation_id)
        except TryLater as busy:
            retry = busy.delay
        except UNAVAILABLE_ERRORS as exc:
            # Its claim could not reach the database (SQLite busy past its timeout under a
            # burst, a restart): the job is not dropped, it is tried again shortly.
            log.warning(
                "database unavailable for a job, trying again in %g s: %s",
                DATABASE_RETRY_SECONDS,
                exc,
                extra={"generation_id": generation_id},
            )
            retry = DATABASE_RETRY_SECONDS
        except Exception:
            log.exception("generation job failed", extra={"generation_id": generation_id})
        finally:
            with self._lock:
                self._waiting.discard(generation_id)
        if retry is not None:
            self._later(generation_id, retry)

    def _later(self, generation_id: str, delay: float) -> None:
        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            # Shutting down: the generation waits in the queue for the next start.
            with contextlib.suppress(RuntimeError):
                self.dispatch(generation_id)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers.add(timer)
        timer.start()

    def waiting(self, generation_ids: list[str]) -> set[str]:
        with self._lock:
            return self._waiting.intersection(generation_ids)

    def shutdown(self, grace: float) -> None:
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
        self.announcer.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)
        drain(self.services, self.keeper, grace)
        self.keeper.stop()


def drain(services: Services, keeper: LeaseKeeper, grace: float) -> list[str]:
    """Let running generations finish for `grace` seconds; then each hands itself back at
    its next email; what is still waiting on the model after that is handed back here.
    Returns the generations handed back (to be resumed by another process)."""
    deadline = time.monotonic() + grace
    while keeper.held() and time.monotonic() < deadline:
        time.sleep(0.1)
    handed = keeper.held()
    keeper.draining.set()
    deadline = time.monotonic() + DRAIN_SECONDS
    while keeper.held() and time.monotonic() < deadline:
        time.sleep(0.05)
    for job_id in keeper.held():
        # A lead list's lease is on its own table: left running, it would wait out the lease
        # and come back as a takeover (counted towards its limit) instead of a hand-back.
        if job_id.startswith(LEAD_LIST):
            handed_back = hand_back_list(
                services.engine, job_id.removeprefix(LEAD_LIST), owner=keeper.owner
            )
        else:
            handed_back = hand_back(services.engine, job_id, owner=keeper.owner)
        if handed_back:
            log.info("handed back for resumption", extra={"generation_id": job_id})
    return handed

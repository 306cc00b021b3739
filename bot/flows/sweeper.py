"""The passes that keep work moving when nobody asks: the sweeper (a dead process's generations
taken over, lost jobs handed on, generations no worker started failed and told), the announcer
(the parent message of a generation waiting for a free worker, with its place in the queue),
retention, and the start-up pass that resumes this host's own orphans at once.

Each pass is a plain call taking the time from a `Clock`; `Periodic` runs one on a thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from bot.core.clock import SYSTEM_CLOCK, Clock
from bot.core.dispatch import LEAD_LIST, Dispatcher
from bot.flows.endings import fail_generation, thread_for
from bot.flows.leases import owner_name
from bot.slack.blocks import Progress
from bot.slack.services import Services
from storage.generations import (
    end_announcement,
    expire_leases,
    never_started,
    orphaned_generations,
    queue_position,
    running_owners,
    take_announcements,
    touch_queued,
)
from storage.lead_leases import expire_list_leases, list_owners, orphaned_lead_lists
from storage.models import GenerationStatus
from storage.retention import erase_expired_briefs

log = logging.getLogger(__name__)

# A generation no worker has started after this long gets its parent message ("Queued: N
# ahead of you") from the announcer of a process that runs generations; one a worker starts
# sooner gets it from that worker, already saying "Writing".
ANNOUNCE_AFTER = timedelta(seconds=1)
ANNOUNCE_BATCH = 50
# With no worker at all, `serve`'s sweeper announces what waited this share of
# COLDCOPY_STUCK_AFTER, so users hear where they stand long before a failure notice.
STUCK_NOTICE_FRACTION = 6
# A queued generation untouched this long may have lost its job (its process died between
# accepting it and handing it on): it is handed on again.
REDISPATCH_AFTER = timedelta(seconds=20)
RETENTION_EVERY = timedelta(hours=1)

NEVER_STARTED = "ColdCopy couldn't start writing this sequence in time: no worker was free."


def sweep(
    services: Services,
    dispatcher: Dispatcher,
    *,
    queued_for: timedelta = REDISPATCH_AFTER,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """Hand on the work no process is doing: generations whose lease expired (taken over and
    resumed by whoever claims them), queued ones whose job was lost, and tell the users whose
    request waited too long for any worker. Returns how many it handled."""
    now = clock.now()
    handled = 0
    waited = timedelta(seconds=services.settings.stuck_after)
    for gen in never_started(services.engine, waited=waited, now=now):
        log.warning(
            "no worker started this generation in time",
            extra={"generation_id": gen.id, "team_id": gen.team_id},
        )
        fail_generation(services, gen, None, NEVER_STARTED, "never started", None)
        handled += 1
    orphans = orphaned_generations(services.engine, queued_for=queued_for, now=now)
    # One question to the queue for all of them: a deep backlog is not a query per row.
    waiting = dispatcher.waiting([g.id for g in orphans if g.status == GenerationStatus.QUEUED])
    for gen in orphans:
        context = {"generation_id": gen.id, "team_id": gen.team_id}
        if gen.status == GenerationStatus.QUEUED:
            if gen.id in waiting:
                continue
            touch_queued(services.engine, gen.id, now=now)
        else:
            log.warning("lease expired: handing the generation on for takeover", extra=context)
        try:
            dispatcher.dispatch(gen.id)
            handled += 1
        except Exception:
            log.exception("could not hand a generation on", extra=context)
    return handled + sweep_lead_lists(services, dispatcher, clock=clock)


def sweep_lead_lists(services: Services, dispatcher: Dispatcher, *, clock: Clock) -> int:
    """Hand on the lead lists nobody runs: a dead process's (its lease ran out), queued ones
    whose job is not waiting, and finished ones whose files nobody is delivering; whoever
    claims one writes only the leads not yet saved, or delivers the files once."""
    jobs = [LEAD_LIST + i for i in orphaned_lead_lists(services.engine, now=clock.now())]
    waiting = dispatcher.waiting(jobs)
    handled = 0
    for job_id in jobs:
        if job_id in waiting:
            continue
        try:
            dispatcher.dispatch(job_id)
            handled += 1
        except Exception:
            log.exception("could not hand a lead list on", extra={"list_id": job_id})
    return handled


def announce_waiting(
    services: Services,
    owner: str,
    *,
    waited: timedelta = ANNOUNCE_AFTER,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    """Post the parent message of each generation that has waited `waited` for a worker,
    saying where it stands in the queue; the worker that claims it continues this thread.
    Returns how many were announced."""
    announced = 0
    for gen in take_announcements(
        services.engine,
        owner=owner,
        waited=waited,
        lease_seconds=services.settings.lease_seconds,
        limit=ANNOUNCE_BATCH,
        now=clock.now(),
    ):
        context = {"generation_id": gen.id, "team_id": gen.team_id}
        thread = thread_for(services, gen)
        try:
            thread.open(Progress(queued_ahead=queue_position(services.engine, gen.id)))
        except Exception as exc:  # the worker opens the thread itself when it starts
            log.warning("could not announce a queued generation: %s", exc, extra=context)
            end_announcement(services.engine, gen.id, owner=owner, posted=None)
            continue
        if end_announcement(
            services.engine, gen.id, owner=owner, posted=(thread.channel, thread.ts)
        ):
            announced += 1
        else:  # held past its lease: a worker has opened the thread since; no second parent
            thread.retract()
    return announced


def resume_local_orphans(services: Services, dispatcher: Dispatcher) -> int:
    """At start-up: the generations that processes of this host were running when they died
    are taken over now, not when their leases would have run out (a restarted `serve`
    resumes its own orphans at once)."""
    host = socket.gethostname()
    dead = []
    for owner in {*running_owners(services.engine), *list_owners(services.engine)}:
        name, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if name == host and pid.isdigit() and not _alive(int(pid)):
            dead.append(owner)
    expire_leases(services.engine, dead)
    expire_list_leases(services.engine, dead)
    return sweep(services, dispatcher, queued_for=timedelta(0))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier process with our pid (containers reuse pid 1)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Periodic:
    """Runs `run_once` every `interval` seconds of `clock` in a daemon thread until stopped; a
    failing pass is logged and the next one runs as usual."""

    name = "periodic"

    def __init__(self, interval: float, clock: Clock = SYSTEM_CLOCK):
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def run_once(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self.clock.wait(self._stop, self.interval):
            try:
                self.run_once()
            except Exception as exc:
                log.warning("%s pass failed: %s", self.name, exc)


class Sweeper(Periodic):
    """Runs `sweep` every few seconds: a dead process's generations are taken over within one
    lease plus one interval. It also announces the generations no worker has started in a
    sixth of `COLDCOPY_STUCK_AFTER` (30 s by default): with every worker down, nobody else
    would tell their users where they stand before they are told it failed. Draft campaigns
    left silent by a dead process start again. Once an hour it
    deletes what the retention period no longer allows to keep."""

    name = "sweeper"

    def __init__(
        self,
        services: Services,
        dispatcher: Dispatcher,
        interval: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        super().__init__(interval or max(1.0, services.settings.lease_seconds / 3), clock)
        self.services = services
        self.dispatcher = dispatcher
        self.owner = owner_name()
        self._retention_due = clock.now()

    def run_once(self) -> None:
        sweep(self.services, self.dispatcher, clock=self.clock)
        waited = timedelta(seconds=self.services.settings.stuck_after / STUCK_NOTICE_FRACTION)
        announce_waiting(self.services, self.owner, waited=waited, clock=self.clock)
        self.resume_drafts()
        self.retain()

    def resume_drafts(self) -> None:
        """Draft campaigns a dead process left silent are started again (on the job queue when
        there is one): nobody who chose "Send to..." waits for a restart to hear back."""
        try:
            resumed = self.services.work.resume_drafts()
        except Exception:
            log.exception("resuming abandoned drafts failed")
            return
        if resumed:
            log.info("resuming %d drafts a stopped process left unfinished", resumed)

    def retain(self) -> None:
        """Delete expired briefs and sequences, at most once per `RETENTION_EVERY`."""
        now = self.clock.now()
        if now < self._retention_due:
            return
        self._retention_due = now + RETENTION_EVERY
        try:
            cleared = erase_expired_briefs(
                self.services.engine, self.services.settings.retention_days, now=now
            )
        except Exception:
            log.exception("retention pass failed")
            return
        if cleared:
            log.info("deleted the briefs and sequences of %d expired generations", cleared)


class Announcer(Periodic):
    """In a process that runs generations: every second, the parent message of each that has
    waited `ANNOUNCE_AFTER` for a worker (every worker busy) says where it stands in the
    queue. A process that only accepts requests leaves that to the workers (its sweeper
    steps in only when none has started a generation for a long while): in the scale-out
    mode a submission costs `serve` no Slack call."""

    name = "announcer"

    def __init__(self, services: Services, interval: float = 1.0, clock: Clock = SYSTEM_CLOCK):
        super().__init__(interval, clock)
        self.services = services
        self.owner = owner_name()

    def run_once(self) -> None:
        announce_waiting(self.services, self.owner, clock=self.clock)

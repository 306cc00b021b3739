"""Personalising a lead list: claim the list with a lease and its share of the model cap, write
each lead's opening and save it the moment it arrives, show progress, and finish: the leads
not written given back, then the lead files to the thread. A process that dies loses its
lease; whoever claims the list next writes only the leads not yet saved, or, if it had
finished, delivers the files it never posted.

The list's row and its saved answers are the source of truth (storage/lead_lists.py): a lead
is saved once (its key), and billed as what was saved, so a takeover neither writes nor bills a
lead twice, and loses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bot.core.dispatch import LEAD_LIST, TryLater
from bot.core.memory import give_back_freed_memory
from bot.flows.leases import HandedBack, LeaseKeeper
from bot.slack.lead_thread import LeadThread, lead_thread_for
from bot.slack.services import Services
from bot.writing.brief import Brief
from bot.writing.events import WriterError
from bot.writing.lead_list import LeadList, LeadListRefused, read_lead_list
from bot.writing.personal_prompt import PersonalOpening, list_prefix
from bot.writing.personal_writer import Openings
from storage.generations import get_generation
from storage.lead_leases import (
    ListsBusy,
    claim_delivery,
    claim_lead_list,
    hand_back_list,
    mark_delivered,
    renew_list_lease,
    resize_list_slots,
)
from storage.lead_lists import (
    LeadListRow,
    finish_lead_list,
    get_lead_list,
    is_cancelled,
)
from storage.lead_models import LeadListStatus
from storage.lead_results import LeadAnswer, save_answer, saved_answers

log = logging.getLogger(__name__)

# How soon a list waiting for its share of the model cap asks again.
SLOT_WAIT = 2.0
# How often the run looks at its lease, a cancel and a stopping process while leads are written.
CHECK_EVERY = 0.5
# A lead the model could not be reached for is tried again this many times, then the list fails.
LEAD_RETRIES = 3
RETRY_DELAY = 2.0
MAX_TAKEOVERS = 3
# Threads for a list's database calls (saving answers, looking for a cancel): the model calls
# themselves wait on the event loop, not on threads.
DB_THREADS = 2


def renew(engine, job_id: str, **kwargs) -> bool:
    return renew_list_lease(engine, job_id.removeprefix(LEAD_LIST), **kwargs)


def run_lead_list(services: Services, keeper: LeaseKeeper, list_id: str) -> None:
    """Claim and run (or resume) one list. Raises TryLater while lists hold their whole share
    of the model cap. Safe to call any number of times."""
    settings = services.settings
    claim = claim_lead_list(
        services.engine,
        list_id,
        owner=keeper.owner,
        lease_seconds=keeper.seconds,
        model_cap=settings.model_concurrency,
        share=settings.lead_share,
        now=keeper.clock.now(),
    )
    if isinstance(claim, ListsBusy):
        raise TryLater(SLOT_WAIT)
    if claim is not None:
        job_id = LEAD_LIST + list_id
        lost = keeper.hold(job_id, renew=renew)
        try:
            LeadListRun(services, keeper, claim.lead_list, lost).run()
        except HandedBack:
            log.info("lead list handed back for resumption", extra={"list_id": list_id})
        finally:
            keeper.drop(job_id)
    # Also when the list was not ours to write: one that succeeded in a process that died
    # before its files reached the thread is delivered by whoever claims the delivery.
    deliver_lead_list(services, keeper, list_id)


def deliver_lead_list(services: Services, keeper: LeaseKeeper, list_id: str) -> bool:
    """Post a succeeded list's lead files to its thread, once: the delivery is claimed by one
    conditional UPDATE and recorded after the upload, so a process killed in between leaves
    it to the next claimant, and two processes never both post. False when there was nothing
    to deliver here (not succeeded, already delivered, or being delivered elsewhere)."""
    engine = services.engine
    if not claim_delivery(
        engine, list_id, owner=keeper.owner, lease_seconds=keeper.seconds, now=keeper.clock.now()
    ):
        return False
    job_id = LEAD_LIST + list_id
    lost = keeper.hold(job_id, renew=renew)
    try:
        row = get_lead_list(engine, list_id)
        leads = _read_leads(engine, list_id)
        gen = get_generation(engine, row.generation_id) if row is not None else None
        if lost.is_set():  # stopping, or taken over: whoever holds the delivery next posts
            return False
        # A list erased since (retention, a forgotten workspace) has nothing left to send.
        if isinstance(leads, LeadList) and gen is not None:
            answers = by_email(leads, saved_answers(engine, list_id))
            lead_thread_for(services, row).deliver(leads, answers, gen)
        delivered = mark_delivered(engine, list_id, owner=keeper.owner)
    finally:
        keeper.drop(job_id)
    log.info("lead files delivered", extra={"list_id": list_id})
    return delivered


class LeadListRun:
    """One process's attempt at one claimed list."""

    def __init__(
        self, services: Services, keeper: LeaseKeeper, row: LeadListRow, lost: threading.Event
    ):
        self.services = services
        self.keeper = keeper
        self.row = row
        self.lost = lost
        self.stopped = False  # the writing stopped early: a cancel, a stopping process
        self.context = {"list_id": row.id, "team_id": row.team_id}
        self.thread: LeadThread = lead_thread_for(services, row)
        self.done = 0
        self.slots = row.slots
        # What the API said of the cached prefix, per lead: after the first lead of a list,
        # anything but "read" means the prefix was too short for the model or changed.
        self.cache: Counter[str] = Counter()

    def run(self) -> None:
        if self.row.takeovers > MAX_TAKEOVERS:
            self._end(LeadListStatus.FAILED, "ColdCopy's workers stopped too often on this list.")
            return
        leads = _read_leads(self.services.engine, self.row.id)
        give_back_freed_memory()  # the file's bytes and its decoded text, read once
        gen = get_generation(self.services.engine, self.row.generation_id)
        if not isinstance(leads, LeadList) or gen is None or not gen.brief or not gen.sequence:
            self._end(LeadListStatus.FAILED, "This list or its sequence can no longer be read.")
            return
        prefix = list_prefix(Brief(**gen.brief), gen.sequence)
        saved = saved_answers(self.services.engine, self.row.id)
        todo = [i for i in range(len(leads.leads)) if i not in saved]
        self.done = len(saved)
        self.thread.started(self.done, len(leads.leads))
        log.info("lead list: %d of %d to write", len(todo), len(leads.leads), extra=self.context)
        outcome = self._write_all(leads, prefix, todo)
        if outcome is not None:
            self._end(*outcome)
            return
        # Finished first (billed, the rest given back), then delivered by `deliver_lead_list`:
        # the files wait in the database for whoever delivers them if this process dies.
        written = finish_lead_list(
            self.services.engine, self.row.id, status=LeadListStatus.SUCCEEDED
        )
        if written is None:  # ended meanwhile (cancelled and finished by another process)
            return
        log.info(
            "lead list finished: %d leads; prompt cache %s",
            written,
            dict(self.cache),
            extra=self.context,
        )

    def _write_all(self, leads: LeadList, prefix, todo: list[int]) -> tuple[str, str] | None:
        """Write every lead of `todo`, `row.slots` at once. None when all were saved, else
        (status, message) to end the list with. Raises HandedBack when this process stops."""
        with ThreadPoolExecutor(DB_THREADS, thread_name_prefix="lead-db") as db:
            failure = asyncio.run(_Writing(self, leads, prefix, db).all(todo))
        if self.lost.is_set():
            log.warning("lost the lead list's lease: another process goes on", extra=self.context)
            raise HandedBack
        if failure is not None:
            return LeadListStatus.FAILED, failure.user_message
        if is_cancelled(self.services.engine, self.row.id):
            return LeadListStatus.CANCELLED, "Cancelled."
        if self.keeper.draining.is_set() and self.stopped:
            hand_back_list(self.services.engine, self.row.id, owner=self.keeper.owner)
            raise HandedBack
        return None

    def _resize(self) -> None:
        """Give model slots back while sequences wait for one; take them again after."""
        settings = self.services.settings
        slots = resize_list_slots(
            self.services.engine,
            self.row.id,
            owner=self.keeper.owner,
            model_cap=settings.model_concurrency,
            share=settings.lead_share,
        )
        if slots is not None:
            self.slots = slots

    def _end(self, status: str, message: str) -> None:
        written = finish_lead_list(self.services.engine, self.row.id, status=status, error=message)
        if written is not None:
            self.thread.ended(status, message, written, self.row.total)
        log.info("lead list ended (%s): %s", status, message, extra=self.context)


class _Writing:
    """A list's leads written on one event loop on the job's thread: `run.slots` model calls at
    once, each answer saved on a database thread the moment it arrives. Every CHECK_EVERY it
    looks at the lease, a cancel, a stopping process and the list's share of the model cap.
    A stop starts no new lead and no retry; the answers already on their way are saved."""

    def __init__(self, run: LeadListRun, leads: LeadList, prefix, db: ThreadPoolExecutor):
        self.run = run
        self.leads = leads
        self.prefix = prefix
        self.db = db
        self.failure: WriterError | None = None
        self.crash: BaseException | None = None
        self.stop = asyncio.Event()  # no new lead, no retry

    async def _blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    async def all(self, todo: list[int]) -> WriterError | None:
        run = self.run
        # Name lookups for the model's connections too, rather than a default pool of six.
        asyncio.get_running_loop().set_default_executor(self.db)
        pending = iter(todo)
        running: set[asyncio.Task] = set()
        total = len(self.leads.leads)
        try:
            openings = run.services.writer.openings()
        except WriterError as exc:
            return exc
        async with openings:

            def refill() -> None:
                while len(running) < max(1, run.slots) and not self.stop.is_set():
                    index = next(pending, None)
                    if index is None:
                        return
                    running.add(asyncio.create_task(self._one(openings, index)))

            refill()
            last_check = time.monotonic()
            while running:
                finished, _ = await asyncio.wait(
                    running, timeout=CHECK_EVERY, return_when=asyncio.FIRST_COMPLETED
                )
                running.difference_update(finished)
                for task in finished:  # a save that failed: nothing may end in silence
                    self.crash = self.crash or task.exception()
                if self.failure or self.crash or run.lost.is_set():
                    self.stop.set()
                elif time.monotonic() - last_check >= CHECK_EVERY:
                    last_check = time.monotonic()
                    if run.keeper.draining.is_set() or await self._blocking(
                        is_cancelled, run.services.engine, run.row.id
                    ):
                        self.stop.set()
                    await self._blocking(run._resize)
                await self._blocking(run.thread.progress, run.done, total)
                refill()
        run.stopped = self.stop.is_set()
        if self.crash is not None:
            raise self.crash
        return self.failure

    async def _one(self, openings: Openings, index: int) -> None:
        run = self.run
        lead = self.leads.leads[index]
        for attempt in range(LEAD_RETRIES + 1):
            if self.stop.is_set():
                return
            try:
                written = await openings.write(self.prefix, lead)
                break
            except WriterError as exc:
                if exc.kind == "misconfigured" or attempt == LEAD_RETRIES:
                    self.failure = self.failure or exc
                    return
                # Wait before trying again, unless the list stops meanwhile.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), RETRY_DELAY * (attempt + 1))
        else:
            return
        if run.lost.is_set():
            return  # the new holder writes it; saving is harmless but says nothing new
        opening = written.opening
        answer = LeadAnswer(
            lead_index=index,
            email=lead.email,
            opening=opening.opening if opening else None,
            subject_a=opening.subject_a if opening else None,
            too_little=opening.too_little if opening else True,
            model=written.model,
            tokens=written.tokens,
        )
        engine = run.services.engine
        run.done += await self._blocking(save_answer, engine, run.row.id, run.row.team_id, answer)
        run.cache[written.cache] += 1


def _read_leads(engine, list_id: str) -> LeadList | LeadListRefused | None:
    """The list's leads, parsed from its stored file; the file's bytes are not kept past this
    (5 MB of them, beside the parsed leads, for the whole run)."""
    row = get_lead_list(engine, list_id, with_source=True)
    return read_lead_list(row.source or b"") if row is not None else None


def by_email(leads: LeadList, answers: dict[int, LeadAnswer]) -> dict[str, PersonalOpening]:
    """The saved answers keyed as the lead files want them; a lead left for review has none."""
    out: dict[str, PersonalOpening] = {}
    for index, answer in answers.items():
        if answer.opening and answer.subject_a and index < len(leads.leads):
            out[leads.leads[index].email] = PersonalOpening.model_construct(
                opening=answer.opening, subject_a=answer.subject_a, too_little=answer.too_little
            )
    return out

"""How an accepted piece of work reaches whatever runs it: the interface both runtimes
implement (the embedded mode's in-process pool, the scale-out mode's PostgreSQL job queue)."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """Hands accepted generations to whatever runs them."""

    def dispatch(self, generation_id: str) -> None:
        """Have the generation run soon; raises when it could not be handed on."""

    def waiting(self, generation_ids: list[str]) -> set[str]:
        """Those of `generation_ids` known to be waiting to run (not lost)."""

    def shutdown(self, grace: float) -> None:
        """Stop taking work; let running generations finish for up to `grace` seconds, then
        hand the rest back to the queue so another process resumes them."""


# Job ids of lead lists carry this prefix: both runtimes hand them on like generations, and
# bot/flows/jobs.py runs each as what it is.
LEAD_LIST = "lead-list:"


class TryLater(Exception):
    """The work could not start or go on for now (the model's cap, the model asking us to slow
    down, its parent message being posted elsewhere); run it again after `delay` seconds."""

    def __init__(self, delay: float):
        super().__init__(f"retry in {delay:.0f} s")
        self.delay = delay


def hand_on(dispatcher: Dispatcher, generation_id: str) -> None:
    """After a submission was accepted: hand its generation to a worker. It cannot be lost
    here: the row is already written, and the sweeper hands on a queued generation whose job
    went missing."""
    try:
        dispatcher.dispatch(generation_id)
    except Exception as exc:
        log.error(
            "could not hand a generation to a worker yet: %s",
            exc,
            extra={"generation_id": generation_id},
        )

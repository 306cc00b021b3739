"""One entry for every job the dispatchers hand on: a generation, or a lead list (its id
prefixed with `LEAD_LIST`), so both runtimes run both without a queue of their own."""

from __future__ import annotations

from bot.core.dispatch import LEAD_LIST
from bot.flows.generation import run_generation
from bot.flows.lead_job import run_lead_list
from bot.flows.leases import LeaseKeeper
from bot.slack.services import Services


def run_job(services: Services, keeper: LeaseKeeper, job_id: str) -> None:
    """Run (or resume) the job; raises TryLater when it must wait."""
    if job_id.startswith(LEAD_LIST):
        run_lead_list(services, keeper, job_id.removeprefix(LEAD_LIST))
    else:
        run_generation(services, keeper, job_id)

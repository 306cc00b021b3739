"""Send a finished sequence, alone or with one of its personalised lead lists, to a sending tool
as a draft campaign: a job on this process's pool after the click was acked, working from the
claimed draft row (storage/drafts.py), so a second click finds it and a stopped attempt resumes
from its progress record without duplicates (leads included). The thread gets the draft's link,
or what stopped it with a Resume button."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.flows.list_leads import ListLeads, list_leads
from bot.sequencers import SEQUENCERS, DraftFailed, Progress, SequencerError, draft_from_sequence
from bot.slack.block_kit import Message
from bot.slack.sending_blocks import (
    LIST_GONE,
    draft_link_message,
    draft_stopped_message,
    list_leads_text,
    tool_label,
)
from bot.slack.services import Services
from storage.connections import connection_key
from storage.drafts import (
    abandoned_drafts,
    finish_draft,
    get_draft,
    requeue_draft,
    save_progress,
    start_draft,
    stop_draft,
)
from storage.generations import GenerationRow, get_generation

log = logging.getLogger(__name__)

# Drafts wait on the tools' APIs (and their rate limits), not the CPU.
SENDING_THREADS = 16
DEFAULT_TIMEZONE = "UTC"


class DraftSender:
    """Runs draft jobs after their click was acknowledged: on the PostgreSQL job queue that
    `coldcopy worker` runs, when the wiring hands one over (`hand_on`), else on threads of this
    process (the embedded mode, which picks up abandoned drafts at start-up)."""

    def __init__(self, services: Services, threads: int = SENDING_THREADS):
        self.services = services
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="send")
        self.hand_on: Callable[[str], None] | None = None

    def send(self, draft_id: str) -> None:
        if self.hand_on is not None:
            self.hand_on(draft_id)
        else:
            self.pool.submit(self._run, draft_id)

    def resume_abandoned(self) -> int:
        """Drafts a dead process left queued or running (silent past STALE_AFTER) start again;
        their progress records make them continue, not start over."""
        resumed = 0
        for draft_id in abandoned_drafts(self.services.engine):
            if requeue_draft(self.services.engine, draft_id):
                self.send(draft_id)
                resumed += 1
        return resumed

    def _run(self, draft_id: str) -> None:
        try:
            run_draft(self.services, draft_id)
        except Exception:
            log.exception("draft job failed", extra={"kind": "send"})

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class DraftWithdrawn(Exception):
    """The draft's row is gone (its workspace was erased) or no longer running: stop sending."""


def campaign_name(gen: GenerationRow, leads: ListLeads | None = None) -> str:
    """Distinct for the sequence alone and for each of its lists: a client that lost an answer
    finds its campaign again by this name."""
    brief = gen.brief or {}
    company = brief.get("company") or "Sequence"
    title = brief.get("job_title") or ""
    if leads is None:
        return f"{company} · {title} (ColdCopy {gen.id[:8]})"[:200]
    tail = f" (ColdCopy {gen.id[:8]}, list {leads.list_id[:8]})"
    return f"{company} · {title} · {leads.filename}"[: 200 - len(tail)] + tail


def _state(timezone: str, progress: Progress | None) -> dict:
    return {"timezone": timezone, "record": asdict(progress) if progress else None}


def run_draft(services: Services, draft_id: str) -> None:
    """Create (or finish) the claimed draft `draft_id` in its tool; only one attempt at a time
    gets past `start_draft`."""
    engine = services.engine
    if not start_draft(engine, draft_id):
        return
    draft = get_draft(engine, draft_id)
    gen = get_generation(engine, draft.generation_id) if draft else None
    if draft is None or gen is None:
        return
    client = services.slack.client(gen.team_id, gen.enterprise_id)
    state = draft.progress or {}
    timezone = state.get("timezone") or DEFAULT_TIMEZONE
    record = Progress(**state["record"]) if state.get("record") else None
    label = tool_label(draft.tool)

    def stopped(error: str, progress: Progress | None, url: str | None) -> None:
        stop_draft(
            engine,
            draft_id,
            error=error,
            progress=_state(timezone, progress) if progress else None,
            url=url,
        )
        _post(client, gen, draft_stopped_message(draft.tool, error, draft_id))

    cipher = services.cipher
    key = connection_key(engine, cipher, gen.team_id, draft.tool) if cipher else None
    if key is None:
        stopped(
            f"{label} is not connected: an admin adds its API key under Sending tools (App Home).",
            record,
            draft.url,
        )
        return
    leads: ListLeads | None = None
    if draft.lead_list_id:
        # Read at every attempt: a list erased since the click (retention, forget) sends nobody.
        leads = list_leads(engine, draft.lead_list_id, gen.team_id, draft.tool, gen.sequence or [])
        if leads is None:
            stop_draft(engine, draft_id, error=LIST_GONE, progress=None, url=draft.url)
            _post(client, gen, Message(text=LIST_GONE, blocks=None))
            return
    try:
        plan = draft_from_sequence(
            campaign_name(gen, leads),
            leads.emails if leads else gen.sequence or [],
            timezone,
            leads.leads if leads else (),
        )
    except ValueError as exc:
        stopped(f"This sequence can't be sent to {label} as it is: {exc}.", record, None)
        return
    tool = SEQUENCERS[draft.tool].connect(key, services.settings.sequencer_url(draft.tool))

    def saved(progress: Progress) -> None:
        if not save_progress(engine, draft_id, _state(timezone, progress)):
            raise DraftWithdrawn(draft_id)

    try:
        result = tool.create_draft(plan, progress=record, on_progress=saved)
    except DraftWithdrawn:
        log.info("draft withdrawn while it was created", extra={"draft_id": draft_id})
        return
    except DraftFailed as failure:
        stopped(failure.message, failure.progress, failure.url)
        return
    except SequencerError as exc:
        stopped(exc.message, record, draft.url)
        return
    finally:
        tool.close()
    finish_draft(engine, draft_id, url=result.url, progress=_state(timezone, result.progress))
    notes = " ".join(result.notes)
    if leads is not None:
        counts = (result.leads_added, len(leads.leads), leads.plain, leads.unwritten)
        notes = f"{list_leads_text(*counts, leads.invalid)} {notes}".strip()
    _post(client, gen, draft_link_message(draft.tool, result.url, notes=notes))


def _post(client: WebClient, gen: GenerationRow, message: Message) -> None:
    try:
        client.chat_postMessage(
            channel=gen.posted_channel_id or gen.channel_id,
            thread_ts=gen.parent_ts,
            text=message.text,
            blocks=message.blocks,
        )
    except SlackApiError as exc:
        count_slack_error("chat.postMessage", exc)

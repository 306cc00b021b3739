"""A lead list in its sequence's thread: one progress message ("Personalising 340 of 1,000")
with a Cancel button, updated at most every few seconds (chat.update is a Tier 3 method, about
50 calls a minute per workspace: https://docs.slack.dev/reference/methods/chat.update), then
the lead files uploaded into the thread. A list started outside Slack has no thread: the same
calls do nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from functools import partial

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error, slack_error
from bot.slack import constants as K
from bot.slack.file_shares import share_files
from bot.slack.sending_blocks import send_menu
from bot.slack.services import Services
from bot.writing.export import ExportFile
from bot.writing.lead_files import LEAD_FORMATS, lead_csv, personal_email_one, sequencer_lead_file
from bot.writing.lead_list import LeadList
from storage.generations import GenerationRow
from storage.lead_leases import record_progress_message
from storage.lead_lists import LeadListRow
from storage.lead_models import LeadListStatus

log = logging.getLogger(__name__)

# Seconds between two updates of the progress message: well inside chat.update's tier.
PROGRESS_EVERY = 3.0


class LeadThread:
    """What a list shows; this base shows nothing (a list run from a script or a test)."""

    def started(self, done: int, total: int) -> None: ...

    def progress(self, done: int, total: int) -> None: ...

    def deliver(self, leads: LeadList, answers: dict, gen: GenerationRow) -> None: ...

    def ended(self, status: str, message: str, written: int, total: int) -> None: ...


def progress_text(done: int, total: int) -> str:
    return f"Personalising {done:,} of {total:,} leads…"


# Shown with the progress of a list another process took over (its own died or stopped).
RESUMED_NOTE = "Picked up again where it stopped. "


def progress_blocks(list_id: str, done: int, total: int, note: str = "") -> list[dict]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": note + progress_text(done, total)}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": K.LEAD_CANCEL_ACTION,
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "style": "danger",
                    "value": list_id,
                }
            ],
        },
    ]


class SlackLeadThread(LeadThread):
    def __init__(self, client: WebClient, services: Services, row: LeadListRow, channel: str):
        self.client = client
        self.services = services
        self.engine = services.engine
        self.row = row
        self.channel = channel
        self.ts = row.progress_ts
        self._last = 0.0
        self._shown = -1
        self._lock = threading.Lock()
        self.note = ""

    def started(self, done: int, total: int) -> None:
        if done and self.ts is not None:  # a takeover: the same message goes on
            self.note = RESUMED_NOTE
        if self.ts is None:
            try:
                answer = self.client.chat_postMessage(
                    channel=self.channel,
                    thread_ts=self.row.thread_ts,
                    text=progress_text(done, total),
                    blocks=progress_blocks(self.row.id, done, total),
                )
            except SlackApiError as exc:
                count_slack_error("chat.postMessage", exc)
                return
            self.ts = answer["ts"]
            record_progress_message(self.engine, self.row.id, self.channel, self.ts)
        self.progress(done, total, force=True)

    def progress(self, done: int, total: int, *, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if self.ts is None or done == self._shown:
                return
            if not force and now - self._last < PROGRESS_EVERY:
                return
            self._last, self._shown = now, done
        self._update(
            self.note + progress_text(done, total),
            progress_blocks(self.row.id, done, total, self.note),
            skippable=True,
        )

    def _update(self, text: str, blocks: list[dict] | None = None, skippable=False) -> None:
        if self.ts is None:
            return
        # A progress line may be skipped when the workspace's chat.update budget is spent (the
        # next one says more); the final line waits for a slot (bot/slack/budget.py).
        budget = self.services.budget
        if skippable and not budget.spend("chat.update", self.row.team_id, self.channel):
            return
        if not skippable:
            budget.wait("chat.update", self.row.team_id, self.channel, up_to=10)
        try:
            self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            count_slack_error("chat.update", exc)

    def deliver(self, leads: LeadList, answers: dict, gen: GenerationRow) -> None:
        company = (gen.brief or {}).get("company") or "leads"
        # As the files flag them: no usable answer (both rejected), or too little to go on.
        flagged = sum(
            1 for lead in leads.leads if lead.email not in answers or answers[lead.email].too_little
        )
        done = f"Personalised {len(leads.leads):,} leads" + (
            f"; {flagged:,} need review (see the needs_review column)." if flagged else "."
        )
        # "Send to…" sends the sequence with this list's leads (bot/flows/sending.py).
        menu = {"type": "actions", "elements": [send_menu(gen.id, self.row.id).to_dict()]}
        self._update(done, [{"type": "section", "text": {"type": "mrkdwn", "text": done}}, menu])
        # Slack shares files only where the app is a member (a public channel it never joined).
        self.services.memberships.join(
            self.client, self.services.budget, self.row.team_id, self.channel
        )
        tags = ", ".join(f"{fmt.label}: {fmt.opening_tag}" for fmt in LEAD_FORMATS)
        first = personal_email_one(LEAD_FORMATS[0], gen.sequence or [])
        comment = (
            f"{done} Put the opening in email 1 with each tool's merge tag ({tags}); "
            f"for {LEAD_FORMATS[0].label}, email 1 reads:\n\n{first['body']}"
        )
        # Built when sent, one at a time: a 5,000-lead list's five files are about 4 MB each.
        files = partial(_lead_files, leads, answers, company)
        try:
            share_files(
                self.client,
                files(),
                channel=self.channel,
                thread_ts=self.row.thread_ts,
                initial_comment=comment[:3000],
            )
            return
        except SlackApiError as exc:
            count_slack_error("files.upload_v2", exc)
            refused = slack_error(exc)
            log.warning("the thread refused the lead files: %s", refused, extra=self._context)
            if refused == "not_in_channel":
                self.services.memberships.left(self.row.team_id, self.channel)
        # Never a finished list without its files: they go to the person's DM instead.
        self._to_dm(files, comment, refused, done, menu)

    def _to_dm(self, files, comment: str, refused: str, done: str, menu) -> None:
        try:
            dm = self.client.conversations_open(users=self.row.user_id)["channel"]["id"]
            share_files(
                self.client,
                files(),
                channel=dm,
                initial_comment=(
                    f"The thread refused the lead files ({refused}), so here they are. {comment}"
                )[:3000],
            )
            where = f"{done} The files are in your DMs with ColdCopy: the thread refused them."
        except SlackApiError as exc:
            count_slack_error("files.upload_v2", exc)
            log.error("could not share the lead files: %s", exc, extra=self._context)
            where = (
                f"{done} I couldn't share the files here ({refused}) or in a DM "
                f"({slack_error(exc)}): check that ColdCopy is in this channel."
            )
        self._update(where, [{"type": "section", "text": {"type": "mrkdwn", "text": where}}, menu])

    @property
    def _context(self) -> dict:
        return {"list_id": self.row.id, "team_id": self.row.team_id}

    def ended(self, status: str, message: str, written: int, total: int) -> None:
        what = "cancelled" if status == LeadListStatus.CANCELLED else "stopped"
        text = (
            f"Personalisation {what} after {written:,} of {total:,} leads. {message} "
            f"The {total - written:,} leads not written were not counted."
        )
        self._update(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


def _lead_files(leads: LeadList, answers: dict, company: str) -> Iterator[ExportFile]:
    """The lead CSV, then one lead file per sequencer, each built when asked for."""
    yield lead_csv(leads, answers, company)
    for fmt in LEAD_FORMATS:
        yield sequencer_lead_file(fmt, leads, answers, company)


def lead_thread_for(services: Services, row: LeadListRow) -> LeadThread:
    if row.thread_ts is None or row.channel_id is None:
        return LeadThread()
    client = services.slack.client(row.team_id, row.enterprise_id)
    return SlackLeadThread(client, services, row, row.channel_id)

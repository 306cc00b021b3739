"""`/coldcopy`'s form, opened after the ack with many forms in flight at once.

A form is mostly waiting: on the database for a moment, then on Slack for a round trip or two
(users.info for a new user's locale, views.open). So the forms of a process run as coroutines
on its SlackLoop, the one database read on a few threads of their own, and a process opens
forms as fast as its CPU allows whatever Slack's latency. Two rules stay: a form whose trigger
would expire before views.open reaches Slack is not opened (the user is told, privately, that
ColdCopy is busy), and a process already holding all the forms it can open in time answers
"busy" in the ack itself (a bound that shrinks while the forms it holds are reached late).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.backlog import Admission, Ticket
from bot.core.metrics import FORMS_NOT_OPENED, count_slack_error, slack_error
from bot.slack import constants as K
from bot.slack.answers import outage_text
from bot.slack.forms import BUSY
from bot.slack.modal import shared_brief_view, shared_upgrade_view
from bot.slack.services import Services
from bot.slack.slack_loop import SlackLoop
from bot.writing.brief import DEFAULT_LANGUAGE, language_from_locale
from bot.writing.defaults import WorkspaceDefaults, form_prefill
from storage.db import UNAVAILABLE_ERRORS
from storage.form_reads import FormReads, read_form

log = logging.getLogger(__name__)

EXPIRED = "Slack didn't let me open the form in time. Please run /coldcopy again."
# What a form has between its command reaching this process and views.open leaving for Slack.
BUDGET_SECONDS = K.TRIGGER_SECONDS - K.VIEWS_OPEN_MARGIN_SECONDS
# Forms not yet on their way to Slack are kept to what the process sends in this long (see
# backlog.Admission); the next one is told "busy" in the ack, cheaper for everyone than "busy"
# a second later. A fifth of the budget is left for a process slowing down meanwhile.
QUEUE_TARGET_SECONDS = BUDGET_SECONDS * 0.8
# Forms a process always takes on, however slowly it sent the last ones: a quiet process
# takes a burst at once.
ALWAYS_TAKEN = 32


@dataclass(frozen=True)
class FormRequest:
    """One `/coldcopy` whose form is to be opened: who asked, where, and by when."""

    team_id: str
    user_id: str
    channel_id: str | None
    trigger_id: str
    response_url: str | None
    token: str | None
    received: float  # time.monotonic() when the command reached this process

    @property
    def deadline(self) -> float:
        """Past this, views.open could no longer reach Slack before the trigger expires."""
        return self.received + BUDGET_SECONDS


class FormOpener:
    """At most `at_once` forms per process, from the ack to views.open's answer (or the
    user's "busy"), fewer while they queue; the database reads on `readers` threads."""

    def __init__(self, services: Services, slack: SlackLoop, *, at_once: int, readers: int):
        self.services = services
        self.slack = slack
        self.admission = Admission(at_once, floor=ALWAYS_TAKEN, target=QUEUE_TARGET_SECONDS)
        self._reads = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="coldcopy-form")

    def try_open(
        self, client: WebClient, context: BoltContext, command: dict, received: float
    ) -> bool:
        """Take the form of `command` on, or return False at once when this process already
        holds all the forms it can open in time."""
        request = FormRequest(
            team_id=context.team_id,
            user_id=context.user_id,
            channel_id=command.get("channel_id"),
            trigger_id=command["trigger_id"],
            response_url=command.get("response_url"),
            token=client.token,
            received=received,
        )
        ticket = self.admission.try_enter()
        if ticket is None:
            return False
        try:
            self.slack.submit(self._open, request, ticket)
        except RuntimeError:  # shutting down
            ticket.leave()
            return False
        return True

    def close(self) -> None:
        self.slack.close()
        self._reads.shutdown(wait=True)

    async def _open(self, request: FormRequest, ticket: Ticket) -> None:
        try:
            await self._open_in_time(request, ticket)
        except Exception as exc:
            expected = isinstance(exc, (*UNAVAILABLE_ERRORS, SlackApiError))
            log.error(
                "could not open the form: %s",
                type(exc).__name__,
                exc_info=not expected,  # a bug: keep the traceback (parameters are hidden)
                extra={"team_id": request.team_id},
            )
            await self._tell(request, outage_text(exc, "open the form"))
        finally:
            ticket.leave()

    async def _open_in_time(self, request: FormRequest, ticket: Ticket) -> None:
        if await self._too_late(request, ticket):
            return
        reads = await asyncio.get_running_loop().run_in_executor(
            self._reads,
            read_form,
            self.services.engine,
            self.services.policy,
            request.team_id,
            request.user_id,
        )
        if await self._too_late(request, ticket):  # before asking Slack anything
            return
        client = self.slack.web_client(request.token)
        view = await self._view(client, request, reads)
        if await self._too_late(request, ticket):
            return
        ticket.reached()  # on its way to Slack in time
        try:
            await client.views_open(trigger_id=request.trigger_id, view=view)
        except SlackApiError as exc:
            count_slack_error("views.open", exc)
            log.warning(
                "could not open the form: %s",
                slack_error(exc),
                extra={"team_id": request.team_id},
            )
            expired = slack_error(exc) == "expired_trigger_id"
            await self._tell(request, EXPIRED if expired else outage_text(exc, "open the form"))

    async def _view(self, client: AsyncWebClient, request: FormRequest, reads: FormReads) -> dict:
        """The brief form, or the upgrade prompt when the form could not be used anyway.

        Pre-filled with the user's last brief, else the workspace's defaults; the language is
        their last one, else the workspace's, else their Slack locale's, else English."""
        if reads.exhausted is not None:
            return shared_upgrade_view(reads.exhausted, self.services.billing.enabled)
        prefill = form_prefill(reads.previous_brief, WorkspaceDefaults(**reads.settings))
        if not prefill.get("language"):
            # users.info only when nothing else decides; it is remembered for a few minutes.
            person = await self.services.people.person_async(
                client, request.team_id, request.user_id
            )
            prefill["language"] = language_from_locale(person.locale) or DEFAULT_LANGUAGE
        return shared_brief_view(prefill, request.channel_id)

    async def _too_late(self, request: FormRequest, ticket: Ticket) -> bool:
        """Past the deadline, tell the user ColdCopy is busy instead of opening the form."""
        if time.monotonic() <= request.deadline:
            return False
        ticket.reached(in_time=False)  # given up: it no longer waits for its turn
        FORMS_NOT_OPENED.labels(reason="expired").inc()
        log.warning("form not opened: its trigger would expire", extra={"team_id": request.team_id})
        await self._tell(request, BUSY)
        return True

    async def _tell(self, request: FormRequest, text: str) -> None:
        """A private answer through the command's response_url."""
        if not request.response_url:
            return
        try:
            answer = await self.slack.webhook(request.response_url).send(
                text=text, response_type="ephemeral", replace_original=False
            )
        except Exception as exc:  # Slack itself is unreachable: nothing more to do
            log.error("could not tell the user: %s", type(exc).__name__)
            return
        if answer.status_code != 200:
            log.error("could not tell the user: response_url answered %s", answer.status_code)

"""How listeners answer: the ack, answers only the user who typed or clicked sees (through the
interaction's response_url, never replacing the message they clicked on, or in a modal where
there is none), and the answer they get when the work behind a command or a click cannot be
done, in words that match the cause."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from slack_bolt import Ack, BoltContext, BoltResponse, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import DBAPIError

from bot.core.metrics import count_slack_error, slack_error
from bot.slack import constants as K
from bot.slack.block_kit import Message
from bot.slack.modal import message_view, working_view
from bot.slack.services import services_of
from bot.writing.events import WriterError
from storage.db import UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

TRY_AGAIN = "Please try again in a minute."


def acknowledge(ack: Ack) -> None:
    """The ack of every listener whose work runs after it (lazily)."""
    ack()


def reply(respond: Respond, message: Message | str) -> None:
    if isinstance(message, str):
        respond(text=message, response_type="ephemeral", replace_original=False)
    else:
        respond(
            text=message.text,
            blocks=message.blocks,
            response_type="ephemeral",
            replace_original=False,
        )


class Answer:
    """Where the answer to one click or command goes, privately: onto the message it came from
    (its response_url), or, from the Home tab or a modal (which have none), into a modal. A
    trigger opens a modal only within Slack's 3 seconds, so slow work shows a `working` modal at
    once and updates it when the answer is known; a trigger too old to use sends the answer to
    the person's DM with the app instead."""

    def __init__(
        self,
        body: dict,
        client: WebClient,
        respond: Respond | None,
        received: float | None = None,
    ):
        self.body = body
        self.client = client
        # A click in a modal has no message to answer on, whatever the payload carries.
        self.respond = respond if body.get("response_url") and not body.get("view") else None
        self.received = received if received is not None else time.monotonic()
        self._view_id: str | None = None

    @property
    def in_a_modal(self) -> bool:
        return self.respond is None

    def trigger_fresh(self) -> bool:
        """Whether views.open may still use this interaction's trigger."""
        deadline = self.received + K.TRIGGER_SECONDS - K.VIEWS_OPEN_MARGIN_SECONDS
        return bool(self.body.get("trigger_id")) and time.monotonic() <= deadline

    def working(self, text: str) -> None:
        """Before slow work: open a modal saying what is happening (Home tab and modals)."""
        if self.in_a_modal and self._view_id is None:
            self._open(working_view(text))

    def say(self, message: Message | str) -> None:
        if not self.in_a_modal:
            reply(self.respond, message)
            return
        text = message if isinstance(message, str) else message.text
        self.show(message_view(text), fallback=message)

    def show(self, view: dict, *, fallback: Message | str | None = None) -> None:
        """A whole modal: the working modal becomes it, or it opens while the trigger is good;
        past that, `fallback` goes to the person's DM."""
        if self._view_id is not None:
            try:
                self.client.views_update(view_id=self._view_id, view=view)
                return
            except SlackApiError as exc:
                count_slack_error("views.update", exc)
        if self._open(view):
            return
        if fallback is not None:
            self._to_dm(fallback)

    def open(self, view: dict) -> bool:
        """Open `view` as a new modal while the trigger is good; False when it could not."""
        return self._open(view)

    def _open(self, view: dict) -> bool:
        if not self.trigger_fresh():
            log.info("modal not opened: its trigger is too old")
            return False
        try:
            opened = self.client.views_open(trigger_id=self.body["trigger_id"], view=view)
        except SlackApiError as exc:
            count_slack_error("views.open", exc)
            return False
        self._view_id = (opened.get("view") or {}).get("id")
        return True

    def _to_dm(self, message: Message | str) -> None:
        user = (self.body.get("user") or {}).get("id") or self.body.get("user_id")
        if not user:
            return
        text = message if isinstance(message, str) else message.text
        try:
            self.client.chat_postMessage(channel=user, text=text)
        except SlackApiError as exc:
            count_slack_error("chat.postMessage", exc)


def answering(doing: str):
    """Makes `work` a lazy listener that tells the user why, in words that match the cause,
    when it could not `doing` ("export the sequence"). `work` names what it needs among
    body, action, view, event, client, respond, context, services and answer (an `Answer`)."""

    def wrap(work: Callable[..., None]):
        wanted = list(inspect.signature(work).parameters)

        def lazy(
            body: dict,
            client: WebClient,
            respond: Respond | None,
            context: BoltContext,
            action: dict | None = None,
            view: dict | None = None,
            event: dict | None = None,
        ) -> None:
            answer = Answer(body, client, respond, context.get(K.RECEIVED_AT))
            given = {
                "body": body,
                "action": action,
                "view": view,
                "event": event,
                "client": client,
                "respond": respond,
                "context": context,
                "services": services_of(context),
                "answer": answer,
            }
            with answering_failures(answer.say, doing, context.team_id):
                work(**{name: given[name] for name in wanted})

        lazy.__name__ = lazy.__qualname__ = work.__name__
        lazy.__doc__ = work.__doc__
        return lazy

    return wrap


def outage_text(exc: Exception, doing: str) -> str:
    """What to tell the user when `doing` ("open the form") failed with `exc`."""
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return f"ColdCopy can't reach its database right now, so I couldn't {doing}. {TRY_AGAIN}"
    if isinstance(exc, DBAPIError):
        return f"ColdCopy's database refused the change, so I couldn't {doing}. {TRY_AGAIN}"
    if isinstance(exc, SlackApiError):
        return f"Slack refused ({slack_error(exc)}) when I tried to {doing}. {TRY_AGAIN}"
    if isinstance(exc, WriterError):
        return f"The writing model failed, so I couldn't {doing}: {exc.user_message}"
    return f"Something went wrong on ColdCopy's side, so I couldn't {doing}. {TRY_AGAIN}"


@contextmanager
def answering_failures(
    answer: Respond | Callable[[str], None], doing: str, team_id: str | None = None
) -> Iterator[None]:
    """Run a listener's work; if it fails, log the cause (never the payload) and tell the user
    why instead of leaving them in silence after the acknowledgement. `answer` is the
    interaction's `respond`, or any function that shows the user a text."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, SlackApiError):
            count_slack_error("listener", exc)
        # Outages get their cause in one line; anything else is a bug and keeps its traceback.
        first_line = (str(exc).splitlines() or [""])[0][:200]
        expected = isinstance(exc, (*UNAVAILABLE_ERRORS, SlackApiError, WriterError))
        log.error(
            "could not %s: %s: %s",
            doing,
            type(exc).__name__,
            first_line,
            exc_info=not expected,  # a bug: keep the traceback (parameters are hidden)
            extra={"team_id": team_id},
        )
        try:
            if isinstance(answer, Respond):
                reply(answer, outage_text(exc, doing))
            else:
                answer(outage_text(exc, doing))
        except Exception as answer_failed:  # Slack itself is unreachable: nothing more to do
            log.error("could not tell the user either: %s", type(answer_failed).__name__)


def explain_failure(error: Exception, body: dict, respond: Respond | None) -> BoltResponse | None:
    """Bolt's global error handler: a failure before any listener ran (looking up the
    workspace's installation while the database is down) still gets the user an answer in
    words that match the cause, instead of Slack's bare "dispatch_failed"."""
    expected = isinstance(error, (*UNAVAILABLE_ERRORS, SlackApiError))
    log.error(
        "could not handle a request: %s",
        type(error).__name__,
        exc_info=not expected,
        extra={"team_id": _team_of(body)},
    )
    text = outage_text(error, "do that")
    if body.get("command"):
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    if body.get("type") == "view_submission":
        first_block = next(
            (b.get("block_id") for b in body["view"].get("blocks", []) if b.get("type") == "input"),
            None,
        )
        if first_block:
            errors = {"response_action": "errors", "errors": {first_block: text}}
            return BoltResponse(status=200, body=errors)
    if body.get("type") == "block_actions" and respond is not None:
        try:
            reply(respond, text)
        except Exception as answer_failed:
            log.error("could not tell the user either: %s", type(answer_failed).__name__)
        return BoltResponse(status=200, body="")
    return None  # events: a 500 makes Slack deliver them again later


def _team_of(body: dict) -> str | None:
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    return str(team)[:32] if team else None

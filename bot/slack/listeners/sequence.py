"""A finished sequence's own controls: rewrite an email (quick choices, the user's own words in
a modal, or a mention in the thread), rate an email, regenerate, and edit the brief."""

from __future__ import annotations

import logging

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.domain.limits import RateLimited
from bot.domain.rewrites import RewriteRequest, email_step, mention_request, named_email
from bot.slack import constants as K
from bot.slack.answers import answering, reply
from bot.slack.modal import RewriteTarget, brief_view, read_rewrite, rewrite_view
from bot.slack.resubmission import resubmit
from bot.slack.services import Services, services_of
from bot.slack.wording import GONE, not_yours
from storage.access import Act, NotYours
from storage.feedback import record_feedback
from storage.presses import first_press
from storage.rewrites import generation_for_thread

log = logging.getLogger(__name__)

EVENT_DEDUP_SECONDS = 3600
# A mention that is not a rewrite request gets its how-to once per person per this long.
HELP_EVERY_SECONDS = 600
WHICH_EMAIL = (
    "Which email should I rewrite? Name it, for example: "
    "“@ColdCopy make email 3 shorter, mention our free trial”."
)
NOT_A_SEQUENCE = (
    "Mention me in the thread of a sequence I wrote, naming the email: "
    "“@ColdCopy make email 3 shorter”. Type /coldcopy to write a new sequence."
)
NO_FORM_IN_TIME = "Slack didn't let me open the form in time. Please click again."


def parse_value(value: str, parts: int) -> list[str] | None:
    """A control's `|`-separated value, or None when it is not what our controls send."""
    pieces = (value or "").split("|")
    return pieces if len(pieces) == parts and all(pieces) else None


@answering("rewrite the email")
def rewrite_quick(action: dict, client: WebClient, context: BoltContext, services: Services):
    """A quick choice from an email's menu (Shorter, Warmer, ...)."""
    pieces = parse_value((action.get("selected_option") or {}).get("value", ""), 3)
    step = email_step(pieces[2]) if pieces else None
    if pieces is None or step is None:
        return
    key, generation_id = pieces[0], pieces[1]
    request = RewriteRequest(context.team_id, context.user_id, generation_id, step, quick=key)
    services.work.rewrite(client, request)


@answering("open the rewrite form")
def rewrite_own(body: dict, action: dict, client: WebClient, respond: Respond):
    """ "Your own instruction…": a modal asking how the email should change."""
    pieces = parse_value(action.get("value", ""), 2)
    step = email_step(pieces[1]) if pieces else None
    if pieces is None or step is None:
        return
    try:
        client.views_open(
            trigger_id=body["trigger_id"], view=rewrite_view(RewriteTarget(pieces[0], step))
        )
    except SlackApiError as exc:
        count_slack_error("views.open", exc)
        reply(respond, NO_FORM_IN_TIME)


@answering("record your feedback")
def feedback(action: dict, client: WebClient, context: BoltContext, services: Services):
    """A thumbs up or down on one email; voting again replaces the vote."""
    pieces = parse_value(action.get("value", ""), 3)
    step = email_step(pieces[2]) if pieces else None
    if pieces is None or step is None or pieces[0] not in ("positive", "negative"):
        log.info("a feedback value our buttons never send", extra={"team_id": context.team_id})
        return
    vote, generation_id = pieces[0], pieces[1]
    gen = services.generation(client, context, generation_id, Act.FEEDBACK)
    if gen is None or isinstance(gen, NotYours) or step > len(gen.sequence or []):
        return
    # Its own windows (a "feedback:" scope), failing open like every limit.
    limited = services.feedback_limiter.check(f"feedback:{context.team_id}", context.user_id)
    if isinstance(limited, RateLimited):
        log.info("feedback votes rate limited", extra={"team_id": context.team_id})
        return
    record_feedback(
        services.engine,
        generation_id=generation_id,
        team_id=context.team_id,
        step=step,
        user_id=context.user_id,
        vote=vote,
    )


@answering("regenerate the sequence")
def regenerate(action: dict, client: WebClient, respond: Respond, context: BoltContext, services):
    """A new sequence from the same brief; a double click is one new sequence."""
    gen = services.generation(client, context, action.get("value") or "", Act.REGENERATE)
    if isinstance(gen, NotYours):
        reply(respond, not_yours(gen))
        return
    if gen is None or not gen.brief:
        reply(respond, GONE)
        return
    # A double click is one new sequence; a later click is another, on purpose. Decided in the
    # database (Redis may be away): the person's press in its ten-second bucket.
    bucket = first_press(services.engine, gen.id, context.user_id, "regenerate")
    if bucket is None:
        return
    key = f"regenerate:{gen.id}:{context.user_id}:{bucket}"
    resubmit(services, gen, context, respond, key=key, verb="Regenerating")


@answering("open the brief")
def edit_brief(action: dict, client: WebClient, respond: Respond, context, services, answer):
    """The brief form, filled with this sequence's brief, for its owner or an admin."""
    gen = services.generation(client, context, action.get("value") or "", Act.EDIT_BRIEF)
    if isinstance(gen, NotYours):
        reply(respond, not_yours(gen))
        return
    if gen is None or not gen.brief:
        reply(respond, GONE)
        return
    if not answer.open(brief_view(gen.brief, gen.channel_id)):
        answer.say(NO_FORM_IN_TIME)


def check_rewrite(ack: Ack, view: dict) -> None:
    """The rewrite modal: an empty instruction keeps it open with a message."""
    target, change = read_rewrite(view)
    if target is not None and not change.strip():
        ack(response_action="errors", errors={K.REWRITE_BLOCK: "Say how it should change."})
        return
    ack()


def rewrite_submitted(view: dict, client: WebClient, context: BoltContext) -> None:
    target, change = read_rewrite(view)
    if target is None or not change.strip():
        return
    request = RewriteRequest(
        context.team_id, context.user_id, target.generation_id, target.step, change
    )
    services_of(context).work.rewrite(client, request)


def mentioned(body: dict, event: dict, client: WebClient, context: BoltContext) -> None:
    """ "@ColdCopy make email 3 shorter" in a sequence's thread."""
    services = services_of(context)
    event_id = body.get("event_id") or ""
    # Slack retries events it thinks we missed (X-Slack-Retry-Num); handle each once.
    if event_id and not services.dedup.first_time(f"event:{event_id}", EVENT_DEDUP_SECONDS):
        log.info("a mention delivered again was handled once", extra={"event_id": event_id})
        return
    channel = event.get("channel") or ""
    thread_ts = event.get("thread_ts")
    user = event.get("user") or ""
    if not channel or not user:
        return
    generation_id = (
        generation_for_thread(services.engine, channel, thread_ts) if thread_ts else None
    )
    request = mention_request(event.get("text") or "")
    step = named_email(request)
    if generation_id is None or step is None:
        # Only the person who asked sees how to ask, and not again for a while.
        if not services.dedup.first_time(
            f"mention-help:{context.team_id}:{user}", HELP_EVERY_SECONDS
        ):
            log.info("mention how-to given lately: not again", extra={"team_id": context.team_id})
        else:
            try:
                client.chat_postEphemeral(
                    channel=channel,
                    user=user,
                    thread_ts=thread_ts,
                    text=NOT_A_SEQUENCE if generation_id is None else WHICH_EMAIL,
                )
            except SlackApiError as exc:
                count_slack_error("chat.postEphemeral", exc)
        return
    services.work.rewrite(
        client, RewriteRequest(context.team_id, user, generation_id, step, request)
    )

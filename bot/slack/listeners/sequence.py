"""A finished sequence's own controls: rewrite an email (quick choices, the user's own words in
a modal, or a mention in the thread), rate an email, regenerate, and edit the brief."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.rewrites import mention_request, named_email
from bot.domain.submission import Submissions
from bot.runtime.metrics import count_slack_error
from bot.runtime.wiring import Runtime
from bot.slack import constants as K
from bot.slack.listeners.actions import resubmit
from bot.slack.listeners.ephemeral import reply
from bot.slack.modal import RewriteTarget, brief_view, read_rewrite, rewrite_view
from bot.slack.rewrite import RewriteRequest, ThreadRewriter, quick_change
from storage.feedback import record_feedback
from storage.generations import get_generation
from storage.rewrites import generation_for_thread

log = logging.getLogger(__name__)

EVENT_DEDUP_SECONDS = 3600
REGENERATE_DEDUP_SECONDS = 10
GONE = "That sequence is no longer available. Run /coldcopy to start again."
WHICH_EMAIL = (
    "Which email should I rewrite? Name it, for example: "
    "“@ColdCopy make email 3 shorter, mention our free trial”."
)
NOT_A_SEQUENCE = (
    "Mention me in the thread of a sequence I wrote, naming the email: "
    "“@ColdCopy make email 3 shorter”. Type /coldcopy to write a new sequence."
)


def parse_value(value: str, parts: int) -> list[str] | None:
    """A control's `|`-separated value, or None when it is not what our controls send."""
    pieces = (value or "").split("|")
    return pieces if len(pieces) == parts and all(pieces) else None


def register(
    app: App,
    rt: Runtime,
    submissions: Submissions,
    rewriter: ThreadRewriter,
) -> None:
    def rewrite_quick(action: dict, client: WebClient, respond: Respond, context: BoltContext):
        pieces = parse_value((action.get("selected_option") or {}).get("value", ""), 3)
        if pieces is None or not pieces[2].isdigit():
            return
        key, generation_id, step = pieces[0], pieces[1], int(pieces[2])
        gen = get_generation(rt.engine, generation_id)
        change = quick_change(key, gen, step)
        if change is None:
            return
        rewriter.rewrite(
            client, RewriteRequest(context.team_id, context.user_id, generation_id, step, change)
        )

    def rewrite_own(body: dict, action: dict, client: WebClient, respond: Respond):
        pieces = parse_value(action.get("value", ""), 2)
        if pieces is None or not pieces[1].isdigit():
            return
        try:
            client.views_open(
                trigger_id=body["trigger_id"],
                view=rewrite_view(RewriteTarget(pieces[0], int(pieces[1]))),
            )
        except SlackApiError as exc:
            count_slack_error("views.open", exc)
            reply(respond, "Slack didn't let me open the form in time. Please click again.")

    def feedback(action: dict, respond: Respond, context: BoltContext):
        pieces = parse_value(action.get("value", ""), 3)
        if pieces is None or not pieces[2].isdigit():
            return
        vote, generation_id, step = pieces[0], pieces[1], int(pieces[2])
        gen = get_generation(rt.engine, generation_id)
        if gen is None or gen.team_id != context.team_id or vote not in ("positive", "negative"):
            return
        record_feedback(
            rt.engine,
            generation_id=generation_id,
            team_id=context.team_id,
            step=step,
            user_id=context.user_id,
            vote=vote,
        )

    def regenerate(action: dict, respond: Respond, context: BoltContext):
        gen = get_generation(rt.engine, action.get("value") or "")
        if gen is None or gen.team_id != context.team_id or not gen.brief:
            reply(respond, GONE)
            return
        # A double click is one new sequence; a later click is another, on purpose.
        if not rt.dedup.first_time(
            f"regenerate:{gen.id}:{context.user_id}", REGENERATE_DEDUP_SECONDS
        ):
            return
        resubmit(
            submissions,
            gen,
            context,
            respond,
            key=f"regenerate:{gen.id}:{action.get('action_ts') or ''}",
            billing=rt.billing.enabled,
            verb="Regenerating",
        )

    def edit_brief(
        body: dict, action: dict, client: WebClient, respond: Respond, context: BoltContext
    ):
        gen = get_generation(rt.engine, action.get("value") or "")
        if gen is None or gen.team_id != context.team_id or not gen.brief:
            reply(respond, GONE)
            return
        try:
            client.views_open(
                trigger_id=body["trigger_id"], view=brief_view(gen.brief, gen.channel_id)
            )
        except SlackApiError as exc:
            count_slack_error("views.open", exc)
            reply(respond, "Slack didn't let me open the form in time. Please click again.")

    for action_id, work in (
        (K.REWRITE_ACTION, rewrite_quick),
        (K.REWRITE_OWN_ACTION, rewrite_own),
        (K.FEEDBACK_ACTION, feedback),
        (K.REGENERATE_ACTION, regenerate),
        (K.EDIT_BRIEF_ACTION, edit_brief),
    ):
        app.action(action_id)(ack=acknowledge, lazy=[work])

    def check_rewrite(ack: Ack, view: dict) -> None:
        target, change = read_rewrite(view)
        if target is not None and not change.strip():
            ack(response_action="errors", errors={K.REWRITE_BLOCK: "Say how it should change."})
            return
        ack()

    def rewrite_submitted(view: dict, client: WebClient, context: BoltContext) -> None:
        target, change = read_rewrite(view)
        if target is None or not change.strip():
            return
        rewriter.rewrite(
            client,
            RewriteRequest(
                context.team_id, context.user_id, target.generation_id, target.step, change
            ),
        )

    app.view(K.REWRITE_VIEW)(ack=check_rewrite, lazy=[rewrite_submitted])

    def mentioned(body: dict, event: dict, client: WebClient, context: BoltContext) -> None:
        event_id = body.get("event_id") or ""
        # Slack retries events it thinks we missed (X-Slack-Retry-Num); handle each once.
        if event_id and not rt.dedup.first_time(f"event:{event_id}", EVENT_DEDUP_SECONDS):
            return
        channel = event.get("channel") or ""
        thread_ts = event.get("thread_ts")
        user = event.get("user") or ""
        if not channel or not user:
            return
        generation_id = generation_for_thread(rt.engine, channel, thread_ts) if thread_ts else None
        request = mention_request(event.get("text") or "")
        step = named_email(request)
        if generation_id is None or step is None:
            answer = NOT_A_SEQUENCE if generation_id is None else WHICH_EMAIL
            try:
                client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts or event.get("ts"), text=answer
                )
            except SlackApiError as exc:
                count_slack_error("chat.postMessage", exc)
            return
        rewriter.rewrite(
            client, RewriteRequest(context.team_id, user, generation_id, step, request)
        )

    app.event("app_mention")(ack=acknowledge, lazy=[mentioned])


def acknowledge(ack: Ack) -> None:
    ack()

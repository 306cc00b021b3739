"""Button clicks and menu choices on ColdCopy's messages and modals: Upgrade, Manage billing,
Export as… and Try again. Every click is acked first; the work happens after."""

from __future__ import annotations

import logging

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error, slack_error
from bot.slack.answers import Answer, answering, reply
from bot.slack.billing_answers import billing_answer
from bot.slack.blocks import parse_export_option
from bot.slack.modal import checkout_view, message_view
from bot.slack.resubmission import resubmit
from bot.slack.services import Services
from bot.slack.wording import GONE, not_yours
from bot.writing.export import export_sequence
from bot.writing.export_formats import FORMATS_BY_KEY, GENERIC_CSV
from storage.access import Act, NotYours
from storage.models import GenerationStatus
from storage.presses import first_press

log = logging.getLogger(__name__)

EXPORT_DEDUP_SECONDS = 30


@answering("open billing")
def upgrade(client: WebClient, context: BoltContext, services: Services, answer: Answer):
    """Upgrade or Manage billing: answered where it was clicked (a message, the upgrade
    modal, or the Home tab, where a modal opens at once and shows the link when Stripe has
    made it)."""
    view = (answer.body.get("view") or {}) if answer.in_a_modal else {}
    if view.get("type") == "home":
        answer.working("Preparing your Stripe link…")
    message, is_link = billing_answer(services, client, context.team_id, context.user_id)
    if not answer.in_a_modal:
        answer.say(message)
        return
    modal = checkout_view(message) if is_link else message_view(message.text)
    if view.get("type") == "home":
        answer.show(modal, fallback=message)
        return
    try:  # clicked inside ColdCopy's upgrade modal: it becomes the answer
        client.views_update(view_id=view["id"], view=modal)
    except SlackApiError as exc:
        count_slack_error("views.update", exc)


@answering("export the sequence")
def export(action: dict, client: WebClient, context, services: Services, answer: Answer):
    """The sequence as a file in the chosen format, uploaded into its thread (joining a public
    channel first: Slack shares files only where the app is a member)."""
    if action.get("type") == "button":
        # The "Export CSV" button on messages posted before the menu existed.
        generation_id, fmt = action.get("value") or "", GENERIC_CSV
    else:
        value = (action.get("selected_option") or {}).get("value") or ""
        generation_id, key = parse_export_option(value)
        fmt = FORMATS_BY_KEY.get(key)
        if fmt is None:
            answer.say("That export format is no longer offered. Pick another one.")
            return
    # Who may comes first: a refused click must not use up the next one's de-duplication.
    gen = services.generation(client, context, generation_id, Act.EXPORT)
    if not gen or isinstance(gen, NotYours) or not gen.sequence:
        answer.say("That sequence is no longer available to export.")
        return
    if not services.dedup.first_time(f"export:{generation_id}:{fmt.key}", EXPORT_DEDUP_SECONDS):
        return  # a double click: the first upload is on its way
    answer.working(f"Exporting the sequence as {fmt.label}…")
    channel = gen.posted_channel_id or gen.channel_id
    refused = services.memberships.join(client, services.budget, context.team_id, channel)
    if refused is not None:
        answer.say(f"I couldn't share the {fmt.label} file in <#{channel}>: {refused}.")
        return
    exported = export_sequence(fmt, gen.sequence, (gen.brief or {}).get("company") or "sequence")
    try:
        client.files_upload_v2(
            channel=channel,
            thread_ts=gen.parent_ts,
            content=exported.content,
            filename=exported.filename,
            title=exported.title,
            initial_comment=f"Here's the sequence in {fmt.label} format.",
        )
    except SlackApiError as exc:
        count_slack_error("files.upload_v2", exc)
        if slack_error(exc) == "not_in_channel":
            services.memberships.left(context.team_id, channel)  # removed since: join next time
        answer.say(
            f"I couldn't upload the {fmt.label} file here ({slack_error(exc)}). Check that "
            "ColdCopy is in this channel and try again."
        )
        return
    if answer.in_a_modal:
        answer.say(f"The {fmt.label} file is in the sequence's thread.")


@answering("start the sequence again")
def retry(action: dict, client: WebClient, respond: Respond, context: BoltContext, services):
    """Try again on a failed sequence: a new generation from the same brief."""
    gen = services.generation(client, context, action.get("value") or "", Act.RETRY)
    if isinstance(gen, NotYours):
        reply(respond, not_yours(gen))
        return
    if gen is None or not gen.brief:
        reply(respond, GONE)
        return
    if gen.status != GenerationStatus.FAILED:
        return
    # A double click is one press (in the database, whether or not Redis is there); the key
    # below makes a failed sequence's Try again one new sequence whoever clicks.
    if first_press(services.engine, gen.id, context.user_id, "retry") is None:
        return
    resubmit(services, gen, context, respond, key=f"retry:{gen.id}")

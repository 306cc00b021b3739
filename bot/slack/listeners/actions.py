"""Button clicks and menu choices: Upgrade, Manage billing, Export as… and Try again. Every
click is acked first; the work happens after."""

from __future__ import annotations

import inspect
import logging

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.limits import RateLimited
from bot.domain.submission import Accepted, Submissions
from bot.runtime.metrics import count_slack_error
from bot.runtime.wiring import Runtime
from bot.slack import constants as K
from bot.slack.blocks import (
    parse_export_option,
    plain_message,
    rate_limited_text,
    upgrade_message,
)
from bot.slack.listeners.billing_flow import billing_answer, send_upgrade_link
from bot.slack.listeners.ephemeral import answering_failures, reply
from bot.slack.modal import checkout_view, message_view
from bot.writing.brief import BriefErrors
from bot.writing.export import FORMATS_BY_KEY, GENERIC_CSV, ExportFormat, export_sequence
from storage.generations import GenerationRow, get_generation
from storage.ledger import DuplicateRequest, QuotaExhausted
from storage.models import GenerationStatus

log = logging.getLogger(__name__)

EXPORT_DEDUP_SECONDS = 30


def register(app: App, rt: Runtime, submissions: Submissions) -> None:
    def upgrade(body: dict, client: WebClient, respond: Respond, context: BoltContext):
        view = body.get("view")
        if view is None:
            send_upgrade_link(rt, respond, context.team_id, context.user_id)
            return
        # Clicked inside the modal: show the answer in the modal itself; from the Home tab,
        # in a modal of its own.
        message, is_link = billing_answer(rt, context.team_id, context.user_id)
        modal = checkout_view(message) if is_link else message_view(message.text)
        try:
            if view.get("type") == "home":
                client.views_open(trigger_id=body["trigger_id"], view=modal)
            else:
                client.views_update(view_id=view["id"], view=modal)
        except SlackApiError as exc:
            count_slack_error("views.open" if view.get("type") == "home" else "views.update", exc)

    def export(body: dict, action: dict, client: WebClient, respond: Respond, context: BoltContext):
        if action.get("type") == "button":
            # The "Export CSV" button on messages posted before the menu existed.
            generation_id, fmt = action.get("value") or "", GENERIC_CSV
        else:
            value = (action.get("selected_option") or {}).get("value") or ""
            generation_id, key = parse_export_option(value)
            fmt = FORMATS_BY_KEY.get(key)
            if fmt is None:
                tell(
                    body,
                    client,
                    respond,
                    "That export format is no longer offered. Pick another one.",
                )
                return
        upload_export(body, generation_id, fmt, client, respond, context)

    def upload_export(
        body: dict,
        generation_id: str,
        fmt: ExportFormat,
        client: WebClient,
        respond: Respond,
        context: BoltContext,
    ) -> None:
        if not rt.dedup.first_time(f"export:{generation_id}:{fmt.key}", EXPORT_DEDUP_SECONDS):
            return  # a double click: the first upload is on its way
        gen = get_generation(rt.engine, generation_id)
        if gen is None or gen.team_id != context.team_id or not gen.sequence:
            tell(body, client, respond, "That sequence is no longer available to export.")
            return
        company = (gen.brief or {}).get("company") or "sequence"
        exported = export_sequence(fmt, gen.sequence, company)
        try:
            client.files_upload_v2(
                channel=gen.posted_channel_id or gen.channel_id,
                thread_ts=gen.parent_ts,
                content=exported.content,
                filename=exported.filename,
                title=exported.title,
                initial_comment=f"Here's the sequence in {fmt.label} format.",
            )
        except SlackApiError as exc:
            count_slack_error("files.upload_v2", exc)
            tell(
                body,
                client,
                respond,
                f"I couldn't upload the {fmt.label} file here. Check that ColdCopy is in this "
                "channel and try again.",
            )
            return
        if not body.get("response_url"):
            # Clicked in the Home tab: say where the file went.
            tell(body, client, respond, f"The {fmt.label} file is in the sequence's thread.")

    def retry(action: dict, respond: Respond, context: BoltContext):
        gen = get_generation(rt.engine, action.get("value") or "")
        if gen is None or gen.team_id != context.team_id or not gen.brief:
            reply(respond, "That brief is no longer available. Run /coldcopy to start again.")
            return
        if gen.status != GenerationStatus.FAILED:
            return
        resubmit(
            submissions, gen, context, respond, key=f"retry:{gen.id}", billing=rt.billing.enabled
        )

    # Every click is acknowledged at once; the work (Stripe, uploads, a new generation)
    # runs lazily after the acknowledgement.
    for action_id, work, doing in (
        (K.UPGRADE_ACTION, upgrade, "prepare the upgrade link"),
        (K.MANAGE_BILLING_ACTION, upgrade, "open billing"),
        (K.EXPORT_ACTION, export, "export the sequence"),
        (K.EXPORT_CSV_ACTION, export, "export the sequence"),
        (K.RETRY_ACTION, retry, "start the sequence again"),
    ):
        app.action(action_id)(ack=acknowledge, lazy=[answering(work, doing)])
    # A URL button: Slack opens the link itself; the click only needs acknowledging.
    app.action(K.CHECKOUT_LINK_ACTION)(acknowledge)


def acknowledge(ack: Ack) -> None:
    ack()


def tell(body: dict, client: WebClient, respond: Respond | None, text: str) -> None:
    """Answer the clicker privately: where they clicked, or (from the Home tab, which has no
    response_url) in a modal."""
    if respond is not None and body.get("response_url"):
        reply(respond, text)
        return
    try:
        client.views_open(trigger_id=body["trigger_id"], view=message_view(text))
    except SlackApiError as exc:
        count_slack_error("views.open", exc)


def answering(work, doing: str):
    """`work` as a lazy listener that tells the user why, when it cannot do its job."""

    def lazy(
        body: dict,
        action: dict,
        client: WebClient,
        respond: Respond | None,
        context: BoltContext,
    ) -> None:
        given = {"body": body, "action": action, "client": client}
        given.update(respond=respond, context=context)

        def say(text: str) -> None:
            tell(body, client, respond, text)

        with answering_failures(say, doing, context.team_id):
            work(**{name: given[name] for name in inspect.signature(work).parameters})

    lazy.__name__ = work.__name__
    return lazy


def resubmit(
    submissions: Submissions,
    gen: GenerationRow,
    context: BoltContext,
    respond: Respond,
    *,
    key: str,
    billing: bool,
    verb: str = "Trying again",
) -> None:
    """A new generation from a stored brief (Try again, Regenerate), through the same rules as
    a form, answered privately."""
    outcome = submissions.submit(
        team_id=context.team_id,
        user_id=context.user_id,
        channel_id=gen.channel_id,
        fields=gen.brief or {},
        idempotency_key=key,
        enterprise_id=context.enterprise_id,
    )
    message = retry_answer(outcome, billing, verb=verb)
    if message is not None:
        reply(respond, message)


def retry_answer(outcome, billing_enabled: bool, verb: str = "Trying again"):
    if isinstance(outcome, Accepted):
        return plain_message(f":repeat: {verb}: a new thread will appear in a moment.")
    if isinstance(outcome, QuotaExhausted):
        return upgrade_message(outcome, billing_enabled)
    if isinstance(outcome, RateLimited):
        return plain_message(rate_limited_text(outcome.minutes))
    if isinstance(outcome, DuplicateRequest):
        return None  # already retried once; that thread is on its way
    if isinstance(outcome, BriefErrors):
        return plain_message("That brief can't be used any more. Run /coldcopy to start again.")
    return None

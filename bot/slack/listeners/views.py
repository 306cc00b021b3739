"""Modal submissions, answered within Slack's 3 seconds: the brief form (the writing happens
later) and the workspace settings (saved at once, the Home tab refreshed after)."""

from __future__ import annotations

import logging

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import DBAPIError

from bot.core.metrics import count_slack_error
from bot.domain.limits import RateLimited
from bot.domain.submission import Accepted, InvalidRequest
from bot.slack import constants as K
from bot.slack.account_messages import rate_limited_text
from bot.slack.home_tab import publish_home
from bot.slack.modal import (
    message_view,
    read_settings_submission,
    read_submission,
    upgrade_view,
    working_view,
    writing_view,
)
from bot.slack.services import services_of
from bot.slack.wording import ADMINS_ONLY
from bot.writing.brief import BRIEF_FIELDS, BriefErrors
from bot.writing.defaults import validate_defaults
from storage.access import Act
from storage.db import UNAVAILABLE_ERRORS
from storage.ledger import DuplicateRequest
from storage.quota import QuotaExhausted
from storage.settings import save_settings

FIRST_BLOCK = BRIEF_FIELDS[0].key
FORM_BLOCKS = {f.key for f in BRIEF_FIELDS} | {K.TONE_BLOCK, K.LANGUAGE_BLOCK}
DATABASE_DOWN = (
    "ColdCopy can't reach its database right now, so nothing was saved or counted. "
    "Please submit again in a minute."
)
DATABASE_REFUSED = (
    "ColdCopy's database refused this brief, so nothing was saved or counted. "
    "Please submit again in a minute."
)
INVALID_REQUEST = "Slack sent this form in a shape ColdCopy can't read. Please run /coldcopy again."

log = logging.getLogger(__name__)


def submit_brief(ack: Ack, view: dict, context: BoltContext) -> None:
    """The brief form, answered within Slack's 3 seconds: accepted (the writing happens
    later, on a worker), or kept open with what is wrong on its fields."""
    services = services_of(context)
    submission = read_submission(view)
    if not submission.channel_id:
        ack(
            response_action="errors",
            errors={K.CHANNEL_BLOCK: "Pick a conversation to post the sequence in."},
        )
        return
    try:
        outcome = services.submissions.submit(
            team_id=context.team_id,
            user_id=context.user_id,
            channel_id=submission.channel_id,
            fields=submission.fields,
            idempotency_key=f"view:{view['id']}",
            enterprise_id=context.enterprise_id,
        )
    except DBAPIError as exc:
        # Within Slack's 3 seconds (the engine's timeouts see to that): keep the form
        # and what they typed, and say why.
        unavailable = isinstance(exc, UNAVAILABLE_ERRORS)
        # The engine hides statement parameters, so the error can be logged whole
        # without the brief in it.
        log.error(
            "a submission failed in the database: %s",
            type(exc).__name__,
            exc_info=not unavailable,
            extra={"team_id": context.team_id},
        )
        text = DATABASE_DOWN if unavailable else DATABASE_REFUSED
        ack(response_action="errors", errors={FIRST_BLOCK: text})
        return
    # Accepted, it is already a job (or in this process's pool): the worker that starts
    # it posts the thread, so nothing here waits on Slack.
    ack(**answer(outcome, services.billing.enabled))


def check_workspace_settings(ack: Ack, view: dict) -> None:
    """The settings modal, within Slack's 3 seconds and without a Slack call: wrong fields
    keep it open with what is wrong; right ones turn it into "Saving…" while the save (which
    asks Slack whether the person is an admin) happens after the ack."""
    defaults = validate_defaults(read_settings_submission(view))
    if isinstance(defaults, BriefErrors):
        ack(response_action="errors", errors=defaults.errors)
        return
    ack(response_action="update", view=working_view("Saving the workspace settings…"))


def save_workspace_settings(view: dict, client: WebClient, context: BoltContext) -> None:
    """An admin's workspace settings, saved with who changed what; the modal says how it went
    and the admin's Home tab shows them."""
    services = services_of(context)
    # The modal's submission is the one that counts: a forged one from a member is refused.
    admin = services.may(client, context, Act.SETTINGS)
    if not admin:
        outcome = ADMINS_ONLY
    else:
        defaults = validate_defaults(read_settings_submission(view))
        changes = save_settings(
            services.engine, context.team_id, defaults.as_dict(), changed_by=context.user_id
        )
        saved = "Saved." if changes else "Nothing changed."
        outcome = f":white_check_mark: {saved} New briefs in this workspace use these settings."
    try:
        client.views_update(view_id=view["id"], view=message_view(outcome))
    except SlackApiError as exc:
        count_slack_error("views.update", exc)
    if admin:
        publish_home(
            services, context.team_id, context.user_id, enterprise_id=context.enterprise_id
        )


def answer(outcome, billing_enabled: bool) -> dict:
    """The view_submission response for each outcome of `Submissions.submit`."""
    if isinstance(outcome, BriefErrors):
        errors: dict[str, str] = {}
        for key, message in outcome.errors.items():
            # The workspace's context is not on the form: its problem shows on the first field.
            block = {"tone": K.TONE_BLOCK, "language": K.LANGUAGE_BLOCK}.get(key, key)
            if block not in FORM_BLOCKS:
                block, message = FIRST_BLOCK, f"Workspace settings: {message}"
            errors.setdefault(block, message)
        return {"response_action": "errors", "errors": errors}
    if isinstance(outcome, QuotaExhausted):
        return {"response_action": "update", "view": upgrade_view(outcome, billing_enabled)}
    if isinstance(outcome, RateLimited):
        # Keep the form (and what they typed) open; the message sits on its first field.
        return {
            "response_action": "errors",
            "errors": {FIRST_BLOCK: rate_limited_text(outcome.minutes)},
        }
    if isinstance(outcome, InvalidRequest):
        return {"response_action": "errors", "errors": {FIRST_BLOCK: INVALID_REQUEST}}
    if isinstance(outcome, Accepted):
        return {
            "response_action": "update",
            "view": writing_view(outcome.company, outcome.channel_id),
        }
    if isinstance(outcome, DuplicateRequest):
        # The first delivery already answered and is writing; close the form quietly.
        return {"response_action": "clear"}
    raise TypeError(f"unexpected submission outcome {outcome!r}")

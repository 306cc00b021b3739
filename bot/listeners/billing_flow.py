"""Turning an Upgrade or Manage billing click into a Stripe link the user can open."""

from __future__ import annotations

import logging

from slack_bolt import Respond

from bot.blocks import checkout_link_message, plain_message
from bot.runtime import Runtime
from storage.quota import workspace_usage

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "Billing isn't set up for this ColdCopy installation. Ask a workspace admin about "
    "upgrading to ColdCopy Pro."
)
STRIPE_DOWN = "I couldn't reach Stripe just now. Please try again in a minute."


def billing_link(rt: Runtime, team_id: str, user_id: str) -> str | None:
    """Checkout for a free workspace, the customer portal for a paying one."""
    usage = workspace_usage(rt.engine, rt.policy, team_id, top=0)
    if usage.plan == "pro" and usage.stripe_customer_id:
        return rt.billing.portal_url(team_id)
    return rt.billing.checkout_url(team_id, user_id, team_name=usage.name)


def send_upgrade_link(rt: Runtime, respond: Respond, team_id: str, user_id: str) -> None:
    if not rt.billing.enabled:
        respond(text=NOT_CONFIGURED, response_type="ephemeral", replace_original=False)
        return
    try:
        url = billing_link(rt, team_id, user_id)
    except Exception:
        log.exception("could not create a Stripe session", extra={"team_id": team_id})
        message = plain_message(STRIPE_DOWN)
    else:
        message = checkout_link_message(url)
    respond(
        text=message.text,
        blocks=message.blocks,
        response_type="ephemeral",
        replace_original=False,
    )

"""Turning an Upgrade or Manage billing click into a Stripe link the user can open."""

from __future__ import annotations

import logging

from slack_bolt import Respond

from bot.domain.billing import BillingError, NoCustomer
from bot.runtime.wiring import Runtime
from bot.slack.blocks import Message, checkout_link_message, plain_message
from bot.slack.listeners.ephemeral import reply
from storage.billing import billing_account

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "Billing isn't set up for this ColdCopy installation. Ask a workspace admin about "
    "upgrading to ColdCopy Pro."
)
STRIPE_DOWN = "I couldn't reach Stripe just now. Please try again in a minute."


def billing_link(rt: Runtime, team_id: str, user_id: str) -> Message:
    """Checkout for a free workspace, the customer portal for a paying one."""
    account = billing_account(rt.engine, team_id)
    if account.plan == "pro" and account.customer_id:
        return checkout_link_message(rt.billing.portal_url(team_id), portal=True)
    return checkout_link_message(rt.billing.checkout_url(team_id, user_id, team_name=account.name))


def send_upgrade_link(rt: Runtime, respond: Respond, team_id: str, user_id: str) -> None:
    if not rt.billing.enabled:
        reply(respond, NOT_CONFIGURED)
        return
    try:
        message = billing_link(rt, team_id, user_id)
    except BillingError as exc:
        log.warning("no Stripe session: %s", exc, extra={"team_id": team_id})
        message = plain_message(str(exc) if isinstance(exc, NoCustomer) else STRIPE_DOWN)
    reply(respond, message)

"""Turning an Upgrade or Manage billing click, or `/coldcopy upgrade`, into a Stripe link."""

from __future__ import annotations

import logging

from slack_bolt import Respond

from bot.domain.billing import BillingError, NoCustomer
from bot.runtime.wiring import Runtime
from bot.slack.blocks import Message, checkout_link_message, plain_message
from bot.slack.listeners.ephemeral import reply
from bot.slack.wording import ASK_AN_ADMIN, STRIPE_DOWN
from storage.billing import billing_account

log = logging.getLogger(__name__)


def billing_answer(rt: Runtime, team_id: str, user_id: str) -> tuple[Message, bool]:
    """What an Upgrade or Manage billing request gets, and whether it is a Stripe link:
    Checkout for a free workspace, the portal for a paying one, else why not. The button,
    the modal and `/coldcopy upgrade` all answer with this."""
    if not rt.billing.enabled:
        return plain_message(ASK_AN_ADMIN), False
    try:
        account = billing_account(rt.engine, team_id)
        if account.plan == "pro" and account.customer_id:
            return checkout_link_message(rt.billing.portal_url(team_id), portal=True), True
        url = rt.billing.checkout_url(team_id, user_id, team_name=account.name)
        return checkout_link_message(url), True
    except BillingError as exc:
        log.warning("no Stripe session: %s", exc, extra={"team_id": team_id})
        return plain_message(str(exc) if isinstance(exc, NoCustomer) else STRIPE_DOWN), False


def send_upgrade_link(rt: Runtime, respond: Respond, team_id: str, user_id: str) -> None:
    reply(respond, billing_answer(rt, team_id, user_id)[0])

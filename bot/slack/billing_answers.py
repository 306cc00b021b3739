"""Turning an Upgrade or Manage billing click, or `/coldcopy upgrade`, into a Stripe link: Checkout
for a free workspace (anyone may start an upgrade), the billing portal for a paying one (where a
subscription can be cancelled and the card changed: admins and owners only)."""

from __future__ import annotations

import logging

from slack_sdk import WebClient

from bot.domain.billing import BillingError, NoCustomer
from bot.slack.account_messages import checkout_link_message, plain_message
from bot.slack.block_kit import Message
from bot.slack.services import Services
from bot.slack.wording import ASK_AN_ADMIN, BILLING_ADMINS_ONLY, STRIPE_DOWN
from storage.access import Act
from storage.billing import billing_account

log = logging.getLogger(__name__)


def billing_answer(
    services: Services, client: WebClient, team_id: str, user_id: str
) -> tuple[Message, bool]:
    """What an Upgrade or Manage billing request gets, and whether it is a Stripe link. The
    button, the modal and `/coldcopy upgrade` all answer with this."""
    if not services.billing.enabled:
        return plain_message(ASK_AN_ADMIN), False
    try:
        account = billing_account(services.engine, team_id)
        if account.plan == "pro" and account.customer_id:
            if not services.may_in(client, team_id, user_id, Act.BILLING_PORTAL):
                return plain_message(BILLING_ADMINS_ONLY), False
            return checkout_link_message(services.billing.portal_url(team_id), portal=True), True
        url = services.billing.checkout_url(team_id, user_id, team_name=account.name)
        return checkout_link_message(url), True
    except BillingError as exc:
        log.warning("no Stripe session: %s", exc, extra={"team_id": team_id})
        return plain_message(str(exc) if isinstance(exc, NoCustomer) else STRIPE_DOWN), False

"""Billing with Stripe: opening Checkout and the customer portal for a workspace, and turning
Stripe's signed webhook events into plan changes. Slack-free: listeners call these methods.

Every Stripe object is created with an idempotency key, so a double click or a retry never
makes a second customer or session; the plan changes themselves are applied by
`storage.billing.apply_billing_event`, once per event and in event-time order.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import stripe
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from storage.billing import (
    BillingChange,
    CustomerTaken,
    EventOutcome,
    apply_billing_event,
    billing_account,
    customer_id_of,
    set_customer_id,
    team_of_customer,
)
from storage.models import Plan

if TYPE_CHECKING:
    from bot.core.settings import Settings

log = logging.getLogger(__name__)

# Stripe's own default: a signature older than this is a replay, not a delivery.
WEBHOOK_TOLERANCE_SECONDS = 300
# How long a past_due subscription keeps pro while Stripe retries the card.
PAST_DUE_GRACE = timedelta(days=7)
# A double click inside this window gets the same Checkout Session back. Short, because Stripe
# replays whatever the first request got (an error too) for as long as the key is reused.
CHECKOUT_KEY_WINDOW_SECONDS = 600
# Saving a new customer id is retried this often before giving up: the Stripe customer
# already exists, and losing its id would orphan it.
CUSTOMER_SAVE_ATTEMPTS = 3

PAYMENT_FAILED_MESSAGE = (
    "Your ColdCopy payment failed. Update your card in the billing portal to keep Pro."
)

PRO_STATUSES = frozenset({"active", "trialing"})
GRACE_STATUSES = frozenset({"past_due"})
FREE_STATUSES = frozenset({"unpaid", "canceled", "incomplete_expired", "paused"})

SUBSCRIPTION_EVENTS = frozenset({"customer.subscription.created", "customer.subscription.updated"})
HANDLED_EVENTS = SUBSCRIPTION_EVENTS | {
    "checkout.session.completed",
    "customer.subscription.deleted",
    "invoice.payment_failed",
}


class BillingError(Exception):
    """Billing could not do what was asked; the message is safe to show to a user."""


class BillingDisabled(BillingError):
    """STRIPE_SECRET_KEY, STRIPE_PRICE_ID or COLDCOPY_PUBLIC_URL is not set."""


class NoCustomer(BillingError):
    """The workspace has never started a checkout, so there is no portal to open."""


class StripeUnavailable(BillingError):
    """Stripe refused or could not be reached; nothing was changed locally."""


@dataclass(frozen=True)
class WebhookOutcome:
    """The HTTP answer for Stripe, and what (if anything) to tell the workspace's admins."""

    status: int
    message: str
    team_id: str | None = None
    notify_admins: str | None = None


class Billing:
    def __init__(
        self,
        *,
        engine: Engine,
        client: stripe.StripeClient | None,
        price_id: str | None,
        public_url: str | None,
        webhook_secret: str | None,
    ):
        self._engine = engine
        self._client = client
        self._price_id = price_id
        self._public_url = public_url.rstrip("/") if public_url else None
        self._webhook_secret = webhook_secret

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> Billing:
        client = None
        if settings.stripe_secret_key:
            client = stripe.StripeClient(
                settings.stripe_secret_key,
                base_addresses=(
                    {"api": settings.stripe_api_base} if settings.stripe_api_base else None
                ),
                max_network_retries=2,
            )
        return cls(
            engine=engine,
            client=client,
            price_id=settings.stripe_price_id,
            public_url=settings.public_url,
            webhook_secret=settings.stripe_webhook_secret,
        )

    @property
    def enabled(self) -> bool:
        return bool(self._client and self._price_id and self._public_url)

    # --- Checkout and the portal -------------------------------------------------------

    def checkout_url(self, team_id: str, user_id: str, team_name: str | None = None) -> str:
        """A Stripe Checkout URL for the pro subscription of this workspace."""
        client = self._require_client()
        customer_id = self._ensure_customer(client, team_id, team_name)
        window = int(time.time()) // CHECKOUT_KEY_WINDOW_SECONDS
        params: dict[str, Any] = {
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": team_id,
            "line_items": [{"price": self._price_id, "quantity": 1}],
            "metadata": {"team_id": team_id},
            "subscription_data": {"metadata": {"team_id": team_id}},
            "success_url": f"{self._public_url}/billing/success",
            "cancel_url": f"{self._public_url}/billing/cancelled",
        }
        try:
            session = client.v1.checkout.sessions.create(
                params,
                {"idempotency_key": f"coldcopy-checkout-{team_id}-{user_id}-{window}"},
            )
        except stripe.StripeError as exc:
            log.error("Stripe refused a Checkout Session for %s: %s", team_id, exc)
            raise StripeUnavailable("Stripe could not open Checkout; try again shortly") from exc
        return str(session.url)

    def portal_url(self, team_id: str) -> str:
        """A Stripe customer portal URL where admins manage the card and the subscription."""
        client = self._require_client()
        customer_id = customer_id_of(self._engine, team_id)
        if customer_id is None:
            raise NoCustomer("This workspace has no subscription to manage yet")
        try:
            session = client.v1.billing_portal.sessions.create(
                {"customer": customer_id, "return_url": self._public_url or ""}
            )
        except stripe.StripeError as exc:
            log.error("Stripe refused a portal session for %s: %s", team_id, exc)
            raise StripeUnavailable("Stripe could not open the portal; try again shortly") from exc
        return str(session.url)

    def _require_client(self) -> stripe.StripeClient:
        if not self.enabled or self._client is None:
            raise BillingDisabled("Billing is not configured on this ColdCopy")
        return self._client

    def _ensure_customer(
        self, client: stripe.StripeClient, team_id: str, team_name: str | None
    ) -> str:
        """The workspace's Stripe customer, created at most once however many admins click."""
        account = billing_account(self._engine, team_id, team_name=team_name)
        if account.customer_id is not None:
            return account.customer_id
        params: dict[str, Any] = {"metadata": {"team_id": team_id}}
        # The stored name, not the caller's: concurrent requests must send identical
        # parameters, or Stripe rejects the shared idempotency key.
        if account.name:
            params["name"] = account.name
        try:
            customer = client.v1.customers.create(
                params,
                {"idempotency_key": f"coldcopy-customer-{team_id}"},
            )
        except stripe.StripeError as exc:
            log.error("Stripe refused a customer for %s: %s", team_id, exc)
            raise StripeUnavailable("Stripe could not open Checkout; try again shortly") from exc
        return self._save_customer(team_id, customer.id)

    def _save_customer(self, team_id: str, customer_id: str) -> str:
        # The customer exists at Stripe now; a lost save would orphan it, so retry transient
        # database errors. Should every attempt fail, the next click's identical idempotency
        # key gets this same customer back from Stripe (for 24 hours).
        for attempt in range(1, CUSTOMER_SAVE_ATTEMPTS + 1):
            try:
                stored = set_customer_id(self._engine, team_id, customer_id)
                break
            except CustomerTaken as exc:
                log.error("%s (asked for by workspace %s)", exc, team_id)
                raise BillingError("Could not open Checkout; contact support") from exc
            except IntegrityError:
                raise  # not transient: set_customer_id already resolved unique conflicts
            except DBAPIError as exc:
                if attempt == CUSTOMER_SAVE_ATTEMPTS:
                    log.error("could not save Stripe customer %s of %s", customer_id, team_id)
                    raise BillingError("Could not open Checkout; try again shortly") from exc
                log.warning("saving Stripe customer of %s failed (%s); retrying", team_id, exc)
                time.sleep(0.05 * 2**attempt)
        if stored != customer_id:
            log.warning(
                "workspace %s already had customer %s; Stripe customer %s is unused",
                team_id,
                stored,
                customer_id,
            )
        return stored

    # --- webhooks ------------------------------------------------------------------------

    def handle_webhook(self, payload: bytes, signature_header: str | None) -> WebhookOutcome:
        """Verify a Stripe delivery against the raw body and apply it at most once.

        400: not from Stripe (or unreadable), nothing is stored. 500: a failure on our side,
        nothing half-applied, and Stripe will deliver again. 200 otherwise.
        """
        if not self._webhook_secret:
            log.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set")
            return WebhookOutcome(500, "webhook secret not configured")
        try:
            event = stripe.Webhook.construct_event(
                payload,
                signature_header,
                self._webhook_secret,
                tolerance=WEBHOOK_TOLERANCE_SECONDS,
            ).to_dict()
            event_id, event_type = str(event["id"]), str(event["type"])
            created = datetime.fromtimestamp(int(event["created"]), UTC)
            obj = event["data"]["object"]
        except stripe.SignatureVerificationError as exc:
            log.warning("rejected a Stripe webhook: %s", exc)
            return WebhookOutcome(400, "invalid signature")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("rejected an unreadable Stripe webhook: %s", exc)
            return WebhookOutcome(400, "invalid payload")

        if event_type not in HANDLED_EVENTS:
            return WebhookOutcome(200, "ignored")
        try:
            return self._apply(event_id, event_type, created, obj)
        except Exception:
            log.exception("Stripe event %s (%s) failed; Stripe will retry", event_id, event_type)
            return WebhookOutcome(500, "failed; retry")

    def _apply(
        self, event_id: str, event_type: str, created: datetime, obj: dict
    ) -> WebhookOutcome:
        change = _change_for(event_type, obj, created)
        if change is None:
            return WebhookOutcome(200, "ignored")
        team_id = self._team_of(obj)
        if team_id is None:
            log.warning(
                "Stripe event %s (%s) names no known workspace (customer %s)",
                event_id,
                event_type,
                obj.get("customer"),
            )
            return WebhookOutcome(200, "no workspace for this event")
        outcome = apply_billing_event(
            self._engine,
            event_id=event_id,
            event_type=event_type,
            event_created_at=created,
            team_id=team_id,
            change=change,
        )
        if outcome == EventOutcome.UNKNOWN_WORKSPACE:
            log.warning(
                "ignored Stripe event %s (%s): workspace %s never installed ColdCopy",
                event_id,
                event_type,
                team_id[:64],
            )
            return WebhookOutcome(200, "no workspace for this event")
        log.info("Stripe event %s (%s) for %s: %s", event_id, event_type, team_id, outcome)
        notify = None
        if event_type == "invoice.payment_failed" and outcome != EventOutcome.DUPLICATE:
            notify = PAYMENT_FAILED_MESSAGE
        return WebhookOutcome(200, str(outcome), team_id=team_id, notify_admins=notify)

    def _team_of(self, obj: dict) -> str | None:
        """The workspace an object belongs to: our metadata first, then the customer mapping."""
        parent = obj.get("parent") or {}
        for metadata in (
            obj.get("metadata"),
            (obj.get("subscription_details") or {}).get("metadata"),
            (parent.get("subscription_details") or {}).get("metadata"),
        ):
            if metadata and metadata.get("team_id"):
                return str(metadata["team_id"])
        if obj.get("client_reference_id"):
            return str(obj["client_reference_id"])
        customer = _id_of(obj.get("customer"))
        return team_of_customer(self._engine, customer) if customer else None


def _change_for(event_type: str, obj: dict, created: datetime) -> BillingChange | None:
    """What a handled event means for the workspace; None when it means nothing."""
    customer = _id_of(obj.get("customer"))
    if event_type == "checkout.session.completed":
        if obj.get("mode") != "subscription":
            return None
        # Delayed payment methods complete Checkout unpaid; the subscription's own
        # events upgrade the workspace once the money arrives.
        paid = obj.get("payment_status") in ("paid", "no_payment_required")
        return BillingChange(
            plan=Plan.PRO if paid else None,
            subscription_status="active" if paid else None,
            subscription_id=_id_of(obj.get("subscription")),
            customer_id=customer,
        )
    if event_type == "customer.subscription.deleted":
        return BillingChange(
            plan=Plan.FREE,
            subscription_status=obj.get("status") or "canceled",
            subscription_id=obj.get("id"),
            customer_id=customer,
            downgrade=True,
        )
    if event_type in SUBSCRIPTION_EVENTS:
        status = obj.get("status")
        if status in PRO_STATUSES:
            plan, grace = Plan.PRO, None
        elif status in GRACE_STATUSES:
            plan, grace = Plan.PRO, created + PAST_DUE_GRACE
        elif status in FREE_STATUSES:
            plan, grace = Plan.FREE, None
        else:
            # incomplete: the first payment is still pending; the plan stays as it is.
            plan, grace = None, None
        return BillingChange(
            plan=plan,
            grace_until=grace,
            subscription_status=status,
            subscription_id=obj.get("id"),
            customer_id=customer,
            period=_period_of(obj) if plan == Plan.PRO else None,
            downgrade=plan == Plan.FREE,
        )
    if event_type == "invoice.payment_failed":
        # Nothing changes yet: the subscription's past_due event starts the grace period.
        return BillingChange()
    return None


def _id_of(value: Any) -> str | None:
    """An expandable field: a bare id, or the expanded object carrying one."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def _period_of(sub: dict) -> tuple[datetime, datetime] | None:
    """The current period: on the subscription before API version 2025-03-31, on its items
    since."""
    start, end = sub.get("current_period_start"), sub.get("current_period_end")
    if start is None or end is None:
        items = (sub.get("items") or {}).get("data") or []
        if items:
            start, end = items[0].get("current_period_start"), items[0].get("current_period_end")
    if start is None or end is None:
        return None
    return datetime.fromtimestamp(int(start), UTC), datetime.fromtimestamp(int(end), UTC)

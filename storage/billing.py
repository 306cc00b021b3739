"""The billing ledger: which Stripe customer a workspace is, and the plan changes Stripe's
webhook events make, each applied once, atomically and in event-time order.

An event id is recorded with `INSERT ... ON CONFLICT DO NOTHING` in the same transaction that
changes the workspace, so of two identical deliveries (even concurrent ones) exactly one has an
effect, and a failure half-way leaves neither the event nor the change behind: Stripe's retry
then applies it. Nothing here knows Stripe's API or Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine, select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError

from storage.db import reading, transaction
from storage.models import StripeEvent, Workspace, utcnow
from storage.workspaces import dialect_insert, ensure_workspace, lock_workspace

W = Workspace.__table__
E = StripeEvent.__table__


class SubscriptionStatus:
    """The Stripe subscription statuses the ledger itself reasons about."""

    PAST_DUE = "past_due"


class EventOutcome(StrEnum):
    APPLIED = "applied"
    # Recorded, but older than the last event applied to the workspace: it changed nothing.
    STALE = "stale"
    # This event id was recorded before: nothing was done this time.
    DUPLICATE = "duplicate"
    # The event names a workspace that never installed ColdCopy: nothing was recorded.
    UNKNOWN_WORKSPACE = "unknown workspace"


@dataclass(frozen=True)
class BillingChange:
    """What one Stripe event says about a workspace; None leaves that field as it is."""

    plan: str | None = None
    subscription_status: str | None = None
    subscription_id: str | None = None
    customer_id: str | None = None
    # The subscription's current billing period (start, end).
    period: tuple[datetime, datetime] | None = None
    # With plan "pro": pro access ends at this time unless a later event restores it (past_due).
    # Any plan change without it clears the grace period.
    grace_until: datetime | None = None
    # A downgrade about a subscription other than the stored one is ignored: cancelling a
    # superseded subscription must not take away the plan the current one pays for.
    downgrade: bool = False


@dataclass(frozen=True)
class BillingAccount:
    team_id: str
    name: str | None
    plan: str
    customer_id: str | None
    subscription_id: str | None
    subscription_status: str | None


class CustomerTaken(Exception):
    """The Stripe customer is already the customer of another workspace."""


def apply_billing_event(
    engine: Engine,
    *,
    event_id: str,
    event_type: str,
    event_created_at: datetime,
    team_id: str,
    change: BillingChange,
    now: datetime | None = None,
) -> EventOutcome:
    """Record the event and apply its change to the workspace, in one transaction.

    A duplicate event id changes nothing. An event older than the last one applied
    (`billing_event_at`) is recorded but changes nothing, so a late `updated(active)` cannot undo
    a `deleted`. A period that starts later than the stored one begins a new period (`used`
    back to 0); the quota reads plan and grace at every reservation, so a change counts at once.
    """
    now = now or utcnow()
    with transaction(engine) as conn:
        # Plans belong to workspaces that installed (a checkout starts from one); an event
        # naming any other team must not create a workspace, let alone a paying one.
        ws = lock_workspace(conn, team_id)
        if ws is None:
            return EventOutcome.UNKNOWN_WORKSPACE
        recorded = conn.execute(
            dialect_insert(conn, E)
            .values(
                event_id=event_id,
                type=event_type,
                team_id=team_id,
                event_created_at=event_created_at,
                processed_at=now,
            )
            .on_conflict_do_nothing(index_elements=[E.c.event_id])
            .returning(E.c.event_id)
        ).first()
        if recorded is None:
            return EventOutcome.DUPLICATE
        if ws.billing_event_at is not None and event_created_at < ws.billing_event_at:
            return EventOutcome.STALE

        values: dict = {"updated_at": now}
        if change.plan is not None or change.subscription_status is not None:
            # Only events about the plan set the clock: an invoice's event must not make an
            # older subscription update look stale.
            values["billing_event_at"] = event_created_at
        superseded = (
            change.downgrade
            and change.subscription_id is not None
            and ws.stripe_subscription_id is not None
            and change.subscription_id != ws.stripe_subscription_id
        )
        if superseded:
            # Recorded only: the stored subscription decides the plan, and this event's time
            # must not make that subscription's own events look stale.
            return EventOutcome.APPLIED

        if change.plan is not None:
            values["plan"] = change.plan
            values["grace_until"] = _grace(ws, change)
        if change.subscription_status is not None:
            values["subscription_status"] = change.subscription_status
        if change.subscription_id is not None:
            values["stripe_subscription_id"] = change.subscription_id
        if change.customer_id is not None and ws.stripe_customer_id is None:
            holder = conn.execute(
                select(W.c.team_id).where(W.c.stripe_customer_id == change.customer_id)
            ).scalar_one_or_none()
            if holder is None:
                values["stripe_customer_id"] = change.customer_id
        if change.period is not None:
            start, end = change.period
            if start > ws.period_start:
                values.update(period_start=start, period_end=end, used=0)
            elif start == ws.period_start:
                values["period_end"] = end
            # An earlier start is ignored: period_start never moves back, because generations
            # remember it to give a unit back only within the same period.
        conn.execute(sa_update(W).where(W.c.team_id == team_id).values(**values))
        return EventOutcome.APPLIED


def _grace(ws, change: BillingChange) -> datetime | None:
    if change.grace_until is None:
        return None
    # Grace counts from the first failed payment: a later past_due event does not extend it.
    if ws.subscription_status == SubscriptionStatus.PAST_DUE and ws.grace_until is not None:
        return min(ws.grace_until, change.grace_until)
    return change.grace_until


def billing_account(
    engine: Engine, team_id: str, *, team_name: str | None = None, now: datetime | None = None
) -> BillingAccount:
    """The workspace's billing state, creating the workspace row if it is new."""
    with transaction(engine) as conn:
        ensure_workspace(conn, team_id, name=team_name, now=now)
        ws = conn.execute(select(W).where(W.c.team_id == team_id)).one()
    return BillingAccount(
        team_id=ws.team_id,
        name=ws.name,
        plan=ws.plan,
        customer_id=ws.stripe_customer_id,
        subscription_id=ws.stripe_subscription_id,
        subscription_status=ws.subscription_status,
    )


def set_customer_id(engine: Engine, team_id: str, customer_id: str) -> str:
    """Make `customer_id` the workspace's Stripe customer unless it already has one.

    Returns the stored id: the given one if it was saved, else the one another request saved
    first. Raises CustomerTaken if the customer belongs to a different workspace.
    """
    try:
        with transaction(engine) as conn:
            ensure_workspace(conn, team_id)
            conn.execute(
                sa_update(W)
                .where(W.c.team_id == team_id, W.c.stripe_customer_id.is_(None))
                .values(stripe_customer_id=customer_id, updated_at=utcnow())
            )
            return conn.execute(
                select(W.c.stripe_customer_id).where(W.c.team_id == team_id)
            ).scalar_one()
    except IntegrityError:
        # The unique customer id is mapped already: reuse our own mapping if we have one.
        stored = customer_id_of(engine, team_id)
        if stored is not None:
            return stored
        holder = team_of_customer(engine, customer_id)
        raise CustomerTaken(
            f"Stripe customer {customer_id} already belongs to workspace {holder}"
        ) from None


def customer_id_of(engine: Engine, team_id: str) -> str | None:
    with reading(engine) as conn:
        return conn.execute(
            select(W.c.stripe_customer_id).where(W.c.team_id == team_id)
        ).scalar_one_or_none()


def team_of_customer(engine: Engine, customer_id: str) -> str | None:
    with reading(engine) as conn:
        return conn.execute(
            select(W.c.team_id).where(W.c.stripe_customer_id == customer_id)
        ).scalar_one_or_none()

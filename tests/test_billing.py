"""Billing, on SQLite and PostgreSQL against a local fake Stripe: one customer per workspace
however many admins click, Checkout's parameters, and webhooks that arrive twice, concurrently,
out of order, unsigned or stale, and change the quota at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from helpers import make_settings
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError
from stripe import WebhookSignature

from bot.domain.billing import (
    PAST_DUE_GRACE,
    Billing,
    BillingDisabled,
    NoCustomer,
    StripeUnavailable,
    WebhookOutcome,
)
from storage.billing import set_customer_id, team_of_customer
from storage.db import reading, transaction
from storage.ledger import Reserved, reserve_generation
from storage.models import StripeEvent, Workspace
from storage.quota import QuotaExhausted, QuotaPolicy
from storage.workspaces import ensure_workspace
from testkit.fakes.stripe import (
    FakeStripe,
    checkout_session_completed,
    invoice_payment_failed,
    signed_event,
    subscription,
    subscription_deleted,
    subscription_updated,
)
from testkit.waiting import wait_until

W = Workspace.__table__
E = StripeEvent.__table__

SECRET = "whsec_test_coldcopy"
PRICE = "price_pro_monthly"
PUBLIC_URL = "https://coldcopy.example"
POLICY = QuotaPolicy(free=3, pro=200)
# Stripe's event times are whole seconds. A subscription period starting at T0 starts after the
# workspace's first (calendar month) period, which begins at the latest now.
T0 = int(time.time()) + 1
DAY = 24 * 3600


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def billing(engine: Engine, fake_stripe: FakeStripe) -> Billing:
    settings = make_settings(
        stripe_secret_key=fake_stripe.api_key,
        stripe_webhook_secret=SECRET,
        stripe_price_id=PRICE,
        stripe_api_base=fake_stripe.base_url,
        public_url=PUBLIC_URL,
    )
    return Billing.from_settings(settings, engine)


def deliver(billing: Billing, evt: dict, *, secret: str = SECRET, timestamp=None) -> WebhookOutcome:
    payload, header = signed_event(evt, secret, timestamp=timestamp)
    return billing.handle_webhook(payload, header)


def installed(engine: Engine, team: str = "T1") -> None:
    """The workspace row a team has once it installed ColdCopy (billing events need one)."""
    with transaction(engine) as conn:
        ensure_workspace(conn, team)


def workspace(engine: Engine, team: str = "T1"):
    with reading(engine) as conn:
        return conn.execute(select(W).where(W.c.team_id == team)).first()


def recorded_events(engine: Engine) -> int:
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(E)).scalar_one()


def reserve(engine: Engine, team: str = "T1", now: datetime | None = None):
    return reserve_generation(
        engine,
        POLICY,
        team_id=team,
        user_id="U1",
        channel_id="C1",
        idempotency_key=f"view-{time.monotonic_ns()}-{threading.get_ident()}",
        now=now,
    )


def use_up_free_quota(engine: Engine, team: str = "T1") -> None:
    for _ in range(POLICY.free):
        assert isinstance(reserve(engine, team), Reserved)
    assert isinstance(reserve(engine, team), QuotaExhausted)


def subscribe(billing: Billing, engine: Engine, team: str = "T1", *, created: int = T0) -> None:
    """A completed checkout: the workspace's customer and subscription, and pro."""
    customer = f"cus_{team}"
    set_customer_id(engine, team, customer)
    evt = checkout_session_completed(
        team_id=team, customer=customer, subscription=f"sub_{team}", created=created
    )
    assert deliver(billing, evt).status == 200


def sub_object(
    team: str = "T1",
    *,
    status: str,
    start: int = T0,
    end: int = T0 + 30 * DAY,
    sub_id: str | None = None,
    **kwargs,
) -> dict:
    return subscription(
        subscription_id=sub_id or f"sub_{team}",
        customer=f"cus_{team}",
        status=status,
        period_start=start,
        period_end=end,
        team_id=team,
        **kwargs,
    )


def fail_once_on(engine: Engine, fragment: str) -> None:
    """The database refuses the next statement containing `fragment`, as a dropped connection
    would: what our code does next is under test, not the statement."""
    state = {"armed": True}

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse(conn, cursor, statement, parameters, context, executemany):
        if state["armed"] and fragment in statement:
            state["armed"] = False
            raise OperationalError(statement, parameters, Exception("connection lost"))


# --- configuration ---------------------------------------------------------------------


def test_billing_is_disabled_without_stripe_settings(sqlite_engine):
    billing = Billing.from_settings(make_settings(), sqlite_engine)
    assert billing.enabled is False
    with pytest.raises(BillingDisabled):
        billing.checkout_url("T1", "U1")
    half = make_settings(stripe_secret_key="sk_test_x", stripe_price_id=PRICE)
    assert Billing.from_settings(half, sqlite_engine).enabled is False


def test_billing_is_enabled_with_key_price_and_public_url(billing):
    assert billing.enabled is True


# --- Checkout and the portal -------------------------------------------------------------


def test_checkout_opens_a_subscription_session_for_the_workspace(billing, fake_stripe, engine):
    url = billing.checkout_url("T1", "U1", team_name="Acme")

    [session] = fake_stripe.checkout_sessions.values()
    assert url == session["url"]
    assert url.startswith("https://checkout.stripe.test/c/pay/cs_test_")
    [request] = fake_stripe.requests_to("/v1/checkout/sessions")
    params = request.params
    assert params["mode"] == "subscription"
    assert params["line_items"] == [{"price": PRICE, "quantity": "1"}]
    assert params["client_reference_id"] == "T1"
    assert params["metadata"] == {"team_id": "T1"}
    assert params["subscription_data"] == {"metadata": {"team_id": "T1"}}
    assert params["success_url"] == f"{PUBLIC_URL}/billing/success"
    assert params["cancel_url"] == f"{PUBLIC_URL}/billing/cancelled"
    assert request.idempotency_key and "T1" in request.idempotency_key
    # The session is for the customer the workspace stores.
    ws = workspace(engine)
    assert params["customer"] == ws.stripe_customer_id
    assert fake_stripe.customers[ws.stripe_customer_id]["metadata"] == {"team_id": "T1"}
    assert fake_stripe.customers[ws.stripe_customer_id]["name"] == "Acme"


def test_a_double_click_gets_the_same_checkout_session(billing, fake_stripe):
    first = billing.checkout_url("T1", "U1")
    second = billing.checkout_url("T1", "U1")
    assert first == second
    assert len(fake_stripe.checkout_sessions) == 1
    requests = fake_stripe.requests_to("/v1/checkout/sessions")
    assert [r.replayed for r in requests] == [False, True]
    assert len(fake_stripe.customers) == 1


def test_concurrent_checkout_clicks_make_one_customer(billing, fake_stripe, engine):
    barrier = threading.Barrier(5)

    def click(i: int) -> str:
        barrier.wait()
        return billing.checkout_url("T1", f"U{i}")

    with ThreadPoolExecutor(max_workers=5) as pool:
        urls = list(pool.map(click, range(5)))

    assert len(set(urls)) == 5  # five admins, five sessions ...
    assert len(fake_stripe.customers) == 1  # ... of one customer
    [customer_id] = fake_stripe.customers
    assert workspace(engine).stripe_customer_id == customer_id
    assert {s["customer"] for s in fake_stripe.checkout_sessions.values()} == {customer_id}
    creates = fake_stripe.requests_to("/v1/customers")
    assert len({r.idempotency_key for r in creates}) == 1
    assert sum(not r.replayed for r in creates) == 1


def test_a_stored_customer_is_reused_without_asking_stripe(billing, fake_stripe, engine):
    billing.checkout_url("T1", "U1")
    billing.checkout_url("T1", "U2")
    assert len(fake_stripe.requests_to("/v1/customers")) == 1


def test_a_failed_customer_save_is_retried_not_orphaned(billing, fake_stripe, engine):
    fail_once_on(engine, "SET stripe_customer_id")
    billing.checkout_url("T1", "U1")
    assert len(fake_stripe.customers) == 1
    [customer_id] = fake_stripe.customers
    assert workspace(engine).stripe_customer_id == customer_id


def test_a_stripe_error_on_customer_creation_is_retried_with_the_same_key(
    billing, fake_stripe, engine
):
    fake_stripe.fail_next("/v1/customers", status=500)
    billing.checkout_url("T1", "U1")
    creates = fake_stripe.requests_to("/v1/customers")
    assert len(creates) == 2
    assert creates[0].idempotency_key == creates[1].idempotency_key
    assert len(fake_stripe.customers) == 1
    assert workspace(engine).stripe_customer_id in fake_stripe.customers


def test_stripe_refusing_checkout_is_a_billing_error_and_the_customer_is_kept(
    billing, fake_stripe, engine
):
    fake_stripe.fail_next(
        "/v1/checkout/sessions", status=500, times=3
    )  # the first try and 2 retries
    with pytest.raises(StripeUnavailable):
        billing.checkout_url("T1", "U1")
    [customer_id] = fake_stripe.customers
    assert workspace(engine).stripe_customer_id == customer_id

    billing.checkout_url("T1", "U1")
    assert len(fake_stripe.customers) == 1
    assert len(fake_stripe.checkout_sessions) == 1


def test_saving_a_customer_keeps_the_first_one(engine):
    assert set_customer_id(engine, "T1", "cus_first") == "cus_first"
    assert set_customer_id(engine, "T1", "cus_second") == "cus_first"
    assert team_of_customer(engine, "cus_first") == "T1"
    assert team_of_customer(engine, "cus_second") is None


def test_the_portal_opens_for_the_stored_customer(billing, fake_stripe, engine):
    with pytest.raises(NoCustomer):
        billing.portal_url("T1")
    billing.checkout_url("T1", "U1")
    url = billing.portal_url("T1")
    [session] = fake_stripe.portal_sessions.values()
    assert url == session["url"]
    assert session["customer"] == workspace(engine).stripe_customer_id
    assert session["return_url"] == PUBLIC_URL


# --- webhooks: authenticity ----------------------------------------------------------------


def _completed(team: str = "T1", **kwargs) -> dict:
    return checkout_session_completed(
        team_id=team, customer=f"cus_{team}", subscription=f"sub_{team}", created=T0, **kwargs
    )


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "no header", "other body", "garbage header"],
)
def test_an_unverified_delivery_is_refused_and_changes_nothing(billing, engine, tamper):
    payload, header = signed_event(_completed(), SECRET)
    if tamper == "wrong secret":
        payload, header = signed_event(_completed(), "whsec_someone_else")
    elif tamper == "no header":
        header = None
    elif tamper == "other body":
        payload = payload.replace(b'"T1"', b'"T2"')
    else:
        header = "t=abc,v1=nope"

    outcome = billing.handle_webhook(payload, header)

    assert outcome.status == 400
    assert recorded_events(engine) == 0
    assert workspace(engine, "T1") is None
    assert workspace(engine, "T2") is None


def test_a_stale_signature_is_refused(billing, engine):
    six_minutes_ago = int(time.time()) - 6 * 60
    outcome = deliver(billing, _completed(), timestamp=six_minutes_ago)
    assert outcome.status == 400
    assert recorded_events(engine) == 0
    assert workspace(engine) is None


def test_a_signed_but_unreadable_payload_is_refused(billing, engine):
    payload = b"this is not json"
    header = WebhookSignature.generate_signature_header(payload.decode(), SECRET)
    assert billing.handle_webhook(payload, header).status == 400
    assert recorded_events(engine) == 0


# --- webhooks: plan changes reach the quota at once ---------------------------------------


def test_a_completed_checkout_lifts_the_quota_for_the_very_next_request(billing, engine):
    use_up_free_quota(engine)
    outcome = deliver(billing, _completed())
    assert (outcome.status, outcome.team_id, outcome.notify_admins) == (200, "T1", None)

    upgraded = reserve(engine)
    assert isinstance(upgraded, Reserved)
    assert upgraded.limit == POLICY.pro
    ws = workspace(engine)
    assert (ws.plan, ws.subscription_status) == ("pro", "active")
    assert (ws.stripe_customer_id, ws.stripe_subscription_id) == ("cus_T1", "sub_T1")


def test_a_checkout_without_metadata_finds_the_team_by_client_reference_id(billing, engine):
    installed(engine)
    assert deliver(billing, _completed(metadata=False)).team_id == "T1"
    assert workspace(engine).plan == "pro"


def test_an_unpaid_checkout_does_not_upgrade_yet(billing, engine):
    installed(engine)
    deliver(billing, _completed(payment_status="unpaid"))
    ws = workspace(engine)
    assert ws.plan == "free"
    assert ws.stripe_subscription_id == "sub_T1"


def test_a_deleted_subscription_means_the_free_quota_at_once(billing, engine):
    subscribe(billing, engine)
    for _ in range(5):
        assert isinstance(reserve(engine), Reserved)

    deleted = subscription_deleted(sub_object(status="active"), created=T0 + DAY)
    assert deliver(billing, deleted).status == 200

    refused = reserve(engine)
    assert isinstance(refused, QuotaExhausted)
    assert refused.limit == POLICY.free
    ws = workspace(engine)
    assert (ws.plan, ws.subscription_status) == ("free", "canceled")


@pytest.mark.parametrize("status", ["unpaid", "canceled", "incomplete_expired"])
def test_a_subscription_that_stopped_paying_means_free(billing, engine, status):
    subscribe(billing, engine)
    deliver(billing, subscription_updated(sub_object(status=status), created=T0 + DAY))
    assert workspace(engine).plan == "free"
    assert reserve(engine).limit == POLICY.free


def test_past_due_keeps_pro_until_the_grace_period_ends(billing, engine):
    subscribe(billing, engine)
    failed_at = T0 + 30 * DAY
    deliver(
        billing,
        subscription_updated(
            sub_object(status="past_due"), created=failed_at, previous_status="active"
        ),
    )
    failed = datetime.fromtimestamp(failed_at, UTC)
    assert workspace(engine).grace_until == failed + PAST_DUE_GRACE

    # Stripe retries the card and reports past_due again: the grace period does not grow.
    deliver(billing, subscription_updated(sub_object(status="past_due"), created=failed_at + DAY))
    assert workspace(engine).grace_until == failed + PAST_DUE_GRACE

    in_grace = reserve(engine, now=failed + PAST_DUE_GRACE - timedelta(seconds=1))
    assert in_grace.limit == POLICY.pro
    after_grace = reserve(engine, now=failed + PAST_DUE_GRACE + timedelta(seconds=1))
    assert after_grace.limit == POLICY.free

    # The card works again: pro, and no grace clock.
    deliver(billing, subscription_updated(sub_object(status="active"), created=failed_at + 2 * DAY))
    ws = workspace(engine)
    assert (ws.plan, ws.grace_until, ws.subscription_status) == ("pro", None, "active")
    assert reserve(engine, now=failed + 30 * PAST_DUE_GRACE).limit == POLICY.pro


def test_a_new_period_resets_usage_and_the_same_period_does_not(billing, engine):
    subscribe(billing, engine)
    start, end = T0, T0 + 31 * DAY
    deliver(
        billing,
        subscription_updated(sub_object(status="active", start=start, end=end), created=T0 + 1),
    )
    ws = workspace(engine)
    assert (ws.period_start, ws.period_end) == (
        datetime.fromtimestamp(start, UTC),
        datetime.fromtimestamp(end, UTC),
    )
    now = datetime.fromtimestamp(T0 + DAY, UTC)
    for _ in range(4):
        reserve(engine, now=now)
    assert workspace(engine).used == 4

    # Another event about the same period (a metadata change, say) leaves usage alone.
    deliver(
        billing,
        subscription_updated(
            sub_object(status="active", start=start, end=end), created=T0 + 2 * DAY
        ),
    )
    assert workspace(engine).used == 4

    # The renewal starts a new period: usage back to zero. Older API versions put the period
    # on the subscription instead of its items; both are read.
    renewed = sub_object(status="active", start=end, end=end + 30 * DAY, period_on_items=False)
    deliver(billing, subscription_updated(renewed, created=end + 60))
    ws = workspace(engine)
    assert ws.used == 0
    assert ws.period_start == datetime.fromtimestamp(end, UTC)
    assert ws.period_end == datetime.fromtimestamp(end + 30 * DAY, UTC)


def test_cancelling_a_superseded_subscription_keeps_the_current_one(billing, engine):
    subscribe(billing, engine)
    old = sub_object(status="active", sub_id="sub_old")
    deliver(billing, subscription_deleted(old, created=T0 + DAY))
    ws = workspace(engine)
    assert (ws.plan, ws.stripe_subscription_id) == ("pro", "sub_T1")
    # ... and the current subscription's earlier-stamped events still count.
    past_due = subscription_updated(sub_object(status="past_due"), created=T0 + 1)
    assert deliver(billing, past_due).message == "applied"
    assert workspace(engine).subscription_status == "past_due"


# --- webhooks: twice, concurrently, out of order --------------------------------------------


def test_a_redelivered_event_has_no_second_effect(billing, engine):
    installed(engine)
    completed = _completed()
    assert deliver(billing, completed).message == "applied"
    # A cancellation from the same second is applied after it ...
    deliver(billing, subscription_deleted(sub_object(status="active"), created=T0))
    assert workspace(engine).plan == "free"
    # ... and Stripe's redelivery of the checkout must not bring pro back.
    again = deliver(billing, completed)
    assert (again.status, again.message) == (200, "duplicate")
    assert workspace(engine).plan == "free"
    assert recorded_events(engine) == 2


def test_concurrent_identical_deliveries_apply_once(billing, engine):
    subscribe(billing, engine)
    failed = invoice_payment_failed(
        customer="cus_T1", subscription_id="sub_T1", team_id="T1", created=T0 + DAY
    )
    payload, header = signed_event(failed, SECRET)
    barrier = threading.Barrier(8)

    def deliver_copy(_: int) -> WebhookOutcome:
        barrier.wait()
        return billing.handle_webhook(payload, header)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver_copy, range(8)))

    assert all(o.status == 200 for o in outcomes)
    assert sorted(o.message for o in outcomes) == ["applied"] + ["duplicate"] * 7
    assert sum(o.notify_admins is not None for o in outcomes) == 1
    with reading(engine) as conn:
        ids = conn.execute(select(E.c.event_id).where(E.c.type == "invoice.payment_failed"))
        assert list(ids.scalars()) == [failed["id"]]


def test_concurrent_different_events_for_one_workspace_all_apply_in_time_order(billing, engine):
    subscribe(billing, engine)
    events = [
        subscription_updated(sub_object(status="active"), created=T0 + i) for i in range(1, 7)
    ] + [subscription_deleted(sub_object(status="active"), created=T0 + 100)]
    barrier = threading.Barrier(len(events))

    def deliver_one(evt: dict) -> WebhookOutcome:
        barrier.wait()
        return deliver(billing, evt)

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        outcomes = list(pool.map(deliver_one, events))

    assert all(o.status == 200 for o in outcomes)
    ws = workspace(engine)
    assert ws.plan == "free"  # the newest event, whichever thread ran last
    assert ws.billing_event_at == datetime.fromtimestamp(T0 + 100, UTC)
    assert recorded_events(engine) == 1 + len(events)


def test_the_workspace_stays_locked_while_an_event_is_applied(billing, engine):
    """An older event that read the workspace first must not overwrite a newer one that
    arrives while it is still working: the newer one waits for the row."""
    subscribe(billing, engine)
    role = threading.local()
    older_has_read, newer_asked, newer_done = (threading.Event() for _ in range(3))

    def newer_waits_for_the_row() -> bool:
        if engine.dialect.name != "postgresql":
            return newer_asked.is_set()  # SQLite: one writer at a time, so asking is waiting
        with engine.connect() as probe:
            return (
                probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
                > 0
            )

    @event.listens_for(engine, "before_cursor_execute")
    def _newer_asks(conn, cursor, statement, *args):
        if getattr(role, "name", None) == "newer":
            newer_asked.set()

    @event.listens_for(engine, "after_cursor_execute")
    def _older_keeps_working_after_reading_the_workspace(conn, cursor, statement, *args):
        if getattr(role, "name", None) != "older" or older_has_read.is_set():
            return
        if statement.lstrip().startswith("SELECT"):
            older_has_read.set()
            # Until the newer event waits for the row (or, were the row not locked, has
            # been applied already).
            wait_until(lambda: newer_done.is_set() or newer_waits_for_the_row(), timeout=10)

    older = subscription_updated(sub_object(status="active"), created=T0 + 1)
    newer = subscription_deleted(sub_object(status="active"), created=T0 + 100)

    def deliver_older() -> WebhookOutcome:
        role.name = "older"
        return deliver(billing, older)

    def deliver_newer() -> WebhookOutcome:
        assert older_has_read.wait(10)  # the older one holds the row
        role.name = "newer"
        try:
            return deliver(billing, newer)
        finally:
            newer_done.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = [f.result() for f in (pool.submit(deliver_older), pool.submit(deliver_newer))]

    assert [o.message for o in outcomes] == ["applied", "applied"]
    ws = workspace(engine)
    assert ws.plan == "free"
    assert ws.billing_event_at == datetime.fromtimestamp(T0 + 100, UTC)


def test_an_older_event_arriving_late_changes_nothing(billing, engine):
    subscribe(billing, engine)
    deleted = subscription_deleted(sub_object(status="active"), created=T0 + 2 * DAY)
    older_active = subscription_updated(sub_object(status="active"), created=T0 + DAY)

    assert deliver(billing, deleted).message == "applied"
    late = deliver(billing, older_active)

    assert (late.status, late.message) == (200, "stale")
    ws = workspace(engine)
    assert ws.plan == "free"
    assert ws.billing_event_at == datetime.fromtimestamp(T0 + 2 * DAY, UTC)
    assert reserve(engine).limit == POLICY.free
    assert recorded_events(engine) == 3  # the late one is recorded: its redelivery is a no-op


def test_a_failure_half_way_leaves_nothing_and_the_retry_applies(billing, engine):
    with transaction(engine) as conn:
        ensure_workspace(conn, "T1")
    completed = _completed()
    fail_once_on(engine, "UPDATE workspaces")

    failed = deliver(billing, completed)
    assert failed.status == 500
    assert recorded_events(engine) == 0
    assert workspace(engine).plan == "free"

    retried = deliver(billing, completed)
    assert (retried.status, retried.message) == (200, "applied")
    assert workspace(engine).plan == "pro"
    assert recorded_events(engine) == 1


# --- webhooks: which workspace, and what to tell it --------------------------------------


def test_an_event_for_an_unknown_workspace_is_acknowledged_and_changes_nothing(billing, engine):
    stray = checkout_session_completed(
        team_id=None, customer="cus_stranger", subscription="sub_x", created=T0
    )
    outcome = deliver(billing, stray)
    assert (outcome.status, outcome.team_id) == (200, None)
    assert recorded_events(engine) == 0
    with reading(engine) as conn:
        assert conn.execute(select(func.count()).select_from(W)).scalar_one() == 0


def test_an_unhandled_event_type_is_ignored(billing, engine):
    evt = _completed()
    evt["type"] = "customer.created"
    outcome = deliver(billing, evt)
    assert (outcome.status, outcome.message) == (200, "ignored")
    assert recorded_events(engine) == 0


def test_a_failed_payment_asks_to_tell_the_admins(billing, engine):
    subscribe(billing, engine)
    # No metadata on the invoice: the workspace is found through its Stripe customer.
    failed = invoice_payment_failed(customer="cus_T1", subscription_id="sub_T1", created=T0 + 1)
    outcome = deliver(billing, failed)
    assert (outcome.status, outcome.team_id) == (200, "T1")
    assert outcome.notify_admins and "payment failed" in outcome.notify_admins
    assert workspace(engine).plan == "pro"  # the past_due subscription event decides, not this

    again = deliver(billing, failed)
    assert again.notify_admins is None


def test_a_failed_payment_does_not_make_the_past_due_update_look_stale(billing, engine):
    subscribe(billing, engine)
    failed = invoice_payment_failed(customer="cus_T1", subscription_id="sub_T1", created=T0 + 6)
    past_due = subscription_updated(sub_object(status="past_due"), created=T0 + 5)
    deliver(billing, failed)
    assert deliver(billing, past_due).message == "applied"
    ws = workspace(engine)
    assert ws.subscription_status == "past_due"
    assert ws.grace_until == datetime.fromtimestamp(T0 + 5, UTC) + PAST_DUE_GRACE


def test_a_webhook_without_a_configured_secret_is_a_server_error(engine, fake_stripe):
    settings = make_settings(stripe_secret_key=fake_stripe.api_key, stripe_price_id=PRICE)
    billing = Billing.from_settings(settings, engine)
    payload, header = signed_event(_completed(), SECRET)
    assert billing.handle_webhook(payload, header).status == 500
    assert recorded_events(engine) == 0

"""Billing as users meet it in Slack: the Upgrade button, /coldcopy upgrade, the webhook
route, the pro quota taking effect at once, and admins told when a payment fails."""

from __future__ import annotations

import json
import time

import pytest
from helpers import BRIEF, all_text, make_settings, open_form, thread_posts, used

from bot.slack import constants as K
from testkit.fakes.anthropic import FakeAnthropic
from testkit.fakes.slack import FakeSlack
from testkit.fakes.stripe import (
    FakeStripe,
    checkout_session_completed,
    invoice_payment_failed,
    signed_event,
    subscription,
    subscription_deleted,
)
from testkit.harness import ServedApp
from testkit.waiting import wait_until

WEBHOOK_SECRET = "whsec_coldcopy_test"


@pytest.fixture
def world(sqlite_engine):
    with FakeSlack() as slack, FakeAnthropic() as claude, FakeStripe() as stripe:
        slack.add_user("U1")
        slack.add_user("UADMIN", is_admin=True)
        slack.add_user("UOWNER", is_owner=True)
        settings = make_settings(
            slack_api_url=slack.base_url,
            anthropic_base_url=claude.base_url,
            database_url=str(sqlite_engine.url),
            free_quota=1,
            stripe_secret_key=stripe.api_key,
            stripe_price_id="price_pro_monthly",
            stripe_webhook_secret=WEBHOOK_SECRET,
            stripe_api_base=stripe.base_url,
            public_url="https://coldcopy.example",
        )
        with ServedApp(settings, sqlite_engine, slack=slack) as app:
            yield app, slack, claude, stripe, sqlite_engine


def post_webhook(app: ServedApp, event: dict, secret: str = WEBHOOK_SECRET):
    payload, header = signed_event(event, secret)
    return app.request(
        "POST",
        "/stripe/webhook",
        payload,
        {"Content-Type": "application/json", "Stripe-Signature": header},
    )


def use_the_free_quota(app, slack, claude, engine) -> None:
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    thread_posts(slack, 8)
    wait_until(lambda: any("7 emails" in all_text([c]) for c in slack.calls_to("chat.update")))
    assert used(engine) == 1


def test_the_upgrade_button_in_the_quota_prompt_opens_stripe_checkout(world):
    app, slack, claude, stripe, engine = world
    use_the_free_quota(app, slack, claude, engine)
    prompt = open_form(app, slack)
    assert K.UPGRADE_ACTION in json.dumps(prompt)

    prompt["id"] = slack.calls_to("views.open")[-1].params.get("view_id") or next(iter(slack.views))
    assert app.click(K.UPGRADE_ACTION, "upgrade", view=prompt).status == 200
    update = slack.wait_for("views.update")[-1]
    (session,) = stripe.checkout_sessions.values()
    assert session["url"] in json.dumps(update.params["view"])
    assert session["client_reference_id"] == "T0001"
    assert session["mode"] == "subscription"
    assert slack.violations == []


def test_coldcopy_upgrade_answers_with_a_checkout_link(world):
    app, slack, claude, stripe, engine = world
    app.slash("upgrade", user="UADMIN")
    reply = slack.wait_for("response_url")[-1].params
    (session,) = stripe.checkout_sessions.values()
    assert session["url"] in json.dumps(reply)
    assert reply["response_type"] == "ephemeral"


def test_a_paid_checkout_lifts_the_quota_for_the_very_next_submission(world):
    app, slack, claude, stripe, engine = world
    use_the_free_quota(app, slack, claude, engine)
    event = checkout_session_completed(team_id="T0001", customer="cus_1", subscription="sub_1")
    assert post_webhook(app, event).status == 200

    claude.enqueue_sequence()
    answer = app.submit(open_form(app, slack), BRIEF).json()
    assert "Writing your sequence" in json.dumps(answer)
    wait_until(lambda: any("2 of 200 used" in all_text([c]) for c in slack.calls_to("chat.update")))

    # Cancelling takes Pro away at once: the free limit of 1 is already spent.
    now = int(time.time())
    sub = subscription(
        subscription_id="sub_1",
        customer="cus_1",
        status="active",
        period_start=now - 60,
        period_end=now + 30 * 86400,
        team_id="T0001",
    )
    cancelled = subscription_deleted(sub)
    assert post_webhook(app, cancelled).status == 200
    assert open_form(app, slack)["callback_id"] == K.INFO_VIEW


def test_a_webhook_with_a_bad_signature_is_refused_and_changes_nothing(world):
    app, slack, claude, stripe, engine = world
    use_the_free_quota(app, slack, claude, engine)
    event = checkout_session_completed(team_id="T0001", customer="cus_1", subscription="sub_1")
    assert post_webhook(app, event, secret="whsec_wrong").status == 400
    assert open_form(app, slack)["callback_id"] == K.INFO_VIEW


def test_a_failed_payment_is_sent_to_every_admin_by_dm(world):
    app, slack, claude, stripe, engine = world
    app.click(K.UPGRADE_ACTION, "upgrade", user="UADMIN")  # a checkout starts here
    slack.wait_for("response_url")
    post_webhook(
        app, checkout_session_completed(team_id="T0001", customer="cus_1", subscription="sub_1")
    )
    failed = invoice_payment_failed(customer="cus_1", subscription_id="sub_1", team_id="T0001")
    assert post_webhook(app, failed).status == 200
    slack.wait_for("chat.postMessage", count=2)
    recipients = {c.params["channel"] for c in slack.calls_to("chat.postMessage")}
    assert recipients == {slack.dm_channel_for("UADMIN"), slack.dm_channel_for("UOWNER")}


def test_admin_status_offers_manage_billing_once_paying(world):
    app, slack, claude, stripe, engine = world
    app.slash("status", user="UADMIN")
    assert K.UPGRADE_ACTION in json.dumps(slack.wait_for("response_url")[-1].params)
    app.click(K.UPGRADE_ACTION, "upgrade", user="UADMIN")  # creates the Stripe customer
    slack.wait_for("response_url", count=2)
    (customer,) = stripe.customers
    post_webhook(
        app, checkout_session_completed(team_id="T0001", customer=customer, subscription="sub_1")
    )
    app.slash("status", user="UADMIN")
    reply = slack.wait_for("response_url", count=3)[-1].params
    assert K.MANAGE_BILLING_ACTION in json.dumps(reply)
    app.click(K.MANAGE_BILLING_ACTION, "portal", user="UADMIN")
    link = slack.wait_for("response_url", count=4)[-1].params
    (portal,) = stripe.portal_sessions.values()
    assert portal["url"] in json.dumps(link)


def test_without_stripe_the_upgrade_button_becomes_ask_your_admin(sqlite_engine):
    with FakeSlack() as slack, FakeAnthropic() as claude:
        settings = make_settings(
            slack_api_url=slack.base_url,
            anthropic_base_url=claude.base_url,
            database_url=str(sqlite_engine.url),
            free_quota=0,
        )
        with ServedApp(settings, sqlite_engine, slack=slack) as app:
            view = open_form(app, slack)
            assert K.UPGRADE_ACTION not in json.dumps(view)
            assert "Ask a workspace admin" in json.dumps(view)
            app.slash("upgrade")
            assert "isn't set up" in json.dumps(slack.wait_for("response_url")[-1].params)

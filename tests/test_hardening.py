"""Hostile requests, silent databases, secrets at rest and clean failures: what an attacker or
an unlucky operator meets, each case as it reaches `coldcopy serve` over HTTP."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from cryptography.fernet import Fernet
from helpers import coldcopy, install, make_settings, oauth_overrides
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from bot.core.settings import load_settings
from bot.domain.billing import Billing
from bot.flows.sweeper import Sweeper
from bot.slack import constants as K
from bot.slack.installations import INSTALLATION_TOKENS, WorkspaceInstallationStore
from bot.slack.modal import brief_view
from storage.db import make_engine, reading, transaction
from storage.encryption import TokenCipher
from storage.ledger import reserve_generation
from storage.migrate import alembic_config, upgrade
from storage.models import Generation, Workspace, slack_bots, slack_installations, utcnow
from storage.quota import QuotaPolicy
from storage.retention import erase_expired_briefs
from storage.settings import read_settings, save_settings, settings_history
from testkit.briefs import SAMPLE_BRIEF
from testkit.clock import ManualClock
from testkit.fakes.anthropic import FakeAnthropic
from testkit.fakes.slack import FakeSlack
from testkit.fakes.stripe import checkout_session_completed, signed_event
from testkit.fakes.tcp_proxy import TCPProxy, silent_server
from testkit.harness import ServedApp
from testkit.processes import free_port, rss_kib

ROOT = Path(__file__).resolve().parent.parent
G = Generation.__table__
W = Workspace.__table__
MB = 1024 * 1024
POLICY = QuotaPolicy(free=3, pro=200)
# Words of a brief that must never reach a log line. First in the brief: SQLAlchemy shortens
# a long parameter in the middle, which would hide a word placed there anyway.
SECRET_BRIEF = dict(SAMPLE_BRIEF, company="Zanzibar-quartz Logistics")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("U1")
        fake.add_user("UADMIN", is_admin=True)
        yield fake


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def silent_database() -> Iterator[str]:
    """A PostgreSQL URL whose server accepts connections and never says a word."""
    with silent_server() as port:
        yield f"postgresql://postgres@127.0.0.1:{port}/coldcopy"


def served(slack, claude, engine, **overrides) -> ServedApp:
    settings = make_settings(
        slack_api_url=slack.base_url,
        anthropic_base_url=claude.base_url,
        database_url=engine.url.render_as_string(hide_password=False),
        **overrides,
    )
    app = ServedApp(settings, engine, slack=slack)
    return app


def logged_text(caplog) -> str:
    return "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)


def raw_post(app: ServedApp, headers: dict, body_chunks=(), *, wait: float = 10) -> bytes:
    """Send a POST by hand (as an attacker would) and return the raw answer."""
    host, port = app.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as conn:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        conn.sendall(f"POST /slack/events HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        try:
            for chunk in body_chunks:
                conn.sendall(chunk)
        except OSError:
            pass  # the server answered and closed while we were still sending
        answer = b""
        try:
            while not answer.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in answer:
                data = conn.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
        return answer


# --- 1. bodies are capped before they are read, and never logged ---------------------------


def test_an_oversized_request_is_refused_from_its_content_length_before_any_body(
    slack, claude, sqlite_engine
):
    with served(slack, claude, sqlite_engine) as app:
        # Fifty megabytes announced, not one byte sent: only an answer given before reading
        # the body can arrive.
        answer = raw_post(app, {"Content-Length": str(50 * MB)})
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_fifty_unsigned_megabytes_leave_memory_and_the_log_flat(
    slack, claude, sqlite_engine, caplog
):
    caplog.set_level(logging.INFO)
    chunk = b"A" * MB
    with served(slack, claude, sqlite_engine) as app:
        before = rss_kib(os.getpid()) * 1024
        for _ in range(3):
            # Chunked: no Content-Length to refuse it by, so the cap has to count.
            body = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(50))
            answer = raw_post(
                app,
                {"Transfer-Encoding": "chunked", "X-Slack-Request-Timestamp": "1"},
                body,
            )
            assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        grown = rss_kib(os.getpid()) * 1024 - before
    assert grown < 20 * MB, f"resident memory grew {grown / MB:.0f} MB"
    assert len(logged_text(caplog)) < 10_000


def test_no_request_body_reaches_the_log_signed_late_or_unsigned(
    slack, claude, sqlite_engine, caplog
):
    caplog.set_level(logging.DEBUG)
    with served(slack, claude, sqlite_engine) as app:
        # A genuine submission that arrives ten minutes late fails its signature check ...
        payload = json.dumps({"type": "view_submission", "view": {"state": SECRET_BRIEF}})
        reply = app.signed_post("payload=" + payload, timestamp=int(time.time()) - 600)
        assert reply.status == 401
        # ... and an unsigned one never passes it.
        unsigned = app.request(
            "POST",
            "/slack/events",
            ("payload=" + payload).encode(),
            {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=0"},
        )
        assert unsigned.status == 401
    logged = logged_text(caplog)
    assert "Invalid request signature" in logged  # the line is still there for operators
    assert "Zanzibar" not in logged


# --- 2. a silent database ------------------------------------------------------------------


def test_readiness_answers_while_the_database_is_silent_and_probes_leave_threads_free(
    slack, claude, silent_database
):
    engine = make_engine(silent_database)
    with served(slack, claude, engine) as app:
        with ThreadPoolExecutor(max_workers=12) as pool:
            probes = [pool.submit(app.request, "GET", "/readyz", timeout=5) for _ in range(10)]
            health = pool.submit(app.request, "GET", "/healthz", timeout=5)
            assert health.result().status == 200
            replies = [p.result() for p in probes]
        assert {r.status for r in replies} == {503}
        assert all(not r.json()["ready"] for r in replies)
        # Signed Slack requests still get a thread while the probes wait.
        assert app.slash("help").status == 200


def test_a_submission_that_cannot_reach_the_database_says_try_again(slack, claude, silent_database):
    engine = make_engine(silent_database)
    with served(slack, claude, engine) as app:
        answer = app.submit(brief_view(None, "C1"), SAMPLE_BRIEF)
    assert answer.status == 200
    errors = answer.json()["errors"]
    assert "can't reach its database" in next(iter(errors.values()))
    assert "again" in next(iter(errors.values()))


@pytest.fixture
def proxied_postgres(postgres_url) -> Iterator[tuple[TCPProxy, str]]:
    """A migrated PostgreSQL reached through a proxy that can make it go silent."""
    engine = make_engine(postgres_url)
    upgrade(engine)
    engine.dispose()
    real = make_url(postgres_url)
    with TCPProxy(real.port or 5432, real.host or "127.0.0.1") as proxy:
        yield proxy, real.set(port=proxy.port).render_as_string(hide_password=False)


def test_a_database_that_goes_silent_after_connecting_still_gets_users_an_answer(
    slack, claude, proxied_postgres
):
    proxy, url = proxied_postgres
    engine = make_engine(url)
    with served(slack, claude, engine) as app:
        app.timeout = 10  # past this the request hung
        # The pool holds live connections when the server stops answering.
        assert app.slash("status").status == 200
        assert "left" in slack.wait_for("response_url")[-1].params["text"]
        proxy.silence()
        answer = app.submit(brief_view(None, "C1"), SAMPLE_BRIEF)
        assert "can't reach its database" in json.dumps(answer.json())
        assert app.request("GET", "/readyz").status == 503
        assert app.request("GET", "/healthz").status == 200


def test_postgres_sessions_carry_connect_and_statement_timeouts(postgres_url):
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "1500ms"
    assert engine.pool.timeout() <= 3
    engine.dispose()


# --- 3. start-up failures: exit 2, one line, no traceback -----------------------------------


def startup_env(tmp_path, slack: FakeSlack | None = None, **extra: str) -> dict:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'coldcopy.db'}",
        "SLACK_API_URL": slack.base_url if slack else "http://127.0.0.1:1/api/",
    }
    env.update(extra)
    return env


def assert_one_line_failure(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # Log lines are JSON objects; the operator's message is the one line that is not.
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines[0]


def test_a_port_in_use_is_one_line(tmp_path, slack):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = coldcopy(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            cwd=tmp_path,
            **startup_env(tmp_path, slack),
        )
    assert_one_line_failure(result, f"127.0.0.1:{port}", "--port")


def test_a_port_out_of_range_is_refused(tmp_path):
    result = coldcopy("serve", "--port", "70000", cwd=tmp_path, **startup_env(tmp_path))
    assert_one_line_failure(result, "70000", "1 to 65535")


def test_an_sqlite_path_that_cannot_be_opened_is_one_line(tmp_path, slack):
    env = startup_env(tmp_path, slack, DATABASE_URL="sqlite:////no/such/directory/cc.db")
    result = coldcopy("serve", "--port", str(free_port()), cwd=tmp_path, **env)
    assert_one_line_failure(result, "/no/such/directory/cc.db", "writable")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DATABASE_URL", "postgres//nowhere"), ("REDIS_URL", "localhost:6379")],
)
def test_a_malformed_url_is_named(tmp_path, variable, value):
    result = coldcopy("serve", cwd=tmp_path, **startup_env(tmp_path, **{variable: value}))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert variable in result.stderr


def test_a_database_that_is_down_is_one_line(tmp_path, slack):
    env = startup_env(tmp_path, slack, DATABASE_URL="postgresql://postgres@127.0.0.1:1/cc")
    result = coldcopy("serve", "--port", str(free_port()), cwd=tmp_path, **env)
    assert_one_line_failure(result, "127.0.0.1:1", "DATABASE_URL")


def test_a_bot_token_slack_refuses_is_one_line(tmp_path, slack):
    slack.fail("auth.test", "invalid_auth", times=None)
    result = coldcopy(
        "serve", "--port", str(free_port()), cwd=tmp_path, **startup_env(tmp_path, slack)
    )
    assert_one_line_failure(result, "invalid_auth", "SLACK_BOT_TOKEN")


def test_slack_unreachable_is_one_line(tmp_path):
    result = coldcopy("serve", "--port", str(free_port()), cwd=tmp_path, **startup_env(tmp_path))
    assert_one_line_failure(result, "cannot reach Slack", "SLACK_API_URL")


# --- 4. statement parameters never reach the logs -------------------------------------------


def refuse_new_generations(engine) -> None:
    """Make every insert into generations fail inside the database itself."""
    with transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON generations "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON generations "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )


def test_a_database_error_during_a_submission_never_logs_the_brief(slack, claude, engine, caplog):
    caplog.set_level(logging.DEBUG)
    refuse_new_generations(engine)
    with served(slack, claude, engine) as app:
        answer = app.submit(brief_view(None, "C1"), SECRET_BRIEF)
    assert answer.status == 200
    assert "refused this brief" in json.dumps(answer.json())
    logged = logged_text(caplog)
    assert "refused" in logged  # the error itself is logged for the operator ...
    assert "Zanzibar" not in logged  # ... without the statement's parameters


# --- 5. tokens at rest ------------------------------------------------------------------------


def an_installation(token: str = "xoxb-1-secret-bot-token") -> Installation:
    return Installation(
        app_id="A0COLDCOPY",
        enterprise_id=None,
        team_id="T0001",
        team_name="ColdCopy Test",
        bot_token=token,
        bot_id="B0BOT",
        bot_user_id="U0BOT",
        bot_scopes="commands,chat:write",
        bot_refresh_token="xoxe-1-secret-refresh-token",
        bot_token_expires_in=43200,
        user_id="U0INSTALLER",
        user_token="xoxp-1-secret-user-token",
        user_refresh_token="xoxe-1-secret-user-refresh",
        user_token_expires_in=43200,
    )


def stored_tokens(engine) -> list[str]:
    values = []
    with reading(engine) as conn:
        for table, columns in (
            (slack_installations, tuple(INSTALLATION_TOKENS)),
            (slack_bots, ("bot_token", "bot_refresh_token")),
        ):
            for row in conn.execute(select(*(table.c[c] for c in columns))):
                values.extend(v for v in row if v is not None)
    return values


def test_every_token_is_stored_encrypted_and_read_back_plain(engine):
    store = WorkspaceInstallationStore(
        "111.222", engine, TokenCipher(Fernet.generate_key().decode())
    )
    store.save(an_installation())
    values = stored_tokens(engine)
    assert len(values) == 6
    assert all(v.startswith("gAAAAA") and "secret" not in v for v in values)
    bot = store.find_bot(enterprise_id=None, team_id="T0001")
    assert bot.bot_token == "xoxb-1-secret-bot-token"
    assert bot.bot_refresh_token == "xoxe-1-secret-refresh-token"
    assert bot.bot_token_expires_at is not None  # kept for Bolt's token rotation
    found = store.find_installation(enterprise_id=None, team_id="T0001", user_id="U0INSTALLER")
    assert found.user_token == "xoxp-1-secret-user-token"


def test_plain_text_tokens_from_before_are_encrypted_by_the_migration(database_url):
    engine = make_engine(database_url)
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.execute(
            insert(slack_bots).values(
                client_id="111.222",
                app_id="A0COLDCOPY",
                team_id="T0001",
                bot_token="xoxb-1-plain-old-token",
                bot_id="B0BOT",
                bot_user_id="U0BOT",
                installed_at=utcnow().replace(tzinfo=None),
            )
        )
    # Without the key the rows stay readable as they were ...
    upgrade(engine)
    assert stored_tokens(engine) == ["xoxb-1-plain-old-token"]
    # ... and the next migrate with the key seals them.
    key = Fernet.generate_key().decode()
    upgrade(engine, TokenCipher(key))
    (sealed,) = stored_tokens(engine)
    assert sealed.startswith("gAAAAA")
    assert TokenCipher(key).decrypt(sealed) == "xoxb-1-plain-old-token"
    engine.dispose()


def test_rotate_key_re_encrypts_every_token_with_the_new_key(tmp_path, sqlite_engine, sqlite_url):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    WorkspaceInstallationStore("111.222", sqlite_engine, TokenCipher(old)).save(an_installation())

    wrong = coldcopy(
        "rotate-key",
        cwd=tmp_path,
        DATABASE_URL=sqlite_url,
        COLDCOPY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    assert wrong.returncode == 1 and "changed nothing" in wrong.stderr
    assert all(TokenCipher(old).decrypt(v) for v in stored_tokens(sqlite_engine))

    done = coldcopy(
        "rotate-key", cwd=tmp_path, DATABASE_URL=sqlite_url, COLDCOPY_ENCRYPTION_KEY=f"{new},{old}"
    )
    assert done.returncode == 0, done.stderr
    assert "Re-encrypted 6 Slack tokens" in done.stdout
    only_new = TokenCipher(new)
    assert sorted(only_new.decrypt(v) for v in stored_tokens(sqlite_engine)) == sorted(
        [
            "xoxb-1-secret-bot-token",
            "xoxe-1-secret-refresh-token",
            "xoxp-1-secret-user-token",
            "xoxe-1-secret-user-refresh",
            "xoxb-1-secret-bot-token",
            "xoxe-1-secret-refresh-token",
        ]
    )


def test_the_readme_one_liner_makes_a_key_the_app_accepts():
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "Fernet.generate_key" in x)
    command_line = re.search(r"python3 (-c .*)$", line.strip().strip("`")).group(1)
    code = re.search(r'-c "(.*)"', command_line).group(1)
    key = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    settings = load_settings(
        "serve",
        _env_file=None,
        slack_client_id="1",
        slack_client_secret="2",
        slack_signing_secret="s",
        anthropic_api_key="k",
        encryption_key=key,
    )
    assert TokenCipher(settings.encryption_key).decrypt(TokenCipher(key).encrypt("x")) == "x"


def test_an_expiring_rotated_token_is_renewed_and_stored_encrypted(slack, claude, engine):
    slack.oauth_response.update(refresh_token="xoxe-1-first-refresh", expires_in=600)
    with served(slack, claude, engine, **oauth_overrides()) as app:
        install(app)
        # Ten minutes left: Bolt renews the token before handling the next command.
        slack.oauth_response.update(
            access_token="xoxb-T0001-renewed-token",
            refresh_token="xoxe-1-second-refresh",
            expires_in=43200,
        )
        assert app.slash("").status == 200
        opened = slack.wait_for("views.open")[-1]
    refresh = [c for c in slack.calls_to("oauth.v2.access") if c.params.get("grant_type")]
    assert refresh and refresh[-1].params["refresh_token"] == "xoxe-1-first-refresh"
    assert opened.token == "xoxb-T0001-renewed-token"
    values = stored_tokens(engine)
    assert values and all(v.startswith("gAAAAA") for v in values)
    assert not any("renewed" in v or "refresh" in v for v in values)


# --- 6. retention and erasure ---------------------------------------------------------------


def accepted(engine, key: str, now=None) -> str:
    return reserve_generation(
        engine,
        POLICY,
        team_id="T0001",
        user_id="U1",
        channel_id="C1",
        idempotency_key=key,
        brief=dict(SAMPLE_BRIEF, tone="Professional"),
        now=now,
    ).generation_id


def test_briefs_and_sequences_expire_after_the_retention_period(engine, slack, claude):
    old = accepted(engine, "old", now=utcnow() - timedelta(days=91))
    recent = accepted(engine, "recent")
    with served(slack, claude, engine) as app:
        Sweeper(app.services, app.dispatcher).retain()  # the hourly pass, default 90 days
    with reading(engine) as conn:
        rows = {r.id: r for r in conn.execute(select(G))}
    assert rows[old].brief is None and rows[old].sequence is None
    assert rows[recent].brief is not None
    # The row itself stays: usage, token counts and cost are counted from it.
    assert len(rows) == 2 and rows[old].quota_state == rows[recent].quota_state
    assert erase_expired_briefs(engine, 90) == 0  # nothing left to clear


def test_the_sweeper_clears_what_expires_once_an_hour_not_at_every_pass(engine, slack, claude):
    clock = ManualClock()
    old = accepted(engine, "old", now=clock.now() - timedelta(days=91))
    # Reaches the 90 days half an hour from now.
    soon = accepted(engine, "soon", now=clock.now() - timedelta(days=90, minutes=-30))

    def kept() -> set[str]:
        with reading(engine) as conn:
            return set(conn.execute(select(G.c.id).where(G.c.brief.is_not(None))).scalars())

    with served(slack, claude, engine) as app:
        sweeper = Sweeper(app.services, app.dispatcher, clock=clock)
        sweeper.retain()  # the first pass runs at once
        assert kept() == {soon}
        clock.advance(timedelta(minutes=31).total_seconds())
        sweeper.retain()  # "soon" has expired, but the next hourly pass is half an hour off
        assert kept() == {soon}
        clock.advance(timedelta(minutes=30).total_seconds())
        sweeper.retain()
        assert kept() == set() and old not in kept()


def test_forget_erases_a_workspace_on_request(tmp_path, sqlite_engine, sqlite_url):
    key = Fernet.generate_key().decode()
    WorkspaceInstallationStore("111.222", sqlite_engine, TokenCipher(key)).save(an_installation())
    accepted(sqlite_engine, "one")
    save_settings(sqlite_engine, "T0001", {"about_us": "We are Acme"}, changed_by="UADMIN")
    result = coldcopy("forget", "--team", "T0001", cwd=tmp_path, DATABASE_URL=sqlite_url)
    assert result.returncode == 0, result.stderr
    assert "Erased workspace T0001" in result.stdout and "1 generations" in result.stdout
    assert stored_tokens(sqlite_engine) == []
    with reading(sqlite_engine) as conn:
        gen = conn.execute(select(G)).one()
        ws = conn.execute(select(W)).one()
    assert gen.brief is None and ws.name is None
    # The queued sequence was stopped first, its unit given back (issue 23).
    assert (gen.status, gen.error, ws.used) == ("failed", "erased", 0)
    assert "stopped 1 queued or running" in result.stdout
    # What its admins wrote about their company, and the record of each change, go too.
    assert read_settings(sqlite_engine, "T0001")["about_us"] is None
    assert settings_history(sqlite_engine, "T0001") == []

    unknown = coldcopy("forget", "--team", "TNOBODY", cwd=tmp_path, DATABASE_URL=sqlite_url)
    assert unknown.returncode == 1
    assert "No workspace 'TNOBODY'" in unknown.stderr


# --- 7. outages are explained ---------------------------------------------------------------


def test_commands_explain_a_database_that_refuses_connections(slack, claude):
    engine = make_engine("postgresql://postgres@127.0.0.1:1/coldcopy")
    with served(slack, claude, engine) as app:
        for text_typed in ("", "status"):
            before = len(slack.calls_to("response_url"))
            assert app.slash(text_typed, user="UADMIN").status == 200
            answer = slack.wait_for("response_url", count=before + 1)[-1].params
            assert answer["response_type"] == "ephemeral"
            assert "can't reach its database" in answer["text"]
        # A generation id as ColdCopy makes them (one that is not would be refused unread).
        assert app.click(K.EXPORT_CSV_ACTION, str(uuid.uuid4())).status == 200
        answer = slack.wait_for("response_url", count=3)[-1].params
        assert "can't reach its database" in answer["text"] and "export" in answer["text"]


# --- 8. odd input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("company", "Northwind\x00Logistics", "U+0000"),
        ("job_title", "Head of \u202eOperations", "U+202E"),
        ("product", "\x1b[31mRouteSync\x1b[0m", "U+001B"),
        ("benefit", "Cuts time \ud800 by 40%", "U+D800"),
    ],
)
def test_control_bidi_and_broken_characters_get_a_field_error(
    slack, claude, sqlite_engine, field, value, named
):
    with served(slack, claude, sqlite_engine) as app:
        answer = app.submit(brief_view(None, "C1"), dict(SAMPLE_BRIEF, **{field: value}))
    assert answer.json()["response_action"] == "errors"
    assert named in answer.json()["errors"][field]
    with reading(sqlite_engine) as conn:
        assert conn.execute(select(G)).first() is None


def test_id_lengths_are_enforced_the_same_on_both_databases(slack, claude, engine):
    claude.enqueue_sequence()
    with served(slack, claude, engine) as app:
        long_view = app.submit(brief_view(None, "C1"), SAMPLE_BRIEF, view_id="V" * 10_000)
        long_channel = app.submit(brief_view(None, "C1"), SAMPLE_BRIEF, channel="C" * 500)
    assert long_view.status == 200 and long_view.json()["response_action"] == "update"
    assert long_channel.status == 200
    assert "can't read" in json.dumps(long_channel.json())


def test_a_malformed_timestamp_is_401_not_500(slack, claude, sqlite_engine, caplog):
    with served(slack, claude, sqlite_engine) as app:
        for bad in ("abc", "9" * 5000, "1e9"):
            reply = app.request(
                "POST",
                "/slack/events",
                b"command=%2Fcoldcopy",
                {"X-Slack-Request-Timestamp": bad, "X-Slack-Signature": "v0=0"},
            )
            assert reply.status == 401
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_signed_stripe_event_for_a_team_that_never_installed_is_ignored(engine, caplog):
    secret = "whsec_test"
    billing = Billing.from_settings(
        make_settings(
            stripe_secret_key="sk_test",
            stripe_webhook_secret=secret,
            stripe_price_id="price_1",
            public_url="https://coldcopy.example",
        ),
        engine,
    )
    event = checkout_session_completed(team_id="TNEVER", customer="cus_x", subscription="sub_x")
    outcome = billing.handle_webhook(*signed_event(event, secret))
    assert outcome.status == 200
    with reading(engine) as conn:
        assert conn.execute(select(W)).first() is None
    assert "TNEVER never installed" in logged_text(caplog)


def test_oauth_commands_explain_a_database_that_refuses_connections(slack, claude):
    """With OAuth, Bolt looks up the workspace's installation before any listener runs."""
    engine = make_engine("postgresql://postgres@127.0.0.1:1/coldcopy")
    with served(slack, claude, engine, **oauth_overrides()) as app:
        reply = app.slash("")
    assert reply.status == 200
    assert reply.json()["response_type"] == "ephemeral"
    assert "can't reach its database" in reply.json()["text"]


def test_a_worker_renews_an_expiring_rotated_token_before_calling_slack(slack, claude, engine):
    slack.oauth_response.update(refresh_token="xoxe-1-first-refresh", expires_in=600)
    with served(slack, claude, engine, **oauth_overrides()) as app:
        install(app)
        slack.oauth_response.update(
            access_token="xoxb-T0001-renewed-token",
            refresh_token="xoxe-1-second-refresh",
            expires_in=43200,
        )
        # Generations run outside Bolt's request handling and fetch their client here.
        assert app.services.slack.client("T0001").token == "xoxb-T0001-renewed-token"
        bot = app.services.slack.installations.find_bot(enterprise_id=None, team_id="T0001")
    assert bot.bot_refresh_token == "xoxe-1-second-refresh"
    assert all(v.startswith("gAAAAA") for v in stored_tokens(engine))


def test_a_home_tab_button_explains_a_database_that_refuses_connections(slack, claude):
    """The Home tab has no response_url: the explanation comes in a modal."""
    engine = make_engine("postgresql://postgres@127.0.0.1:1/coldcopy")
    with served(slack, claude, engine) as app:
        home = {"id": "VHOME", "type": "home", "blocks": []}
        reply = app.click(K.OPEN_FORM_ACTION, "home", user="U1", view=home)
        assert reply.status == 200
        opened = slack.wait_for("views.open")[-1].params
    assert opened["trigger_id"] == reply.trigger_id
    assert "can't reach its database" in json.dumps(opened["view"])

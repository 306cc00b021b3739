"""`python -m bench.hardening_probes [--code DIR]`: what an attacker and an unlucky operator
meet, probed from outside against `coldcopy serve` run from DIR (default: this checkout) as its
own process, over HTTP and the CLI only, so an older checkout can be probed the same way.

Prints one line per probe: the probe, what happened, and how long it took. PostgreSQL sits
behind a small TCP proxy that can go silent (accept, never answer) or refuse connections.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import bench.services
from bench.services import POSTGRES_ADMIN_URL
from bot.slack.modal import brief_view
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack
from fakes.stripe import checkout_session_completed, signed_event
from fakes.tcp_proxy import TCPProxy
from harness import SAMPLE_BRIEF, SignedSlackClient

MB = 1024 * 1024
SECRET_WORD = "Zanzibar-quartz"
WEBHOOK_SECRET = "whsec_probe"


def coldcopy(code: Path, args: list[str], env: dict, timeout: float = 60):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "COLDCOPY_"))}
    full.update(env, PYTHONPATH=str(code))
    return subprocess.run(
        [sys.executable, "-m", "bot.runtime.cli", *args],
        env=full,
        cwd=env.get("_CWD", tempfile.gettempdir()),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def serving(code: Path, env: dict, log_path: Path):
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "COLDCOPY_"))}
    full.update(env, PYTHONPATH=str(code))
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.runtime.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=full,
            cwd=env["_CWD"],
            stdout=log,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        try:
            yield proc, url
        finally:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * 4096 / MB


def timed(fn):
    start = time.monotonic()
    try:
        result = fn()
    except Exception as exc:  # a hang shows as a client timeout
        result = f"{type(exc).__name__}"
    return result, time.monotonic() - start


def report(probe: str, result: str, seconds: float | None = None) -> None:
    took = f"{seconds:.2f} s" if seconds is not None else ""
    print(f"{probe:<58} {result:<60} {took}", flush=True)


def client_for(url: str, slack: FakeSlack) -> SignedSlackClient:
    client = SignedSlackClient(url)
    client.response_base = slack.response_url_base
    client.timeout = 15  # longer than this counts as a hang
    return client


@contextmanager
def empty_postgres() -> Iterator[str]:
    """A new, unmigrated PostgreSQL database: the probed checkout migrates it itself."""
    name = f"coldcopy_probe_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def submit(client: SignedSlackClient, values: dict, view_id: str | None = None):
    return client.submit(brief_view(None, "C1"), values, view_id=view_id)


def view_answer(reply) -> str:
    try:
        body = reply.json()
    except Exception:
        return f"HTTP {reply.status}"
    action = body.get("response_action", "")
    if action == "errors":
        return f"HTTP {reply.status} errors: {next(iter(body['errors'].values()))[:45]}"
    return f"HTTP {reply.status} {action or 'ack'}"


def raw_post(url: str, headers: dict, body: bytes | None, total: int) -> tuple[str, float]:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    start = time.monotonic()
    conn = socket.create_connection((host, port), timeout=60)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    conn.sendall(f"POST /slack/events HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
    sent = 0
    try:
        while sent < total:
            conn.sendall(body)
            sent += len(body)
    except OSError:
        pass
    answer = b""
    with suppress(OSError):
        answer = conn.recv(200)
    conn.close()
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "connection closed"
    return f"{status} after {sent / MB:.0f} MB sent", time.monotonic() - start


def base_env(slack: FakeSlack, claude: FakeAnthropic, workdir: Path, **extra) -> dict:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-probe",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "ANTHROPIC_API_KEY": "sk-ant-probe",
        "ANTHROPIC_BASE_URL": claude.base_url,
        "SLACK_API_URL": slack.base_url,
        "DATABASE_URL": f"sqlite:///{workdir / 'coldcopy.db'}",
        "COLDCOPY_STUCK_AFTER": "300",
        # Probes submit many briefs in a row: the rate limit is not what they test.
        "COLDCOPY_USER_RATE": "1000/minute",
        "COLDCOPY_WORKSPACE_RATE": "1000/minute",
        "_CWD": str(workdir),
    }
    env.update(extra)
    return env


def probe_requests(code: Path, slack, claude, workdir: Path) -> None:
    env = base_env(slack, claude, workdir)
    with serving(code, env, workdir / "a.log") as (proc, url):
        before, log_before = rss_mb(proc.pid), (workdir / "a.log").stat().st_size
        result, took = raw_post(url, {"Content-Length": str(50 * MB)}, b"A" * MB, 50 * MB)
        grown = rss_mb(proc.pid) - before
        logged = (workdir / "a.log").stat().st_size - log_before
        report(
            "50 MB unsigned POST /slack/events (Content-Length)",
            f"{result}; RSS +{grown:.0f} MB; log +{logged / 1024:.0f} KB",
            took,
        )
        client = client_for(url, slack)
        reply, took = timed(
            lambda: client.request(
                "POST",
                "/slack/events",
                b"command=%2Fcoldcopy",
                {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=0"},
            )
        )
        report("X-Slack-Request-Timestamp: abc", f"HTTP {reply.status}", took)
        for name, value in (
            ("NUL", "North\x00wind"),
            ("U+202E", "North\u202ewind"),
            ("ANSI escape", "\x1b[31mNorthwind"),
            ("lone surrogate", "North\ud800"),
        ):
            reply, took = timed(lambda v=value: submit(client, dict(SAMPLE_BRIEF, company=v)))
            report(f"brief with {name} in company", view_answer(reply), took)


def probe_postgres(code: Path, slack, claude, workdir: Path) -> None:
    with empty_postgres() as pg_url:
        url = make_url(pg_url)
        proxy = TCPProxy(url.port or 5432, url.host or "127.0.0.1").__enter__()
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        admin = create_engine(pg_url)
        env = base_env(
            slack,
            claude,
            workdir,
            DATABASE_URL=proxied,
            STRIPE_SECRET_KEY="sk_test_probe",
            STRIPE_PRICE_ID="price_probe",
            COLDCOPY_PUBLIC_URL="https://coldcopy.example",
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        # An older schema may need its own migrations first.
        coldcopy(code, ["migrate"], env)
        with serving(code, env, workdir / "b.log") as (_proc, base):
            client = client_for(base, slack)
            payload, header = signed_event(
                checkout_session_completed(
                    team_id="TNEVER", customer="cus_x", subscription="sub_x"
                ),
                WEBHOOK_SECRET,
            )
            reply = client.request(
                "POST",
                "/stripe/webhook",
                payload,
                {"Stripe-Signature": header, "Content-Type": "application/json"},
            )
            with admin.connect() as conn:
                plan = conn.execute(
                    text("SELECT plan FROM workspaces WHERE team_id = 'TNEVER'")
                ).scalar()
            report(
                "signed Stripe checkout for a team that never installed",
                f"HTTP {reply.status}; workspace row: {plan or 'none'}",
            )

            reply, took = timed(lambda: submit(client, SAMPLE_BRIEF, view_id="V" * 10_000))
            report(
                "view id of 10,000 characters (PostgreSQL)",
                view_answer(reply) if not isinstance(reply, str) else reply,
                took,
            )

            with admin.begin() as conn:
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
            brief = dict(SAMPLE_BRIEF, company=f"{SECRET_WORD} Logistics")
            reply, took = timed(lambda: submit(client, brief))
            time.sleep(0.5)
            leaked = SECRET_WORD in (workdir / "b.log").read_text(errors="replace")
            report(
                "database error during a submission",
                f"{view_answer(reply) if not isinstance(reply, str) else reply}; "
                f"brief in log: {'yes' if leaked else 'no'}",
                took,
            )
            with admin.begin() as conn:
                conn.execute(text("DROP TRIGGER refuse ON generations"))

            proxy.silence()

            def readyz():
                return client.request("GET", "/readyz")

            results: list = []
            threads = [
                threading.Thread(target=lambda: results.append(timed(readyz))) for _ in range(10)
            ]
            for t in threads:
                t.start()
            time.sleep(0.2)
            health, health_took = timed(lambda: http_get(base, "/healthz", 15))
            for t in threads:
                t.join()
            statuses = sorted({getattr(r, "status", r) for r, _ in results}, key=str)
            report(
                "10 x /readyz, PostgreSQL silent", f"{statuses}", max(took for _, took in results)
            )
            report("/healthz during those probes", f"{health}", health_took)
            reply, took = timed(lambda: submit(client, SAMPLE_BRIEF))
            report(
                "submission, PostgreSQL silent",
                view_answer(reply) if not isinstance(reply, str) else reply,
                took,
            )

            proxy.outage(3600)  # every connection cut, new ones refused
            time.sleep(0.5)
            for typed in ("", "status"):
                before = len(slack.calls_to("response_url"))
                start = time.monotonic()
                client.slash(typed, user="UADMIN")
                try:
                    answer = slack.wait_for("response_url", count=before + 1, timeout=10)[-1]
                    said = answer.params.get("text", "")[:55]
                except AssertionError:
                    said = "nothing within 10 s"
                report(
                    f"/coldcopy {typed}, PostgreSQL refusing".replace("  ", " "),
                    said,
                    time.monotonic() - start,
                )
        admin.dispose()
        proxy.__exit__(None, None, None)


def http_get(base: str, path: str, timeout: float) -> str:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    conn.request("GET", path)
    return f"HTTP {conn.getresponse().status}"


def probe_oauth_tokens(code: Path, slack, claude, workdir: Path) -> None:
    env = base_env(
        slack,
        claude,
        workdir,
        SLACK_CLIENT_ID="111.222",
        SLACK_CLIENT_SECRET="oauth-secret",
        COLDCOPY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{workdir / 'oauth.db'}",
    )
    env.pop("SLACK_BOT_TOKEN")
    with serving(code, env, workdir / "c.log") as (_proc, base):
        client = SignedSlackClient(base)
        page = client.request("GET", "/slack/install")
        import re
        from http.cookies import SimpleCookie

        link = re.search(r'href="(https://slack.com/oauth[^"]+)"', page.body.decode())[1]
        state = parse_qs(urlsplit(link.replace("&amp;", "&")).query)["state"][0]
        jar = "; ".join(
            f"{k}={v.value}" for k, v in SimpleCookie(page.headers.get("Set-Cookie")).items()
        )
        client.request(
            "GET", f"/slack/oauth_redirect?code=c&state={state}", headers={"Cookie": jar}
        )
    engine = create_engine(f"sqlite:///{workdir / 'oauth.db'}")
    with engine.connect() as conn:
        token = conn.execute(text("SELECT bot_token FROM slack_bots")).scalar()
    engine.dispose()
    report(
        "OAuth bot token as stored in slack_bots",
        "plain text xoxb-..."
        if token and token.startswith("xox")
        else f"encrypted {token[:12]}...",
    )


def probe_startup(code: Path, slack, claude, workdir: Path) -> None:
    def case(name: str, args: list[str], **extra) -> None:
        env = base_env(slack, claude, workdir, **extra)
        env.update(_CWD=str(workdir))
        try:
            result = coldcopy(code, ["serve", "--host", "127.0.0.1", *args], env, timeout=20)
            trace = "traceback" if "Traceback" in result.stderr else "no traceback"
            outcome = f"exit {result.returncode}, {trace}"
        except subprocess.TimeoutExpired:
            outcome = "started (still running after 20 s)"
        report(f"start-up: {name}", outcome)

    with socket.create_server(("127.0.0.1", 0)) as taken:
        case("port in use", ["--port", str(taken.getsockname()[1])])
    case("--port 70000", ["--port", "70000"])
    case(
        "SQLite path that cannot be opened",
        ["--port", str(free_port())],
        DATABASE_URL="sqlite:////no/such/dir/cc.db",
    )
    case("malformed DATABASE_URL", ["--port", str(free_port())], DATABASE_URL="postgres//x")
    case("malformed REDIS_URL", ["--port", str(free_port())], REDIS_URL="localhost:6379")
    case(
        "database down",
        ["--port", str(free_port())],
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/cc",
    )
    slack.fail("auth.test", "invalid_auth", times=None)
    case(
        "invalid bot token",
        ["--port", str(free_port())],
        DATABASE_URL=f"sqlite:///{workdir / 'tok.db'}",
    )
    slack.reset()
    case(
        "Slack unreachable",
        ["--port", str(free_port())],
        SLACK_API_URL="http://127.0.0.1:1/api/",
        DATABASE_URL=f"sqlite:///{workdir / 'su.db'}",
    )
    case(
        "billing on, STRIPE_WEBHOOK_SECRET unset",
        ["--port", str(free_port())],
        STRIPE_SECRET_KEY="sk_test",
        STRIPE_PRICE_ID="price_1",
        COLDCOPY_PUBLIC_URL="https://coldcopy.example",
        DATABASE_URL=f"sqlite:///{workdir / 'bill.db'}",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=bench.services.ROOT)
    args = parser.parse_args()
    code = args.code.resolve()
    print(f"probing coldcopy serve from {code}\n")
    with FakeSlack() as slack, FakeAnthropic() as claude, tempfile.TemporaryDirectory() as tmp:
        slack.add_user("U1")
        slack.add_user("UADMIN", is_admin=True)
        workdir = Path(tmp)
        probe_requests(code, slack, claude, workdir)
        probe_postgres(code, slack, claude, workdir)
        probe_oauth_tokens(code, slack, claude, workdir)
        probe_startup(code, slack, claude, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What several test files share: settings, the sample brief, waiting, and reading the fakes
and the database. Test files import from here, never from each other."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.settings import Settings
from harness import SAMPLE_BRIEF, ServedApp, SignedSlackClient
from storage.db import reading
from storage.models import Generation, Workspace

BRIEF = SAMPLE_BRIEF
ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); start it (see .ci/run)"
    if IN_CI:
        pytest.fail(f"CI needs {message}", pytrace=False)
    pytest.skip(message)


def make_settings(**overrides) -> Settings:
    """Settings for a test: no .env file, nothing read from the developer's environment."""
    base = {
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": "test-signing-secret",
        "anthropic_api_key": "sk-ant-test",
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no ColdCopy, Slack, Anthropic or Stripe variables."""
    prefixes = ("SLACK_", "ANTHROPIC_", "COLDCOPY_", "STRIPE_", "DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def open_form(app: ServedApp, slack, *, user="U1", channel="C1") -> dict:
    before = len(slack.calls_to("views.open"))
    reply = app.slash("", user=user, channel=channel)
    assert reply.status == 200
    call = slack.wait_for("views.open", count=before + 1)[-1]
    return call.params["view"]


def thread_posts(slack, count: int) -> list:
    """The parent and the replies (posted, or streamed in), each as its message is now."""
    return slack.wait_for_posts(count, timeout=15)


def generations(engine) -> list:
    with reading(engine) as conn:
        return conn.execute(select(Generation.__table__)).all()


def used(engine, team="T0001") -> int:
    with reading(engine) as conn:
        return conn.execute(
            select(Workspace.__table__.c.used).where(Workspace.__table__.c.team_id == team)
        ).scalar_one()


def all_text(calls) -> str:
    return json.dumps([c.params for c in calls], ensure_ascii=False)


def process_env(slack, claude, database_url: str, **extra: str):
    """The environment of a coldcopy process wired to the fakes."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_API_URL": slack.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": claude.base_url,
        "DATABASE_URL": database_url,
        **extra,
    }


class Processes:
    """Starts coldcopy subcommands with one environment and stops them all at the end."""

    def __init__(self, env: dict[str, str], tmp: Path):
        self.env = env
        self.tmp = tmp
        self.running: list[subprocess.Popen] = []

    def start(self, *args: str, name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.runtime.cli", *args],
            cwd=self.tmp,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_path = self.tmp / f"{name}.log"
        self.running.append(proc)
        return proc

    def serve(self, name: str) -> SignedSlackClient:
        port = free_port()
        proc = self.start("serve", "--host", "127.0.0.1", "--port", str(port), name=name)
        client = SignedSlackClient(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited:\n{proc.log_path.read_text()}")
            try:
                if client.request("GET", "/healthz").status == 200:
                    return client
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{name} did not start:\n{proc.log_path.read_text()}")

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def email_steps(slack) -> list[int]:
    """The step of every email reply delivered (posted, or streamed and then formatted), in
    the order the replies were started."""
    steps = []
    for call in slack.posts():
        match = re.match(r"Email (\d) \(day", call.params.get("text", ""))
        if call.params.get("thread_ts") and match:
            steps.append(int(match[1]))
    return steps


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (e.g. `coldcopy serve`'s gunicorn workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found

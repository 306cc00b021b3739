"""What several test files share: settings, the sample brief, running the CLI, and reading the
fakes and the database. Test files import from here (and from testkit), never from each other."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.settings import Settings
from bot.writing.brief import Brief
from storage.db import reading
from storage.models import Generation, Workspace
from testkit.harness import SAMPLE_BRIEF, ServedApp
from testkit.processes import clean_env, run_coldcopy

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


def make_brief(**overrides: str) -> Brief:
    fields = {
        "company": "Northwind Logistics",
        "job_title": "Head of Operations",
        "problem": "Dispatchers re-key every order into three systems",
        "product": "RouteSync connects order intake to dispatch in one place",
        "benefit": "Cuts order handling time by 40%",
        "call_to_action": "A 15-minute call next week",
        "tone": "Friendly",
    }
    fields.update(overrides)
    return Brief(**fields)


def coldcopy(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`coldcopy ARGS` from this checkout, in a fresh shell's environment plus `env`."""
    return run_coldcopy(*args, cwd=cwd, env=clean_env(PYTHONPATH=str(ROOT), **env))


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


def email_steps(slack) -> list[int]:
    """The step of every email reply delivered (posted, or streamed and then formatted), in
    the order the replies were started."""
    steps = []
    for call in slack.posts():
        match = re.match(r"Email (\d) \(day", call.params.get("text", ""))
        if call.params.get("thread_ts") and match:
            steps.append(int(match[1]))
    return steps

"""What several test files share: settings, the sample brief, running the CLI, and reading the
fakes and the database. Test files import from here (and from testkit), never from each other."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.core.settings import Settings
from bot.writing.brief import Brief
from bot.writing.events import BodyDelta, SequenceEmail, WriterError
from storage.db import reading
from storage.models import Generation, Workspace
from testkit.briefs import SAMPLE_BRIEF
from testkit.processes import clean_env, run_coldcopy

if TYPE_CHECKING:  # the harness imports the whole app: only what a fixture serves needs it
    from bot.writing.writer import Writer
    from testkit.harness import ServedApp

BRIEF = SAMPLE_BRIEF
ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); start it (see .ci/run)"
    if IN_CI:
        pytest.fail(f"CI needs {message}", pytrace=False)
    pytest.skip(message)


def readme_block(name: str) -> str:
    """The command in README.md between `<!-- name -->` and `<!-- /name -->`."""
    block = re.search(rf"<!-- {name} -->\n```\n(.+?)\n```\n<!-- /{name} -->", README, re.S)
    assert block, f"README.md has no {name} block"
    return block[1].strip()


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


def without_body_text(items: Iterator) -> Iterator:
    """The writer's emails and summary, without the body text handed on while it writes."""
    return (item for item in items if not isinstance(item, BodyDelta))


def failed_generation(
    writer: Writer, brief: Brief | None = None
) -> tuple[list[SequenceEmail], WriterError]:
    """Consume a generation that must fail; return the emails yielded before it did."""
    emails: list[SequenceEmail] = []
    with pytest.raises(WriterError) as failure:
        for item in without_body_text(writer.write_sequence(brief or make_brief())):
            assert isinstance(item, SequenceEmail), "a summary must never follow a failure"
            emails.append(item)
    return emails, failure.value


def coldcopy(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`coldcopy ARGS` from this checkout, in a fresh shell's environment plus `env`."""
    return run_coldcopy(*args, cwd=cwd, env=clean_env(PYTHONPATH=str(ROOT), **env))


# One key for the whole test run: OAuth installs keep their tokens encrypted with it.
ENCRYPTION_KEY = Fernet.generate_key().decode()


def oauth_overrides() -> dict:
    return {
        "slack_bot_token": None,
        "slack_client_id": "111.222",
        "slack_client_secret": "oauth-secret",
        "encryption_key": ENCRYPTION_KEY,
    }


def install(app: ServedApp) -> None:
    """Install the app as an admin's browser does: /slack/install, then Slack's redirect."""
    page = app.request("GET", "/slack/install")
    assert page.status == 200
    state = parse_qs(
        urlsplit(
            re.search(r'href="(https://slack.com/oauth[^"]+)"', page.body.decode())[1].replace(
                "&amp;", "&"
            )
        ).query
    )["state"][0]
    cookie = SimpleCookie(page.headers.get("Set-Cookie"))
    jar = "; ".join(f"{k}={v.value}" for k, v in cookie.items())
    done = app.request(
        "GET", f"/slack/oauth_redirect?code=fake-code&state={state}", headers={"Cookie": jar}
    )
    assert done.status == 200, done.body


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

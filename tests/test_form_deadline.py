"""`/coldcopy` under load: a form is opened while its trigger is still good, or the user is told
ColdCopy is busy; never a form sent to Slack after the trigger expired, never a silent drop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from helpers import make_settings

from bot.core.metrics import REGISTRY
from bot.runtime.wiring import BACKLOG_PER_THREAD
from bot.slack import constants as K
from bot.slack.forms import BUSY
from testkit.fakes.slack import FakeSlack
from testkit.harness import Reply, ServedApp
from testkit.waiting import wait_until


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def app(slack, sqlite_engine) -> Iterator[ServedApp]:
    """ColdCopy with the fewest command threads (the floor of 8), against the Slack fake."""
    settings = make_settings(
        slack_api_url=slack.base_url,
        database_url=str(sqlite_engine.url),
        web_threads=1,
    )
    served = ServedApp(settings, sqlite_engine, slack=slack)
    with served:
        yield served


# web_threads=1 gives the command pool its floor of 8 threads.
THREADS = 8


def not_opened(reason: str) -> float:
    return REGISTRY.get_sample_value("coldcopy_forms_not_opened_total", {"reason": reason}) or 0


def busy_replies(slack) -> dict[str, dict]:
    """The "busy" answers, by the path of the response_url each was posted to."""
    return {
        call.params["_path"]: call.params
        for call in slack.calls_to("response_url")
        if call.params.get("text") == BUSY
    }


def answered_at(command: Reply) -> str:
    """Where the app answers a command: its response_url's path."""
    return urlsplit(command.response_url).path


def opened_triggers(slack) -> set[str]:
    return {call.params["trigger_id"] for call in slack.calls_to("views.open")}


def test_a_form_whose_work_starts_after_the_deadline_is_answered_busy_not_opened(app, slack):
    expired_before = not_opened("expired")
    slack.hold("views.open")  # Slack answers slowly: every command thread waits on it
    for _ in range(THREADS):
        assert app.slash("").status == 200
    slack.wait_held("views.open", THREADS)

    late = app.slash("")  # acked at once, its work waits behind the eight for a thread
    assert late.status == 200 and late.body == b""
    # Let its trigger's budget run out while it waits (a wait, not a timing assertion).
    time.sleep(K.TRIGGER_SECONDS - K.VIEWS_OPEN_MARGIN_SECONDS + 0.2)
    slack.release("views.open")

    wait_until(lambda: answered_at(late) in busy_replies(slack))
    wait_until(lambda: len(slack.calls_to("views.open")) == THREADS)
    reply = busy_replies(slack)[answered_at(late)]
    assert reply["response_type"] == "ephemeral"
    assert late.trigger_id not in opened_triggers(slack)
    assert len(opened_triggers(slack)) == THREADS  # the eight that reached Slack in time
    assert not_opened("expired") == expired_before + 1
    assert slack.violations == []


def test_when_the_backlog_is_full_the_ack_itself_says_busy_and_nothing_is_queued(app, slack):
    overloaded_before = not_opened("overloaded")
    capacity = THREADS * (1 + BACKLOG_PER_THREAD)
    slack.hold("views.open")
    taken = [app.slash("") for _ in range(capacity)]
    for reply in taken:
        assert reply.status == 200 and reply.body == b""  # taken: acked with nothing to show
    slack.wait_held("views.open", THREADS)

    refused = app.slash("")

    assert refused.status == 200
    assert refused.json() == {"text": BUSY, "response_type": "ephemeral"}
    assert not_opened("overloaded") == overloaded_before + 1
    slack.release("views.open")
    # Every command taken gets exactly one answer: its form, or "busy" when it ran too late.
    wait_until(
        lambda: len(opened_triggers(slack)) + len(busy_replies(slack)) == capacity, timeout=30
    )
    opened = {n for n, c in enumerate(taken) if c.trigger_id in opened_triggers(slack)}
    busy = {n for n, c in enumerate(taken) if answered_at(c) in busy_replies(slack)}
    assert opened.isdisjoint(busy)
    assert refused.trigger_id not in opened_triggers(slack)
    assert answered_at(refused) not in busy_replies(slack)  # its answer was the ack itself


def test_status_and_help_still_answer_while_forms_wait(app, slack):
    slack.hold("views.open")
    for _ in range(THREADS):
        app.slash("")
    slack.wait_held("views.open", THREADS)

    assert "/coldcopy" in app.slash("help").json()["text"]
    slack.release("views.open")

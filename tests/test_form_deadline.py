"""`/coldcopy` under load: many forms wait on Slack at once without holding a thread each; a form
is opened while its trigger is still good, or the user is told ColdCopy is busy; never a form
sent to Slack after the trigger expired, never a silent drop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from helpers import make_settings
from sqlalchemy import event

from bot.core.backlog import Admission
from bot.core.metrics import REGISTRY
from bot.runtime.wiring import FORMS_AT_ONCE
from bot.slack import constants as K
from bot.slack.forms import BUSY
from testkit.clock import ManualClock
from testkit.fakes.slack import FakeSlack
from testkit.harness import Reply, ServedApp
from testkit.waiting import wait_until


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def app(slack, sqlite_engine) -> Iterator[ServedApp]:
    """ColdCopy with the fewest threads: one request thread of its own (the harness serves
    with 8), the after-ack pool's floor of 8."""
    settings = make_settings(
        slack_api_url=slack.base_url,
        database_url=str(sqlite_engine.url),
        web_threads=1,
    )
    served = ServedApp(settings, sqlite_engine, slack=slack)
    with served:
        yield served


# More than every thread the app has (8 serving, 8 after the ack, 4 form readers) together.
MANY = 40


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


def test_many_forms_wait_on_slack_at_once_without_a_thread_each(app, slack):
    slack.hold("views.open")  # Slack answers slowly
    for n in range(MANY):
        reply = app.slash("", user=f"U{n}")
        assert reply.status == 200 and reply.body == b""  # taken: acked with nothing to show

    slack.wait_held("views.open", MANY)  # all of them on their way to Slack together
    assert "/coldcopy" in app.slash("help").json()["text"]  # and the app still answers
    slack.release("views.open")
    wait_until(lambda: len(opened_triggers(slack)) == MANY)
    assert busy_replies(slack) == {}
    assert slack.violations == []


def test_a_form_that_could_no_longer_reach_slack_in_time_is_answered_busy_not_opened(app, slack):
    expired_before = not_opened("expired")
    slack.hold("users.info")  # the new user's locale is slow to come
    command = app.slash("", user="UNEW")
    assert command.status == 200
    slack.wait_held("users.info", 1)
    # Let the trigger's budget run out while the form waits (a wait, not a timing assertion).
    time.sleep(K.TRIGGER_SECONDS - K.VIEWS_OPEN_MARGIN_SECONDS + 0.2)
    slack.release("users.info")

    wait_until(lambda: answered_at(command) in busy_replies(slack))
    assert busy_replies(slack)[answered_at(command)]["response_type"] == "ephemeral"
    assert slack.calls_to("views.open") == []  # never sent after its deadline
    app.slash("", user="UNEXT")  # a form that comes after it, to know its work is over
    slack.wait_for("views.open", count=1)
    assert len(slack.calls_to("response_url")) == 1  # "busy", and nothing else
    assert not_opened("expired") == expired_before + 1
    assert slack.violations == []


def test_when_the_process_holds_all_the_forms_it_can_the_ack_itself_says_busy(app, slack):
    overloaded_before = not_opened("overloaded")
    slack.hold("views.open")
    taken = [app.slash("", user=f"U{n}") for n in range(FORMS_AT_ONCE)]
    assert all(reply.status == 200 and reply.body == b"" for reply in taken)
    slack.wait_held("views.open", FORMS_AT_ONCE, timeout=30)

    refused = app.slash("", user="ULAST")

    assert refused.status == 200
    assert refused.json() == {"text": BUSY, "response_type": "ephemeral"}
    assert not_opened("overloaded") == overloaded_before + 1
    slack.release("views.open")
    # Every command taken gets exactly one answer: its form, or "busy" when it ran too late.
    wait_until(
        lambda: len(opened_triggers(slack)) + len(busy_replies(slack)) == FORMS_AT_ONCE,
        timeout=30,
    )
    opened, busy = opened_triggers(slack), busy_replies(slack)
    for reply in taken:  # a form or "busy", never both
        assert (reply.trigger_id in opened) != (answered_at(reply) in busy)
    assert refused.trigger_id not in opened
    assert answered_at(refused) not in busy  # its answer was the ack itself
    # Room again once they are answered.
    again = app.slash("", user="UAGAIN")
    assert again.body == b""
    wait_until(lambda: again.trigger_id in opened_triggers(slack))


def test_status_and_help_still_answer_while_forms_wait(app, slack):
    slack.hold("views.open")
    for n in range(MANY):
        app.slash("", user=f"U{n}")
    slack.wait_held("views.open", MANY)

    assert "/coldcopy" in app.slash("help").json()["text"]
    app.slash("status", user="U1")
    slack.wait_for("response_url", count=1)
    slack.release("views.open")


def test_a_form_costs_one_database_statement(app, slack, sqlite_engine):
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if threading.current_thread().name.startswith("coldcopy-form"):
            statements.append(statement.split()[0].upper())

    event.listen(sqlite_engine, "before_cursor_execute", count)
    try:
        app.slash("", user="U1")
        slack.wait_for("views.open", count=1)
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", count)
    # SQLite's read-only transaction around it is BEGIN and COMMIT, not statements.
    assert [s for s in statements if s not in ("BEGIN", "COMMIT")] == ["SELECT"]


def test_a_users_locale_is_asked_once_and_only_when_nothing_else_decides(app, slack):
    slack.add_user("UFR", locale="fr-FR")
    for n in range(1, 3):
        app.slash("", user="UFR")
        slack.wait_for("views.open", count=n)
    for call in slack.calls_to("views.open"):
        language = next(b for b in call.params["view"]["blocks"] if b.get("block_id") == "language")
        assert language["element"]["initial_option"]["value"] == "fr"
    assert len(slack.calls_to("users.info")) == 1  # the second form remembered it


# --- who is let in: the admission's rules, on a clock the test moves ------------------------


def test_the_admission_takes_work_up_to_its_limit_and_again_once_some_leaves():
    admission = Admission(3, floor=10, target=1.0, clock=ManualClock())
    tickets = [admission.try_enter() for _ in range(4)]
    assert tickets[3] is None and None not in tickets[:3]
    tickets[0].reached()  # on its way, but still inside
    assert admission.try_enter() is None
    tickets[0].leave()
    assert admission.try_enter() is not None


def test_a_quiet_process_takes_a_burst_up_to_the_floor():
    admission = Admission(100, floor=5, target=1.0, clock=ManualClock())
    assert sum(admission.try_enter() is not None for _ in range(8)) == 5


def test_work_waiting_is_kept_to_what_the_recent_pace_reaches_in_the_target_time():
    clock = ManualClock()
    admission = Admission(1000, floor=5, target=1.0, clock=clock)
    waiting = [admission.try_enter() for _ in range(5)]
    # 20 reached in time over the last 0.5 s: 40 per second, so 40 may wait for 1 s.
    for _ in range(4):
        for _ in range(5):
            ticket = waiting.pop(0)
            ticket.reached()
            waiting.append(admission.try_enter())
        clock.advance(0.125)
    while (ticket := admission.try_enter()) is not None:
        waiting.append(ticket)
    assert len(waiting) == 40

    # Given up (too late) is no pace at all: the room stays as it was until the window moves.
    for ticket in waiting[:20]:
        ticket.leave()
    assert sum(admission.try_enter() is not None for _ in range(30)) == 20
    clock.advance(1.1)  # nothing reached in time for a second: back to the floor
    assert admission.try_enter() is None  # 40 wait, the floor is 5

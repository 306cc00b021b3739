"""A generation survives the death of the process writing it: `kill -9` after two emails,
then the restarted `serve` (embedded) or another `coldcopy worker` (scale-out) takes it over
and resumes it. The user ends with exactly seven distinct emails in one thread, is billed
once, and the model was asked only for the emails still missing."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from helpers import BRIEF, email_steps
from sqlalchemy import select

from bot.slack.modal import brief_view
from storage.db import make_engine, reading
from storage.migrate import upgrade
from storage.models import Generation, Workspace
from testkit.fakes.anthropic import FakeAnthropic, sample_sequence
from testkit.fakes.slack import FakeSlack
from testkit.processes import Processes, children, coldcopy_env
from testkit.waiting import wait_until

G = Generation.__table__
W = Workspace.__table__


def submit(client, view_id: str) -> dict:
    view = brief_view(None, "C1")
    view["id"] = view_id
    return client.submit(view, BRIEF, view_id=view_id).json()


def the_generation(engine):
    with reading(engine) as conn:
        return conn.execute(select(G)).one()


def assert_resumed_once(slack: FakeSlack, claude: FakeAnthropic, engine) -> None:
    wait_until(lambda: the_generation(engine).status == "succeeded", timeout=60)
    gen = the_generation(engine)
    assert sorted(email_steps(slack)) == [1, 2, 3, 4, 5, 6, 7]  # none twice, none lost
    # ...and nothing else in the thread: no partial reply left by the process that died.
    assert len([c for c in slack.posts() if c.params.get("thread_ts")]) == 7
    assert [email["step"] for email in gen.sequence] == [1, 2, 3, 4, 5, 6, 7]
    assert (gen.quota_state, gen.takeovers) == ("committed", 1)
    with reading(engine) as conn:
        assert conn.execute(select(W.c.used)).scalar_one() == 1  # billed once
    # The model was asked to continue after the two emails already sent, not to start over.
    resumed = claude.requests[-1].body["messages"][0]["content"]
    assert "Emails 1 to 2" in resumed and sample_sequence()[1]["subject_a"] in resumed
    # The thread told the user it had been picked up again.
    updates = [c.params.get("blocks") for c in slack.calls_to("chat.update")]
    assert any("Picked up again" in str(blocks) for blocks in updates)


def kill_after_two_emails(slack: FakeSlack, proc) -> None:
    """`kill -9` of the process and of its children, as when its container is killed: the
    worker processes of `coldcopy serve` write generations, not its gunicorn master."""
    wait_until(lambda: len(email_steps(slack)) >= 2, timeout=30)
    workers = children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_a_restarted_serve_resumes_the_generation_it_was_writing(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'coldcopy.db'}"
    with FakeSlack() as slack, FakeAnthropic() as claude:
        slack.add_user("U1")
        procs = Processes(coldcopy_env(slack, claude, database_url), tmp_path, slack)
        try:
            claude.enqueue_sequence(tokens_per_second=150)  # about six seconds of streaming
            claude.enqueue_sequence(sample_sequence()[2:])  # what the resumed request gets
            server = procs.serve("serve-1")
            assert "Writing your sequence" in str(submit(server, "VKILL"))
            kill_after_two_emails(slack, procs.running[0])
            procs.serve("serve-2")  # the same deployment, restarted
            engine = make_engine(database_url)
            try:
                assert_resumed_once(slack, claude, engine)
            finally:
                engine.dispose()
        finally:
            procs.stop_all()


@pytest.mark.parametrize("continuation", ["remaining", "whole"])
def test_another_worker_resumes_the_generation_of_a_killed_one(
    postgres_url, redis_url, tmp_path, continuation
):
    with FakeSlack() as slack, FakeAnthropic() as claude:
        slack.add_user("U1")
        engine = make_engine(postgres_url)
        upgrade(engine)
        env = coldcopy_env(
            slack, claude, postgres_url, REDIS_URL=redis_url, COLDCOPY_WORKER_METRICS_PORT="0"
        )
        procs = Processes(env, tmp_path, slack)
        try:
            claude.enqueue_sequence(tokens_per_second=150)
            # A model may answer a continuation with just the missing emails or with the
            # whole sequence again; either way the two emails already sent stay as they are.
            rest = sample_sequence()[2:] if continuation == "remaining" else sample_sequence()
            claude.enqueue_sequence(rest)
            server = procs.serve("serve-1")
            worker = procs.start("worker", name="worker-1")
            assert "Writing your sequence" in str(submit(server, "VKILL"))
            kill_after_two_emails(slack, worker)
            procs.start("worker", name="worker-2")
            assert_resumed_once(slack, claude, engine)
        finally:
            procs.stop_all()
            engine.dispose()

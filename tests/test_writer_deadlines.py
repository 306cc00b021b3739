"""The writer's wall-clock promises, which take real seconds to keep: an email is handed on
while the model is still writing, a stream nobody reads any more is hung up on, and the total
budget holds over a trickling stream and over the SDK's own retry backoff."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from helpers import failed_generation, make_brief, without_body_text

from bot.writing.events import SequenceEmail, WriterError, WriterSummary
from bot.writing.lead_list import read_lead_list
from bot.writing.personal_prompt import list_prefix
from bot.writing.prompt import SEQUENCE_LENGTH
from bot.writing.writer import Writer
from testkit.fakes.anthropic import FakeAnthropic, sample_sequence
from testkit.waiting import wait_until


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(retry_after_ms=5) as fake:
        yield fake


@pytest.fixture
def writer(fake: FakeAnthropic) -> Iterator[Writer]:
    with Writer(api_key="sk-ant-test", base_url=fake.base_url, timeout=10, max_retries=3) as w:
        yield w


def test_the_first_email_is_handed_on_while_the_model_is_still_writing(fake, writer):
    # The server holds the end of the answer back; emails 1-6 must not wait for it.
    reply = fake.enqueue_sequence(pause_before_end=0.6)
    items = without_body_text(writer.write_sequence(make_brief()))

    first = next(items)
    assert isinstance(first, SequenceEmail) and first.step == 1
    assert not reply.finished.is_set(), "email 1 waited for the whole stream"
    for _ in range(5):
        next(items)
    assert not reply.finished.is_set()

    rest = list(items)
    assert [type(i) for i in rest] == [SequenceEmail, WriterSummary]
    assert reply.finished.wait(2)  # the server thread may still be closing the response


def test_an_abandoned_generation_stops_reading_the_stream(fake, writer):
    reply = fake.enqueue_sequence(tokens_per_second=400)
    items = without_body_text(writer.write_sequence(make_brief()))
    assert next(items).step == 1

    items.close()  # e.g. the Slack post failed and the job gave up

    assert reply.finished.wait(3)
    assert reply.disconnected, "the connection stayed open for an answer nobody reads"


def test_the_total_timeout_fires_on_a_stream_that_keeps_trickling(fake):
    # A delta every ~30 ms: no single read ever times out, but the whole answer takes ~10 s.
    reply = fake.enqueue_sequence(tokens_per_second=100)

    with Writer(api_key="sk-ant-test", base_url=fake.base_url, timeout=1.0) as writer:
        started = time.monotonic()
        emails, error = failed_generation(writer)
        elapsed = time.monotonic() - started

    assert error.kind == "timeout"
    assert 1.0 <= elapsed < 2.0, "the budget was not enforced over the whole stream"
    assert len(emails) < SEQUENCE_LENGTH
    assert error.usage is not None and error.usage.tokens.input == 1500
    assert reply.finished.wait(3) and reply.disconnected


def model_streams_running() -> bool:
    """Whether a model request's thread (bot/writing/model_stream.py) is still at work."""
    return any(t.name == "coldcopy-model-stream" and t.is_alive() for t in threading.enumerate())


def test_the_total_timeout_covers_the_sdks_retry_backoff_and_no_retry_follows_it(fake):
    fake.enqueue_error(529, headers={"retry-after-ms": "1200"})
    fake.enqueue_sequence()

    with Writer(api_key="sk-ant-test", base_url=fake.base_url, timeout=0.5) as writer:
        started = time.monotonic()
        _, error = failed_generation(writer)
        elapsed = time.monotonic() - started
        # The request's own thread ends once the SDK's backoff is over and the retry was
        # either sent or refused: only then can "no retry" be told apart from "not yet".
        wait_until(lambda: not model_streams_running(), what="the request's thread to end")

    assert error.kind == "timeout"
    assert elapsed < 1.1, "the deadline waited for the SDK's backoff"
    assert len(fake.requests) == 1
    assert fake.pending == 1


def test_a_lead_s_opening_keeps_the_budget_over_a_trickling_answer(fake):
    """Per-read timeouts never fire on a stream that keeps trickling: the budget is the whole
    answer's, so a list's lead ends in time and is tried again rather than hanging a slot."""
    fake.default_reply = fake.opening_reply(tokens_per_second=2)  # minutes for ~80 tokens
    lead = read_lead_list(b"Email,Company\nann@example.com,Northwind\n").leads[0]
    emails = [{"step": n, **email} for n, email in enumerate(sample_sequence(), 1)]
    prefix = list_prefix(make_brief(), emails)

    async def one() -> None:
        async with writer.openings() as openings:
            await openings.write(prefix, lead)

    with Writer(api_key="sk-ant-test", base_url=fake.base_url, timeout=1.0) as writer:
        started = time.monotonic()
        with pytest.raises(WriterError) as failed:
            asyncio.run(one())
        took = time.monotonic() - started
    assert failed.value.kind == "timeout"
    assert took < 3, f"the answer's budget was 1 s; it took {took:.1f} s"

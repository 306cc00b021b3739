"""Live writing in the thread: each email streams into its reply with Slack's streaming methods
and then becomes the formatted email, and every way Slack can refuse or break a stream still
delivers each email exactly once. End to end through the real HTTP endpoint, the Slack and
Claude fakes and both databases. (That the writer hands on body text before an email is
complete is tests/unit/test_writer.py's.)"""

from __future__ import annotations

import json

import pytest
from helpers import BRIEF, open_form

from bot.slack import constants as K
from testkit.fakes.anthropic import sample_sequence, sequence_json
from testkit.fakes.slack import FakeSlack
from testkit.waiting import wait_until

SEQUENCE = sample_sequence()


def thread_of(slack: FakeSlack) -> tuple[str, str, list[dict]]:
    parent = slack.posts()[0]
    channel, ts = parent.params["channel"], parent.params["ts"]
    return channel, ts, slack.thread(channel, ts)


def header(message: dict) -> str:
    return message["blocks"][0]["text"]["text"]


def body_text(message: dict) -> str:
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    return "\n\n".join(sections[1:])


def assert_seven_formatted_emails(slack: FakeSlack) -> list[dict]:
    """Exactly one reply per email, in order, each the formatted email with its controls."""
    _, _, replies = thread_of(slack)
    assert [header(r) for r in replies] == [
        f"Email {n} · Day {e['day']}" for n, e in enumerate(SEQUENCE, 1)
    ]
    for reply, email in zip(replies, SEQUENCE, strict=True):
        assert email["subject_a"] in json.dumps(reply["blocks"])
        kinds = [b["type"] for b in reply["blocks"]]
        assert "context_actions" in kinds and "actions" in kinds
    return replies


# --- streaming into the thread ----------------------------------------------------------------


def test_each_email_streams_into_its_reply_then_becomes_the_formatted_email(
    make_app, slack, claude, engine
):
    app = make_app(engine)
    reply = claude.enqueue_sequence(tokens_per_second=400)
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(8)
    starts = slack.calls_to("chat.startStream")
    assert len(starts) == 7
    # A channel needs the stream's recipient: the user who asked, in their workspace.
    assert {(c.params["recipient_user_id"], c.params["recipient_team_id"]) for c in starts} == {
        ("U1", "T0001")
    }
    # The first words of email 1 reached Slack while the model was still writing email 1.
    text, offsets = sequence_json(SEQUENCE)
    email_1_done = reply.sent_by(offsets[1])
    assert starts[0].at < email_1_done
    first_words = SEQUENCE[0]["body"][:10]
    assert first_words in json.dumps(starts[0].params)
    # Every stream was stopped, then updated into the email: no reply is left streaming.
    assert len(slack.calls_to("chat.stopStream")) == 7
    assert_seven_formatted_emails(slack)
    assert slack.calls_to("chat.postMessage")[1:] == []  # only the parent was posted
    assert slack.violations == []


def test_appends_are_spaced_out_and_carry_the_body_in_order(make_app, slack, claude):
    app = make_app()
    reply = claude.enqueue_sequence(tokens_per_second=250, chunk_chars=4)
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(8)
    seconds = reply.duration
    for start, email in zip(slack.calls_to("chat.startStream"), SEQUENCE, strict=True):
        ts = next(c.params["ts"] for c in slack.posts() if c.at == start.at)
        calls = [start] + [c for c in slack.calls_to("chat.appendStream") if c.params["ts"] == ts]
        # One call per second of writing at most, not one per token (~4 characters).
        assert len(calls) <= seconds + 2
        streamed = "".join(chunk["text"] for c in calls for chunk in c.params["chunks"])
        heading, _, body = streamed.partition("\n\n")
        assert heading.startswith(f"**Email {SEQUENCE.index(email) + 1} · Day {email['day']}**")
        assert body and email["body"].startswith(body)
    assert slack.violations == []


@pytest.mark.parametrize("error", ["unknown_method", "not_in_channel", "missing_scope"])
def test_a_workspace_that_refuses_streaming_gets_every_email_posted_whole(
    make_app, slack, claude, error
):
    slack.fail("chat.startStream", error, times=None)
    app = make_app()
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(9)  # the parent, one refused stream, then the 7 emails posted
    # Streaming is given up for the thread after the first refusal, not retried per email.
    assert len(slack.calls_to("chat.startStream")) == 1
    assert len([c for c in slack.calls_to("chat.postMessage") if c.ok]) == 8
    assert_seven_formatted_emails(slack)
    assert slack.violations == []


def test_a_stream_slack_closed_after_its_time_limit_is_updated_into_the_email(
    make_app, slack, claude, engine
):
    slack.stream_time_limit = 0.0  # every stream is over by its first append
    app = make_app(engine)
    claude.enqueue_sequence(tokens_per_second=400)
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(8)
    stops = slack.calls_to("chat.stopStream")
    assert [c.outcome for c in stops] == ["message_not_in_streaming_state"] * 7
    replies = assert_seven_formatted_emails(slack)
    assert body_text(replies[0]).replace("\n", "") == SEQUENCE[0]["body"].replace("\n", "")
    assert slack.calls_to("chat.postMessage")[1:] == []  # nothing posted twice
    assert slack.violations == []


def test_a_rate_limited_stream_is_given_up_at_once_and_its_email_delivered_whole(
    make_app, slack, claude
):
    slack.rate_limit("chat.startStream", retry_after=30, times=None)
    app = make_app()
    claude.enqueue_sequence(tokens_per_second=400)
    app.submit(open_form(app, slack), BRIEF)
    # Within the wait's 15 s: the writer never sat out Slack's 30-second Retry-After.
    slack.wait_for_posts(15)
    assert [c.outcome for c in slack.calls_to("chat.startStream")] == ["429"] * 7
    assert_seven_formatted_emails(slack)
    assert slack.violations == []


def test_a_streamed_reply_that_cannot_be_updated_is_posted_anew_and_the_partial_one_removed(
    make_app, slack, claude, engine
):
    stream_ts: set[str] = set()
    original_start = slack._chat_start_stream

    def remember(params, install):
        answer = original_start(params, install)
        if answer.body.get("ok"):
            stream_ts.add(answer.body["ts"])
        return answer

    slack._chat_start_stream = remember
    slack.fail(
        "chat.update",
        "cant_update_message",
        times=None,
        when=lambda params: params.get("ts") in stream_ts,
    )
    app = make_app(engine)
    claude.enqueue_sequence()
    app.submit(open_form(app, slack), BRIEF)
    wait_until(lambda: len(slack.calls_to("chat.delete")) == 7)
    slack.wait_for_posts(15)
    assert_seven_formatted_emails(slack)
    assert len([c for c in slack.calls_to("chat.postMessage") if c.ok]) == 8
    assert slack.violations == []


def test_a_generation_that_fails_mid_email_leaves_that_email_marked_as_cut_off(
    make_app, slack, claude
):
    app = make_app()
    text, offsets = sequence_json(SEQUENCE)
    # The answer breaks off 300 characters into email 3, in the middle of its body.
    claude.enqueue_tool_input(text, error_after=offsets[2] + 300, error_type="api_error")
    app.submit(open_form(app, slack), BRIEF)
    wait_until(
        lambda: any(
            K.RETRY_ACTION in json.dumps(c.params) for c in slack.calls_to("chat.postMessage")
        )
    )
    _, _, replies = thread_of(slack)
    formatted = [r for r in replies if "blocks" in r and r["blocks"][0]["type"] == "header"]
    assert len(formatted) == 2
    third = next(r for r in replies if "cut off here" in r.get("text", ""))
    assert third["streaming_state"] == "completed"
    assert SEQUENCE[2]["body"][:40] in third["text"]
    assert slack.violations == []

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


def draft_calls(slack: FakeSlack) -> list:
    """The draft's start and appends, in order."""
    return [c for c in slack.calls if c.method in ("chat.startStream", "chat.appendStream")]


def streamed(calls) -> str:
    """The markdown the calls sent, as a reader sees it (escapes undone)."""
    text = "".join(chunk["text"] for c in calls for chunk in c.params.get("chunks") or [])
    for escaped, shown in (("\\[", "["), ("\\]", "]"), ("&lt;", "<"), ("&gt;", ">")):
        text = text.replace(escaped, shown)
    return text.replace("&amp;", "&")


def sent(calls) -> str:
    """The markdown the calls sent, as sent."""
    return "".join(chunk["text"] for c in calls for chunk in c.params.get("chunks") or [])


def posted_email(slack: FakeSlack, step: int):
    return next(
        c
        for c in slack.calls_to("chat.postMessage")
        if c.ok and c.params.get("text", "").startswith(f"Email {step} (day")
    )


def test_one_draft_shows_every_email_being_written_and_goes_once_they_are_posted(
    make_app, slack, claude, engine
):
    app = make_app(engine)
    reply = claude.enqueue_sequence(tokens_per_second=400)
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(9)  # the parent, the draft, the 7 emails
    # One stream for the whole sequence (chat.startStream is Tier 2, ~20 a minute a workspace).
    [start] = slack.calls_to("chat.startStream")
    # A channel needs the stream's recipient: the user who asked, in their workspace.
    assert (start.params["recipient_user_id"], start.params["recipient_team_id"]) == (
        "U1",
        "T0001",
    )
    # Each email's first words reached the draft while the model was still writing that
    # email, and before the email itself was posted.
    text, offsets = sequence_json(SEQUENCE)
    ends = [*offsets[1:], len(text)]
    calls = draft_calls(slack)
    for step, email in enumerate(SEQUENCE, 1):
        shown = f"**Email {step} · Day {email['day']}**"
        first_words = next(
            call
            for n, call in enumerate(calls)
            if email["body"][:20] in streamed(calls[: n + 1]).partition(shown)[2]
        )
        assert first_words.at < reply.sent_by(ends[step - 1] - 2)
        assert first_words.at < posted_email(slack, step).at
    # Then it went: stopped and removed; the thread is the 7 formatted emails, nothing else.
    assert len(slack.calls_to("chat.stopStream")) == 1
    assert [c.params["ts"] for c in slack.calls_to("chat.delete")] == [start.params["_ts"]]
    assert_seven_formatted_emails(slack)
    assert len([c for c in slack.calls_to("chat.postMessage") if c.ok]) == 8
    assert slack.violations == []


def test_appends_are_spaced_out_and_carry_every_body_in_order(make_app, slack, claude):
    app = make_app()
    reply = claude.enqueue_sequence(tokens_per_second=250, chunk_chars=4)
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(9)
    calls = draft_calls(slack)
    # At most one a second, plus one at the start of each email: not one per token.
    assert len(calls) <= reply.duration + len(SEQUENCE) + 2
    text = streamed(calls)
    position = 0
    for step, email in enumerate(SEQUENCE, 1):
        position = text.index(f"**Email {step} · Day {email['day']}**", position)
        body_at = text.index(email["body"][:20], position)
        assert body_at > position
    assert slack.violations == []


def test_text_the_model_writes_cannot_ping_or_link_from_the_draft(make_app, slack, claude):
    emails = sample_sequence()
    emails[0]["body"] = "Hi <!channel> and <@U2>, see [this](http://evil.example) now.\n\n" * 2
    app = make_app()
    claude.enqueue_sequence(emails)
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(9)
    text = sent(draft_calls(slack))
    assert "<!channel>" not in text and "<@U2>" not in text and "[this](" not in text
    assert "&lt;!channel&gt;" in text and "\\[this\\]" in text
    # A reader sees the characters themselves.
    assert "<!channel> and <@U2>, see [this](http://evil.example)" in streamed(draft_calls(slack))
    assert slack.violations == []


@pytest.mark.parametrize(
    "error",
    ["unknown_method", "not_in_channel", "missing_scope", "channel_type_not_supported"],
)
def test_a_conversation_that_refuses_streaming_gets_every_email_posted_whole(
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


def test_a_draft_slack_closed_after_its_time_limit_stops_growing_and_still_goes(
    make_app, slack, claude, engine
):
    slack.stream_time_limit = 0.0  # the stream is over by its first append
    app = make_app(engine)
    claude.enqueue_sequence(tokens_per_second=400)
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(9)
    appends = slack.calls_to("chat.appendStream")
    assert [c.outcome for c in appends] == ["message_not_in_streaming_state"]  # then no more
    replies = assert_seven_formatted_emails(slack)
    assert body_text(replies[0]).replace("\n", "") == SEQUENCE[0]["body"].replace("\n", "")
    assert len(slack.calls_to("chat.delete")) == 1  # the draft went all the same
    assert slack.violations == []


def test_a_rate_limited_draft_is_given_up_at_once_and_every_email_delivered_whole(
    make_app, slack, claude
):
    slack.rate_limit("chat.startStream", retry_after=30, times=None)
    app = make_app()
    claude.enqueue_sequence(tokens_per_second=400)
    app.submit(open_form(app, slack), BRIEF)
    # Within the wait's 15 s: the writer never sat out Slack's 30-second Retry-After.
    slack.wait_for_posts(9)
    assert [c.outcome for c in slack.calls_to("chat.startStream")] == ["429"]
    assert_seven_formatted_emails(slack)
    assert slack.violations == []


def test_a_draft_the_reader_stopped_gets_nothing_more_and_still_goes(make_app, slack, claude):
    # chat.appendStream answers stopped_by_user once the person pressed stop on the stream.
    slack.fail("chat.appendStream", "stopped_by_user", times=None)
    app = make_app()
    claude.enqueue_sequence(tokens_per_second=400)
    app.submit(open_form(app, slack), BRIEF)
    slack.wait_for_posts(9)
    assert [c.outcome for c in slack.calls_to("chat.appendStream")] == ["stopped_by_user"]
    assert slack.calls_to("chat.stopStream") == []  # theirs to stop, and they did
    assert_seven_formatted_emails(slack)
    assert len(slack.calls_to("chat.delete")) == 1
    assert slack.violations == []


def test_a_generation_that_fails_mid_email_leaves_no_partial_reply_and_offers_try_again(
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
    # The draft (with email 3's first lines) is gone: no partial reply beside the two emails.
    assert not [r for r in replies if "streaming_state" in r]
    assert K.RETRY_ACTION in json.dumps(replies[-1]["blocks"])

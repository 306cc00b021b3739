"""Benchmark of live writing in the thread: how long after the model writes the first word of
an email's body that word is visible in Slack.

The real writer reads the local fake Messages API streaming at 80 tokens/s; the real
SequenceThread streams each email into its reply through slack_sdk's `chat_stream` against the
local Slack fake, exactly as a generation job does. For each email the figure runs from the
moment the fake API sent the chunk holding the body's first character to the moment the fake
Slack received the call that carries it (chat.startStream). Target: <= 500 ms.

A second figure follows every 10th character of each body the same way, to whichever call
first carried it (a start, an append, or the chat.update that finishes the email): how far
behind the model the reader is while an email is being written, appends being spaced out by
STREAM_APPEND_INTERVAL for Slack's rate limit.

    python -m bench.stream_bench [--runs N] [--tokens-per-second 80]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from bench.services import percentile
from bench.writer_bench import BRIEF
from bot.core.settings import Settings
from bot.slack.clients import make_slack_client
from bot.slack.thread import SequenceThread
from bot.writing.events import BodyDelta, SequenceEmail
from bot.writing.writer import Writer
from testkit.fakes.anthropic import FakeAnthropic, sample_sequence, sequence_json
from testkit.fakes.slack import FakeSlack

TOKENS_PER_SECOND = 80.0
RUNS = 2
TARGET_VISIBLE_MS = 500.0
BODY_KEY = '"body": "'


def body_starts(emails: list[dict]) -> list[int]:
    """Offset in the tool input of each email body's first character."""
    text, starts = sequence_json(emails)
    return [text.index(BODY_KEY, start) + len(BODY_KEY) for start in starts]


def one_run(tokens_per_second: float) -> tuple[list[float], list[float]]:
    """Milliseconds from each body's first token to it reaching Slack, one per email; and the
    same for every 10th character of every body."""
    emails = sample_sequence()
    with FakeSlack() as slack, FakeAnthropic() as claude:
        reply = claude.enqueue_sequence(emails, tokens_per_second=tokens_per_second)
        settings = Settings(_env_file=None, slack_api_url=slack.base_url)
        client = make_slack_client(settings, "xoxb-bench")
        thread = SequenceThread(
            client,
            generation_id="bench",
            brief=BRIEF,
            user_id="U1",
            channel_id="C1",
            team_id="T0001",
        )
        thread.open()
        with Writer(api_key="sk-ant-bench", base_url=claude.base_url, timeout=120) as writer:
            for item in writer.write_sequence(BRIEF):
                if isinstance(item, BodyDelta):
                    thread.draft(item)
                elif isinstance(item, SequenceEmail):
                    thread.add_email(item.step, item)
        starts = slack.calls_to("chat.startStream")
        if len(starts) != len(emails) or not all(c.ok for c in starts) or slack.violations:
            raise RuntimeError(f"streaming did not go as expected: {slack.violations}")
        lags = []
        for offset, start in zip(body_starts(emails), starts, strict=True):
            sent = reply.sent_by(offset)
            streamed = "".join(chunk["text"] for chunk in start.params.get("chunks", []))
            body = streamed.partition("\n\n")[2]  # after the email's heading
            if sent is None or not body or not emails[len(lags)]["body"].startswith(body):
                raise RuntimeError("the first stream call does not carry the body's first words")
            lags.append((start.at - sent) * 1000)
        return lags, text_lags(slack, emails, reply, starts)


def text_lags(slack: FakeSlack, emails: list[dict], reply, starts: list) -> list[float]:
    lags = []
    for email, offset, start in zip(emails, body_starts(emails), starts, strict=True):
        ts = next(c.params["ts"] for c in slack.posts() if c.at == start.at)
        carried: list[tuple[int, float]] = []  # (body characters visible, when)
        seen = ""
        for call in [start] + [c for c in slack.calls_to("chat.appendStream") if c.ok]:
            if call is not start and call.params.get("ts") != ts:
                continue
            seen += "".join(chunk["text"] for chunk in call.params.get("chunks", []))
            carried.append((len(seen.partition("\n\n")[2]), call.at))
        update = next(c for c in slack.calls_to("chat.update") if c.params.get("ts") == ts and c.ok)
        carried.append((len(email["body"]), update.at))
        for i in range(0, len(email["body"]), 10):
            # The character's place in the JSON text the model sent (escapes take room).
            sent = reply.sent_by(offset + len(json.dumps(email["body"][: i + 1])) - 3)
            shown = next(at for count, at in carried if count > i)
            lags.append((shown - sent) * 1000)
    return lags


def measure(*, runs: int = RUNS, tokens_per_second: float = TOKENS_PER_SECOND) -> dict:
    lags: list[float] = []
    text: list[float] = []
    for _ in range(runs):
        first, rest = one_run(tokens_per_second)
        lags += first
        text += rest
    return {
        "tokens_per_second": tokens_per_second,
        "samples": len(lags),
        "median_ms": statistics.median(lags),
        "p95_ms": percentile(lags, 95),
        "max_ms": max(lags),
        "text_samples": len(text),
        "text_median_ms": statistics.median(text),
        "text_p95_ms": percentile(text, 95),
        "text_max_ms": max(text),
        "meets_target": max(lags) <= TARGET_VISIBLE_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--tokens-per-second", type=float, default=TOKENS_PER_SECOND)
    args = parser.parse_args(argv)
    f = measure(runs=args.runs, tokens_per_second=args.tokens_per_second)
    print(
        f"stream: first body token -> visible in Slack, {f['samples']} emails at "
        f"{f['tokens_per_second']:g} tokens/s: median {f['median_ms']:.0f} ms, "
        f"p95 {f['p95_ms']:.0f} ms, max {f['max_ms']:.0f} ms (target <= {TARGET_VISIBLE_MS:.0f} ms)"
    )
    print(
        f"stream: any body text -> visible in Slack, {f['text_samples']} samples: median "
        f"{f['text_median_ms']:.0f} ms, p95 {f['text_p95_ms']:.0f} ms, "
        f"max {f['text_max_ms']:.0f} ms"
    )
    return 0 if f["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())

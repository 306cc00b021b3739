"""Benchmark of the writer's streaming latency, against the local fake Messages API at ~80 tokens/s.

Measures the time from job start to the first email delivered, the model stream's own
duration, and the time from the model's last token to the end of the generation (the last email
delivered, then the summary). Targets: the first email within 20% of the stream's duration, the
end within 300 ms of the last token.

    python -m bench.writer_bench [--tokens-per-second 80]

`measure_writer(on_email=...)` takes a consumer called with each email as it is delivered (the
Slack flow plugs its thread post in there), and returns the figures as a dict for a runner.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bot.writing.brief import Brief
from bot.writing.events import SequenceEmail, WriterSummary
from bot.writing.writer import Writer
from testkit.fakes.anthropic import FakeAnthropic

TOKENS_PER_SECOND = 80.0
TARGET_FIRST_EMAIL_SHARE = 0.20  # of the model stream's duration
TARGET_AFTER_LAST_TOKEN = 0.300  # seconds from the model's last token to the summary

EmailConsumer = Callable[[SequenceEmail], None]

BRIEF = Brief(
    company="Northwind Logistics",
    job_title="Head of Operations",
    problem="Dispatchers re-key every order into three systems",
    product="RouteSync connects order intake to dispatch in one place",
    benefit="Cuts order handling time by 40%",
    call_to_action="A 15-minute call next week",
    tone="Professional",
)


def measure_writer(
    *, tokens_per_second: float = TOKENS_PER_SECOND, on_email: EmailConsumer | None = None
) -> dict[str, float | bool]:
    """One generation against the fake; every time in seconds, from one monotonic clock."""
    first_email_at = last_email_at = summary_at = None
    with FakeAnthropic() as fake:
        reply = fake.enqueue_sequence(tokens_per_second=tokens_per_second)
        with Writer(api_key="sk-ant-bench", base_url=fake.base_url, timeout=120) as writer:
            job_started = time.perf_counter()
            for item in writer.write_sequence(BRIEF):
                if isinstance(item, SequenceEmail):
                    if on_email is not None:
                        on_email(item)
                    last_email_at = time.perf_counter()
                    first_email_at = first_email_at or last_email_at
                elif isinstance(item, WriterSummary):
                    summary_at = time.perf_counter()
        # The writer may be done before the server thread has stamped the end of its stream.
        reply.finished.wait(5)
    assert first_email_at and last_email_at and summary_at and reply.duration
    assert reply.started_at and reply.last_token_at

    first_email = first_email_at - job_started
    after_last_token = summary_at - reply.last_token_at
    return {
        "tokens_per_second": tokens_per_second,
        "output_tokens": reply.output_tokens,
        "first_email_s": first_email,
        "stream_duration_s": reply.duration,
        "first_email_share": first_email / reply.duration,
        "last_token_to_last_email_s": last_email_at - reply.last_token_at,
        "last_token_to_summary_s": after_last_token,
        "meets_targets": (
            first_email <= TARGET_FIRST_EMAIL_SHARE * reply.duration
            and after_last_token <= TARGET_AFTER_LAST_TOKEN
        ),
    }


def print_table(figures: dict[str, float | bool]) -> None:
    stream = float(figures["stream_duration_s"])
    rows = [
        (
            "job start -> first email",
            f"{figures['first_email_s']:.2f} s",
            f"<= {TARGET_FIRST_EMAIL_SHARE * stream:.2f} s",
        ),
        ("model stream duration", f"{stream:.2f} s", ""),
        (
            "first email / stream",
            f"{figures['first_email_share']:.1%}",
            f"<= {TARGET_FIRST_EMAIL_SHARE:.0%}",
        ),
        (
            "last token -> last email",
            f"{figures['last_token_to_last_email_s'] * 1000:.1f} ms",
            "",
        ),
        (
            "last token -> summary",
            f"{figures['last_token_to_summary_s'] * 1000:.1f} ms",
            f"<= {TARGET_AFTER_LAST_TOKEN * 1000:.0f} ms",
        ),
    ]
    print(
        f"writer: fake Messages API at {figures['tokens_per_second']:g} tokens/s, "
        f"{figures['output_tokens']} output tokens"
    )
    print(f"{'metric':<28}{'value':>12}  target")
    for name, value, target in rows:
        print(f"{name:<28}{value:>12}  {target}")
    print("targets met" if figures["meets_targets"] else "TARGETS MISSED")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens-per-second", type=float, default=TOKENS_PER_SECOND)
    args = parser.parse_args(argv)
    figures = measure_writer(tokens_per_second=args.tokens_per_second)
    print_table(figures)
    return 0 if figures["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())

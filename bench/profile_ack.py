"""Where the submission ack's time goes: `coldcopy serve`'s WSGI app, in this process, handling
signed view submissions (PostgreSQL, Redis, the job queue, the local FakeSlack), under
pyinstrument.

    python -m bench.profile_ack [--submissions 500] [--commands 300] [--html profile.html]

Three passes over the same app:
1. as served: the request thread as a gunicorn worker runs it. If the Bolt app hands its
   listeners to Bolt's executor (process_before_response off), this shows the hand-off and
   Bolt's 10 ms ack polling; with it on, the ack function runs right here.
2. submissions, executor inline: Bolt's listener executor swapped for one that runs each
   task in the calling thread, so pyinstrument (which follows one thread) sees all the work
   for a submission, wherever Bolt would run it: signature check, parsing, validation, the
   quota reservation, the rate limit, the job's defer and the answer view.
3. `/coldcopy` commands, executor inline: the ack, then the work that builds the form and
   calls views.open (a lazy listener, or the rest of the listener), which in production holds
   one of Bolt's listener threads.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import uuid
from concurrent.futures import Executor, Future
from contextlib import ExitStack

from pyinstrument import Profiler

from bench.services import flushed_redis, fresh_postgres

# isort: split
from bench.ack_bench import SIGNING_SECRET, SignedRequests, build_requests
from bench.fake_slack_process import FakeSlackProcess
from bot.core import backlog
from bot.core.settings import Settings
from bot.runtime.serving import check_before_serving, start_serving_process

SUBMISSIONS = 500
COMMANDS = 300
WARMUP = 50

# Where the listener's time goes, by the functions that own each step; each frame is counted
# once per call path (its own time includes its children).
STEPS = (
    ("Bolt: verify signature", "SignatureVerifier.is_valid"),
    ("Bolt: parse the form body", "BoltRequest.__init__"),
    ("read_submission", "read_submission"),
    ("validate_brief", "validate_brief"),
    ("reserve_generation (SQL)", "reserve_generation"),
    ("RateLimiter.check (Redis)", "check"),
    ("the job queue's defer (SQL)", "hand_on"),
    ("writing_view (answer)", "writing_view"),
    ("ack() + response", "Ack.__call__"),
)
COMMAND_STEPS = (
    ("quota_exhausted (SQL)", "quota_exhausted"),
    ("previous_brief (SQL)", "previous_brief"),
    ("brief_view (form)", "brief_view"),
    ("views.open (HTTP)", "WebClient.views_open"),
    ("Bolt: parse the form body", "BoltRequest.__init__"),
)


class InlineExecutor(Executor):
    """Runs each submitted call at once in the caller's thread."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the future, as a real executor would
            future.set_exception(exc)
        return future


def environ_for(body: bytes, headers: dict[str, str]) -> dict:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "3000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def call(app, body: bytes, headers: dict[str, str]) -> tuple[str, bytes]:
    answer: dict[str, str] = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = status

    data = b"".join(app(environ_for(body, headers), start_response))
    return answer["status"], data


def _frame_name(frame) -> str:
    cls = getattr(frame, "class_name", None)
    return f"{cls}.{frame.function}" if cls else frame.function


def step_totals(session, steps=STEPS) -> dict[str, float]:
    """Seconds spent under each of `steps`, in a pyinstrument session."""
    wanted = {name: label for label, name in steps}
    totals = dict.fromkeys(wanted.values(), 0.0)
    root = session.root_frame()

    def walk(frame, inside: frozenset[str]) -> None:
        for name in (_frame_name(frame), frame.function):
            label = wanted.get(name)
            if label and label not in inside:
                totals[label] += frame.time
                inside = inside | {label}
                break
        for child in frame.children:
            walk(child, inside)

    if root is not None:
        walk(root, frozenset())
    return totals


def _accepted(status: str, data: bytes, expect: bytes | None) -> bool:
    return status.startswith("200") and (expect is None or expect in data)


def profile(
    app,
    requests,
    *,
    label: str,
    show_lines: int,
    expect: bytes | None = b"Writing your",
    steps=STEPS,
) -> dict:
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for body, headers, _ in requests:
        status, data = call(app, body, headers)
        if not _accepted(status, data, expect):
            raise SystemExit(f"request not accepted: {status} {data[:300]!r}")
    profiler.stop()
    wall = time.perf_counter() - started
    per_request_ms = 1000 * wall / len(requests)
    print(f"\n=== {label}: {len(requests)} requests, {per_request_ms:.2f} ms each ===")
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    print("\n".join(text.splitlines()[:show_lines]))
    totals = step_totals(profiler.last_session, steps)
    return {"per_request_ms": per_request_ms, "session": profiler.last_session, "steps": totals}


def measure(
    submissions: int = SUBMISSIONS,
    show_lines: int = 70,
    html: str | None = None,
    commands: int = COMMANDS,
) -> dict:
    run = uuid.uuid4().hex[:4]
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres("coldcopy_bench_profile"))
        redis_url = stack.enter_context(flushed_redis())
        slack = stack.enter_context(FakeSlackProcess())
        settings = Settings(
            _env_file=None,
            slack_bot_token="xoxb-bench",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.base_url,
            anthropic_api_key="sk-ant-bench",
            anthropic_base_url="http://127.0.0.1:9",
            database_url=database_url,
            redis_url=redis_url,
            free_quota=1_000_000_000,
            user_rate="100000/minute",
            workspace_rate="100000/minute",
            web_threads=16,
            log_level="WARNING",
        )
        # /coldcopy's work runs on a pool of its own (bot/runtime/backlog.py), made inline
        # too so that the command pass sees the form being built and views.open.
        backlog.ThreadPoolExecutor = lambda **_: InlineExecutor()
        check_before_serving(settings)
        # What each `coldcopy serve` worker builds: engine, Redis, the job dispatcher, Bolt app.
        process = start_serving_process(settings)
        stack.callback(process.stop)
        app = process.wsgi
        builder = SignedRequests("http://unused", SIGNING_SECRET)
        for body, headers, _ in build_requests("submission", WARMUP, run + "w", builder):
            call(app, body, headers)

        served = profile(
            app,
            build_requests("submission", submissions, run + "s", builder),
            label="submissions as served (the request thread)",
            show_lines=30,
        )
        served_plain = timed(app, build_requests("submission", submissions, run + "t", builder))
        bolt = app.slack.bolt.app  # ColdCopyWSGI -> SlackRequestGuard -> Bolt adapter -> App
        # Bolt's runner and its lazy-listener runner share one executor; both get the inline
        # one (see the module docstring). These are private attributes of slack_bolt's App.
        runner = bolt._listener_runner
        real_executor = runner.listener_executor
        real_executor.shutdown(wait=True)  # nothing of the served pass is left running
        runner.listener_executor = runner.lazy_listener_runner.executor = InlineExecutor()
        inline = profile(
            app,
            build_requests("submission", submissions, run + "i", builder),
            label="submissions, Bolt's executor inline (all the work, one thread)",
            show_lines=show_lines,
        )
        plain = timed(app, build_requests("submission", submissions, run + "p", builder))
        builder.response_base = slack.response_base
        slash = profile(
            app,
            build_requests("slash", commands, run + "s", builder),
            label="/coldcopy, Bolt's executor inline (ack, then the form and views.open)",
            show_lines=show_lines // 2,
            expect=None,
            steps=COMMAND_STEPS,
        )
        slash_plain = timed(app, build_requests("slash", commands, run + "q", builder))
        if html:
            with open(html, "w") as out:
                from pyinstrument.renderers import HTMLRenderer

                out.write(HTMLRenderer().render(inline["session"]))
    poll_ms = _self_time_ms(served["session"], "sleep") / submissions
    profiled_s = inline["per_request_ms"] * submissions / 1000
    shares = {k: v / profiled_s for k, v in inline["steps"].items()}
    shares["everything else (Bolt dispatch, middleware, WSGI)"] = 1 - sum(shares.values())
    print(
        f"\nper submission, executor inline: {plain:.2f} ms without the profiler "
        f"({inline['per_request_ms']:.2f} ms under it); share of the profiled time:"
    )
    for label, share in shares.items():
        print(f"  {label:<52}{share:6.1%}  ~{share * plain:5.2f} ms")
    slash_s = slash["per_request_ms"] * commands / 1000
    slash_shares = {k: v / slash_s for k, v in slash["steps"].items()}
    print(
        f"\nper /coldcopy, executor inline: {slash_plain:.2f} ms without the profiler; "
        f"share of the profiled time:"
    )
    for label, share in slash_shares.items():
        print(f"  {label:<52}{share:6.1%}  ~{share * slash_plain:5.2f} ms")
    print(
        f"submissions as served: {served_plain:.2f} ms per request without the profiler; "
        f"{poll_ms:.2f} ms of it asleep in Bolt's ack polling (time.sleep(0.01) loop)"
    )
    return {
        "served_ms": served_plain,
        "process_before_response": bolt.process_before_response,
        "inline_ms": plain,
        "inline_profiled_ms": inline["per_request_ms"],
        "poll_sleep_ms": poll_ms,
        "step_shares": shares,
        "command_ms": slash_plain,
        "command_step_shares": slash_shares,
    }


def timed(app, requests) -> float:
    """Milliseconds per request without the profiler (which inflates Python-heavy steps)."""
    started = time.perf_counter()
    for body, headers, _ in requests:
        call(app, body, headers)
    return 1000 * (time.perf_counter() - started) / len(requests)


def _self_time_ms(session, function: str) -> float:
    total = 0.0

    def walk(frame) -> None:
        nonlocal total
        if frame.function == function:
            total += frame.time
            return
        for child in frame.children:
            walk(child)

    root = session.root_frame()
    if root is not None:
        walk(root)
    return 1000 * total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=SUBMISSIONS)
    parser.add_argument("--commands", type=int, default=COMMANDS)
    parser.add_argument("--lines", type=int, default=70, help="lines of the call tree shown")
    parser.add_argument("--html", help="also write the inline profile as HTML here")
    args = parser.parse_args(argv)
    measure(args.submissions, args.lines, args.html, args.commands)
    return 0


if __name__ == "__main__":
    sys.exit(main())

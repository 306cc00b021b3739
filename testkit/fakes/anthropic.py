"""A local fake of Anthropic's Messages API speaking real HTTP and SSE, for tests and benchmarks.

The SDK is pointed at it with `base_url`, so its own HTTP client, retry loop and stream parser
run unchanged. Each request takes the next scripted reply from a queue:

    with FakeAnthropic() as fake:
        fake.enqueue_error(529)                                # overloaded; the SDK retries
        reply = fake.enqueue_sequence(sample_sequence(), tokens_per_second=80)
        writer = Writer(api_key="sk-ant-test", base_url=fake.base_url)
        ...
        fake.requests[-1].body["system"]                       # what the SDK sent
        reply.finished.is_set()                                # has the server sent message_stop?

A queue that runs dry answers with `fake.default_reply` when set, else with a loud 500 that the
SDK does not retry, so a test that forgot to script a reply fails at once.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Real API error types by status, as documented at https://docs.claude.com/en/api/errors.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}
# Statuses the SDK retries; the fake tells it to wait only briefly so tests stay fast.
RETRYABLE = frozenset({408, 409, 429}) | frozenset(range(500, 600))
# The writer's pacing convention: about four characters of JSON per output token.
CHARS_PER_TOKEN = 4
_ids = itertools.count(1)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON body, or None
    received_at: float  # time.perf_counter()


@dataclass(frozen=True)
class FakeUsage:
    """The token counts the fake reports; output defaults to the tool input's length / 4."""

    input_tokens: int = 1500
    output_tokens: int | None = None
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass
class ErrorReply:
    """An HTTP error with the API's JSON error body, e.g. 529 overloaded or 401 bad key."""

    status: int
    error_type: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, request_id: str) -> dict[str, Any]:
        error_type = self.error_type or ERROR_TYPES.get(self.status, "api_error")
        message = self.message or ERROR_MESSAGES.get(error_type, "Error")
        return {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }


@dataclass
class SequenceReply:
    """A streamed tool-use answer whose input JSON is sent as input_json_delta chunks.

    The timestamps (time.perf_counter()) and events are filled in while it is served, so a test
    or a benchmark can compare them with what the client saw.
    """

    tool_input: str
    tokens_per_second: float | None = None  # None: as fast as possible
    chunk_chars: int = 12  # characters per input_json_delta
    pause_before_end: float = 0.0  # seconds between the last delta and content_block_stop
    error_after: int | None = None  # cut the JSON off here and send an error event
    error_type: str = "overloaded_error"
    drop_connection: bool = False  # at error_after, hang up instead of sending the error event
    usage: FakeUsage = field(default_factory=FakeUsage)
    stop_reason: str = "tool_use"
    as_text: bool = False  # answer in a text block instead of calling the tool
    first_token_delay: float = 0.0  # seconds between message_start and the first delta

    started: threading.Event = field(default_factory=threading.Event, repr=False)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)
    started_at: float | None = None  # message_start sent
    first_token_at: float | None = None  # first delta sent
    last_token_at: float | None = None  # last delta sent
    finished_at: float | None = None  # message_stop (or the error event) sent
    disconnected: bool = False  # the client went away mid-stream
    # (characters of the tool input sent so far, time.monotonic()) after each delta, so a test
    # or a benchmark can tell when a given part of the answer left the server.
    sent: list[tuple[int, float]] = field(default_factory=list, repr=False)

    def sent_by(self, offset: int) -> float | None:
        """When the character at `offset` of the tool input had been sent (monotonic clock)."""
        return next((at for end, at in self.sent if end > offset), None)

    @property
    def output_tokens(self) -> int:
        if self.usage.output_tokens is not None:
            return self.usage.output_tokens
        return max(1, len(self.tool_input) // CHARS_PER_TOKEN)

    @property
    def duration(self) -> float | None:
        """Seconds from message_start to message_stop, once served."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


Reply = ErrorReply | SequenceReply


def sequence_json(emails: list[dict[str, Any]]) -> tuple[str, list[int]]:
    """The tool input for `emails`, and the offset where each email's object starts."""
    text = '{"emails": ['
    starts = []
    for position, email in enumerate(emails):
        if position:
            text += ", "
        starts.append(len(text))
        text += json.dumps(email)
    return text + "]}", starts


# What the Messages API refuses before answering, by model.
# Claude Sonnet 5.5: "Forced tool use returns an error", and thinking cannot be disabled
# ("thinking: {"type": "disabled"}" answers 400; its lowest setting is between_tools).
# https://platform.claude.com/docs/en/models/sonnet-5-5/whats-new-sonnet-5-5
NO_FORCED_TOOL_USE = frozenset({"claude-sonnet-5-5"})


def refusal_of(body: dict[str, Any]) -> str | None:
    """The 400 message the API gives this request, or None."""
    model = body.get("model")
    forced = (body.get("tool_choice") or {}).get("type") in ("tool", "any")
    if model in NO_FORCED_TOOL_USE and forced:
        return f"tool_choice forcing tool use is not supported with {model}; use auto"
    if model in NO_FORCED_TOOL_USE and (body.get("thinking") or {}).get("type") == "disabled":
        return f"thinking type 'disabled' is not supported with {model}; use between_tools"
    return None


class FakeAnthropic:
    """A Messages API on 127.0.0.1 (a free port), answering from a queue of scripted replies."""

    def __init__(self, *, retry_after_ms: int = 10):
        self.retry_after_ms = retry_after_ms
        self.requests: list[RecordedRequest] = []  # every request received, in order
        # Served whenever the queue is empty, e.g. for a flow test that runs many generations;
        # a shared SequenceReply's timestamps then describe its latest serving.
        self.default_reply: Reply | None = None
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        # A short poll interval keeps shutdown (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-anthropic",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes any paced stream so its thread ends
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Scripting

    def enqueue(self, reply: Reply) -> Reply:
        with self._lock:
            self._replies.append(reply)
        return reply

    def enqueue_error(
        self,
        status: int,
        error_type: str | None = None,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> ErrorReply:
        """Answer the next `times` requests with this HTTP error."""
        reply = ErrorReply(status, error_type, message, dict(headers or {}))
        for _ in range(times):
            self.enqueue(reply)
        return reply

    def enqueue_sequence(
        self,
        emails: list[dict[str, Any]] | None = None,
        *,
        error_after_emails: int | None = None,
        **stream_options: Any,
    ) -> SequenceReply:
        """Stream `emails` (default: `sample_sequence()`) as the tool's input.

        With `error_after_emails=N` the JSON stops just after email N+1 has begun (so N emails
        are complete) and an `event: error` follows (or, with drop_connection=True, the server
        hangs up). Other options are `SequenceReply` fields: tokens_per_second, chunk_chars,
        pause_before_end, error_type, drop_connection, usage, stop_reason.
        """
        emails = sample_sequence() if emails is None else emails
        text, starts = sequence_json(emails)
        error_after = None
        if error_after_emails is not None and error_after_emails < len(starts):
            error_after = starts[error_after_emails] + 1  # just after the next email's "{"
        elif error_after_emails is not None:
            error_after = len(text)
        reply = SequenceReply(text, error_after=error_after, **stream_options)
        self.enqueue(reply)
        return reply

    @staticmethod
    def opening_reply(
        opening: str = "Your team's move to weekly releases caught my eye.",
        subject_a: str = "Weekly releases",
        too_little: bool = False,
        **stream_options: Any,
    ) -> SequenceReply:
        """One lead's answer to the `write_opening` tool of a lead list (not queued: set it as
        `default_reply` to answer every lead of a list alike)."""
        answer = {"opening": opening, "subject_a": subject_a, "too_little": too_little}
        return SequenceReply(json.dumps(answer), **stream_options)

    def enqueue_text(self, text: str, **stream_options: Any) -> SequenceReply:
        """Answer in words (a text block), not with the tool: what a model may do when the
        request does not force the tool."""
        reply = SequenceReply(text, as_text=True, stop_reason="end_turn", **stream_options)
        self.enqueue(reply)
        return reply

    def enqueue_tool_input(self, text: str, **stream_options: Any) -> SequenceReply:
        """Stream `text` verbatim as the tool's input JSON, valid or not."""
        reply = SequenceReply(text, **stream_options)
        self.enqueue(reply)
        return reply

    @property
    def pending(self) -> int:
        """Scripted replies not yet served."""
        with self._lock:
            return len(self._replies)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        if self.default_reply is not None:
            return self.default_reply
        return ErrorReply(
            500,
            "api_error",
            "FakeAnthropic: no reply scripted for this request",
            {"x-should-retry": "false"},
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # The API takes every connection; socketserver's default backlog of 5 would drop a lead
    # list's burst of them, and a dropped SYN costs the client a one-second retransmit.
    request_queue_size = 256
    fake: FakeAnthropic

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (an abandoned stream, a closed pool) is normal here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._record_and_reply()

    def do_POST(self) -> None:
        self._record_and_reply()

    def _record_and_reply(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            received_at=time.perf_counter(),
        )
        fake._record(request)
        if self.command != "POST" or self.path.split("?")[0] != "/v1/messages":
            self._send_error(ErrorReply(404, "not_found_error", f"FakeAnthropic: no {self.path}"))
            return
        refused = refusal_of(body) if isinstance(body, dict) else None
        if refused is not None:
            self._send_error(ErrorReply(400, "invalid_request_error", refused))
            return
        reply = fake._next_reply()
        if isinstance(reply, ErrorReply):
            self._send_error(reply)
        elif not (isinstance(body, dict) and body.get("stream") is True):
            self._send_error(ErrorReply(400, message="FakeAnthropic only streams: set stream=true"))
        else:
            self._stream(reply, body)

    def _send_error(self, reply: ErrorReply) -> None:
        request_id = f"req_fake_{next(_ids)}"
        payload = json.dumps(reply.body(request_id)).encode()
        headers = {"content-type": "application/json", "request-id": request_id}
        if reply.status in RETRYABLE:
            headers["retry-after-ms"] = str(self.server.fake.retry_after_ms)
        headers.update(reply.headers)
        # http.server knows no reason phrase for the API's own 529.
        self.send_response(reply.status, "Overloaded" if reply.status == 529 else None)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, reply: SequenceReply, body: dict[str, Any]) -> None:
        closing = self.server.fake._closing
        tools = body.get("tools") or [{}]
        tool_name = (body.get("tool_choice") or {}).get("name") or tools[0].get("name", "tool")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", f"req_fake_{next(_ids)}")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        usage = reply.usage
        try:
            reply.started_at = time.perf_counter()
            reply.started.set()
            self._event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": f"msg_fake_{next(_ids)}",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model", "claude-fake"),
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": usage.input_tokens,
                            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                            "cache_read_input_tokens": usage.cache_read_input_tokens,
                            "output_tokens": 1,
                        },
                    },
                },
            )
            self._event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""}
                    if reply.as_text
                    else {
                        "type": "tool_use",
                        "id": f"toolu_fake_{next(_ids)}",
                        "name": tool_name,
                        "input": {},
                    },
                },
            )
            self._event("ping", {"type": "ping"})
            if reply.first_token_delay and closing.wait(reply.first_token_delay):
                return
            # Like the real API, the first delta is empty.
            self._delta("", as_text=reply.as_text)
            text = reply.tool_input[: reply.error_after]  # [:None] is all of it
            began = time.perf_counter()
            for offset in range(0, len(text), reply.chunk_chars):
                if reply.tokens_per_second:
                    due = began + offset / CHARS_PER_TOKEN / reply.tokens_per_second
                    if closing.wait(max(0.0, due - time.perf_counter())):
                        return
                self._delta(text[offset : offset + reply.chunk_chars], as_text=reply.as_text)
                reply.sent.append((min(offset + reply.chunk_chars, len(text)), time.monotonic()))
                now = time.perf_counter()
                reply.first_token_at = reply.first_token_at or now
                reply.last_token_at = now
            if reply.error_after is not None and reply.drop_connection:
                # No error event and no terminating chunk: the connection just goes away.
                self.close_connection = True
                reply.finished_at = time.perf_counter()
                return
            if reply.error_after is not None:
                self._event(
                    "error",
                    {
                        "type": "error",
                        "error": {
                            "type": reply.error_type,
                            "message": ERROR_MESSAGES.get(reply.error_type, "Error"),
                        },
                    },
                )
            else:
                if reply.pause_before_end and closing.wait(reply.pause_before_end):
                    return
                self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
                self._event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                        "usage": {"output_tokens": reply.output_tokens},
                    },
                )
                self._event("message_stop", {"type": "message_stop"})
            reply.finished_at = time.perf_counter()
            self._chunk(b"")  # the terminating chunk ends the response
        except (BrokenPipeError, ConnectionResetError):
            reply.disconnected = True
            self.close_connection = True
        finally:
            reply.finished.set()

    def _delta(self, piece: str, *, as_text: bool = False) -> None:
        delta = (
            {"type": "text_delta", "text": piece}
            if as_text
            else {"type": "input_json_delta", "partial_json": piece}
        )
        self._event(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )

    def _event(self, name: str, data: dict[str, Any]) -> None:
        self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def sample_sequence() -> list[dict[str, Any]]:
    """Seven valid emails: days 1, 3, 5, 8, 12, 16, 21, bodies of 60-110 words, subjects of at
    most 50 characters, only the [FirstName] and [Company] placeholders, one ask each."""
    return [
        {
            "day": 1,
            "subject_a": "Re-keying orders at [Company]",
            "subject_b": "A question about dispatch at [Company]",
            "body": (
                "Hi [FirstName],\n\nWhen I talk to operations leads at logistics companies, the "
                "same problem keeps coming up: dispatchers re-key every order into three "
                "different systems before a truck can leave. It costs hours each day and "
                "invites mistakes that customers notice.\n\nRouteSync connects order intake to "
                "dispatch in one place, so an order is entered once and flows straight to the "
                "people who plan the routes.\n\nIs re-keying something your team at [Company] "
                "is dealing with right now?"
            ),
        },
        {
            "day": 3,
            "subject_a": "Order handling, 40% faster",
            "subject_b": "What your dispatchers could do instead",
            "body": (
                "Hi [FirstName],\n\nA quick follow-up on my last note. Teams that stop re-keying "
                "orders get time back fast: RouteSync cuts order handling time by 40%, because "
                "each order is captured once and reaches dispatch without copy and paste.\n\n"
                "For a Head of Operations that usually means fewer late departures, fewer "
                "corrections after the fact, and dispatchers who spend their day planning "
                "routes instead of typing.\n\nWould a 15-minute call next week be useful to see "
                "whether that applies to [Company]?"
            ),
        },
        {
            "day": 5,
            "subject_a": "How RouteSync fits your current tools",
            "subject_b": "One place from order to dispatch",
            "body": (
                "Hi [FirstName],\n\nYou might be wondering how this works without replacing the "
                "systems your team already uses. RouteSync sits between order intake and "
                "dispatch: it reads new orders as they arrive, checks them for missing details, "
                "and hands them to dispatch in the format your planners expect.\n\nNothing is "
                "typed twice, and your existing systems stay where they are.\n\nIf it helps, I "
                "can walk you through the setup for a team like yours in a 15-minute call next "
                "week. Does that sound reasonable?"
            ),
        },
        {
            "day": 8,
            "subject_a": "Teams like yours at [Company]",
            "subject_b": "What changed for other dispatch teams",
            "body": (
                "Hi [FirstName],\n\nThe teams that get the most from RouteSync look a lot like "
                "yours: a busy dispatch desk, orders arriving by email, phone and portal, and "
                "three systems that all need the same details.\n\nOnce orders flow from intake "
                "to dispatch in one place, the desk stops chasing typos and starts planning "
                "earlier in the day. That is where the 40% reduction in handling time comes "
                "from.\n\nWould you be open to a 15-minute call next week to compare notes?"
            ),
        },
        {
            "day": 12,
            "subject_a": "Worried about another tool to learn?",
            "subject_b": "Rolling out without disrupting dispatch",
            "body": (
                "Hi [FirstName],\n\nA fair concern with any new tool is the disruption: "
                "training, migration, and a few weeks where everything is slower.\n\nRouteSync "
                "is built to avoid that. Your dispatchers keep working in the screens they know, "
                "and orders simply stop needing to be typed again. Most of the setup happens on "
                "our side, with your team involved for a short review.\n\nIf that concern is "
                "what is holding you back, a 15-minute call next week is the quickest way to "
                "check. Shall we find a time?"
            ),
        },
        {
            "day": 16,
            "subject_a": "Still worth a look for [Company]?",
            "subject_b": "Quick nudge on order re-keying",
            "body": (
                "Hi [FirstName],\n\nI know your inbox is busy, so I will keep this short.\n\nIf "
                "dispatchers at [Company] still re-key orders into several systems, RouteSync "
                "can take that work off their plate and cut order handling time by 40%, without "
                "changing the tools they already know.\n\nA 15-minute call next week would be "
                "enough to see whether it fits your team. Would Tuesday or Thursday work better "
                "for you?"
            ),
        },
        {
            "day": 21,
            "subject_a": "Should I close the loop?",
            "subject_b": "Last note from me for now",
            "body": (
                "Hi [FirstName],\n\nI have not heard back, so I will assume the timing is not "
                "right and stop writing after this note.\n\nIf re-keying orders becomes a "
                "priority for [Company] later, RouteSync will still connect order intake to "
                "dispatch in one place and give your team those hours back.\n\nIf you would "
                "like to talk before then, just reply to this email and we can set up a "
                "15-minute call. Either way, thank you for reading, and good luck with the busy "
                "season ahead."
            ),
        },
    ]

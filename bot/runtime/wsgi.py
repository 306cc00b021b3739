"""The WSGI app `coldcopy serve` runs: health, readiness, metrics and Stripe's webhook beside
Slack's requests, which reach Bolt through a guard.

The guards are plain WSGI (a size cap and header checks in front of Bolt, a readiness check with
a deadline), so they work the same under any WSGI server.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request import BoltRequest

from bot.core.metrics import render
from bot.slack.admin_notices import notify_admins
from bot.slack.app import build_app
from bot.slack.constants import RECEIVED_AT
from bot.slack.services import Services
from storage.db import make_engine, ping

# Slack's and Stripe's payloads are a few kilobytes; anything past this is refused unread.
MAX_REQUEST_BYTES = 1_000_000
MAX_WEBHOOK_BYTES = MAX_REQUEST_BYTES
# /readyz answers within this, whatever the database does (orchestrators time out at 1-2 s).
READY_DEADLINE_SECONDS = 1.5
# Probes arriving this soon after a finished check share its result.
READY_FRESH_SECONDS = 1.0
# Slack's timestamps are Unix seconds; anything else is not from Slack.
SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")
UNAUTHORIZED_BODY = b'{"error":"invalid request"}'


def _respond(start_response, status: int, body: bytes, content_type: str) -> Iterable[bytes]:
    reason = {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        413: "Payload Too Large",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }.get(status, "")
    start_response(
        f"{status} {reason}".strip(),
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


def read_capped(environ: dict, limit: int) -> bytes | None:
    """The request body, read only when it fits in `limit` bytes: None means too large.

    A declared Content-Length over the limit is refused before a byte is read; a body of
    unknown length (chunked) is read at most `limit` + 1 bytes."""
    declared = environ.get("CONTENT_LENGTH")
    stream = environ.get("wsgi.input") or io.BytesIO()
    if declared:
        try:
            length = int(declared)
        except ValueError:
            return None
        if length > limit:
            return None
        return stream.read(length) if length > 0 else b""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


class SlackRequestGuard:
    """In front of Bolt's adapter: refuses what Slack never sends before Bolt reads or logs it.

    Bolt reads the whole body before checking the signature and logs unsigned bodies in full;
    here a body over `limit` is answered 413 unread, a body that is not UTF-8 400, and a
    timestamp that is not Unix seconds 401 (Bolt's verifier would raise on it)."""

    def __init__(self, bolt: Callable, limit: int = MAX_REQUEST_BYTES):
        self.bolt = bolt
        self.limit = limit

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.bolt(environ, start_response)
        body = read_capped(environ, self.limit)
        if body is None:
            return _respond(start_response, 413, b"payload too large", "text/plain")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return _respond(start_response, 400, b"body is not UTF-8", "text/plain")
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        if timestamp is not None and not SLACK_TIMESTAMP.fullmatch(timestamp.strip()):
            return _respond(start_response, 401, UNAUTHORIZED_BODY, "application/json")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.bolt(environ, start_response)


class ReadinessCheck:
    """One readiness check at a time, on its own thread, with a deadline.

    Probes share the check in flight (or one that just finished), so a silent database
    holds one thread, not every request thread; a probe waits at most the deadline and a
    probe arriving after a stuck check's deadline answers at once."""

    def __init__(
        self,
        check: Callable[[], dict[str, str]],
        deadline: float = READY_DEADLINE_SECONDS,
        fresh_for: float = READY_FRESH_SECONDS,
    ):
        self.check = check
        self.deadline = deadline
        self.fresh_for = fresh_for
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness")
        self._running: Future | None = None
        self._started = 0.0
        self._last: tuple[float, dict[str, str]] | None = None

    def __call__(self) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last[0] < self.fresh_for:
                return self._last[1]
            if self._running is None:
                self._running = self._pool.submit(self._run)
                self._started = now
            running, started = self._running, self._started
        try:
            return running.result(timeout=max(0.0, self.deadline - (now - started)))
        except FutureTimeout:
            return {"database": f"no answer within {self.deadline:g} s"}

    def _run(self) -> dict[str, str]:
        try:
            result = self.check()
        except Exception as exc:  # a check must always produce an answer
            result = {"readiness": f"check failed: {type(exc).__name__}"}
        with self._lock:
            self._last = (time.monotonic(), result)
            self._running = None
        return result


class ColdCopyWSGI:
    """Routes our own endpoints and hands everything else to Bolt's WSGI adapter."""

    def __init__(self, services: Services, slack: Callable):
        self.services = services
        self.slack = SlackRequestGuard(slack)
        self.ready = ReadinessCheck(self._check_services)
        self._probe_engine = None
        self._probe_for = None

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and path == "/healthz":
            return _respond(start_response, 200, b'{"status":"ok"}', "application/json")
        if method == "GET" and path == "/readyz":
            status, body = self.readiness()
            return _respond(start_response, status, json.dumps(body).encode(), "application/json")
        if method == "GET" and path == "/metrics":
            return _respond(start_response, 200, render(), "text/plain; version=0.0.4")
        if method == "POST" and path == "/stripe/webhook":
            return self.stripe_webhook(environ, start_response)
        if method == "GET" and path in ("/billing/success", "/billing/cancelled"):
            text = (
                "Thanks! ColdCopy Pro is active. You can close this tab and go back to Slack."
                if path.endswith("success")
                else "Checkout was cancelled; nothing was charged. You can close this tab."
            )
            return _respond(start_response, 200, text.encode(), "text/plain; charset=utf-8")
        return self.slack(environ, start_response)

    def readiness(self) -> tuple[int, dict]:
        checks = self.ready()
        # Redis is reported, not required: without it rate limits and de-duplication fail
        # open and everything else works, so the replica must stay in the load balancer.
        ready = checks.get("database") == "ok"
        return (200 if ready else 503), {"ready": ready, "checks": checks}

    def _check_services(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            ping(self._database_probe())
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        if self.services.redis is not None:
            # Reported, but not required: without Redis, rate limits and de-duplication fail
            # open and everything else works, so the replica must stay in the load balancer.
            checks["redis"] = "ok" if self.services.limiter.ping() else "unreachable"
        return checks

    def _database_probe(self):
        """An unpooled engine on the app's database: each check opens a new connection
        (bounded by the connect timeout) instead of waiting on a pooled one that hangs."""
        if self._probe_for is not self.services.engine:
            url = self.services.engine.url.render_as_string(hide_password=False)
            self._probe_engine = make_engine(url, pooled=False)
            self._probe_for = self.services.engine
        return self._probe_engine

    def stripe_webhook(self, environ: dict, start_response) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_WEBHOOK_BYTES:
            return _respond(start_response, 413, b"payload too large", "text/plain")
        payload = environ["wsgi.input"].read(length) if length else b""
        outcome = self.services.billing.handle_webhook(
            payload, environ.get("HTTP_STRIPE_SIGNATURE")
        )
        if outcome.notify_admins and outcome.team_id:
            threading.Thread(
                target=notify_admins,
                args=(self.services, outcome.team_id, outcome.notify_admins),
                daemon=True,
            ).start()
        return _respond(
            start_response,
            outcome.status,
            json.dumps({"message": outcome.message}).encode(),
            "application/json",
        )


class StampedSlackHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, noting in each request's context when it reached this process:
    work that must finish within a deadline of Slack's (a trigger's 3 s) counts from there."""

    def dispatch(self, request) -> object:
        received = time.monotonic()
        return self.app.dispatch(
            BoltRequest(
                body=request.get_body(),
                query=request.query_string,
                headers=request.get_headers(),
                context={RECEIVED_AT: received},
            )
        )


def make_wsgi_app(services: Services, app: App | None = None) -> ColdCopyWSGI:
    """The whole WSGI app around `app` (a Bolt app built from `services` when not given)."""
    app = app or build_app(services)
    return ColdCopyWSGI(services, StampedSlackHandler(app))

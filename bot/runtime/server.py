"""`coldcopy serve` and `coldcopy socket`: the WSGI routes around the Bolt app (health,
readiness, metrics and Stripe's webhook beside Slack's), and what one serving process starts
and stops. bot/runtime/web.py runs these processes under gunicorn.

The guards here are plain WSGI (a size cap and header checks in front of Bolt, a readiness
check with a deadline), so they work the same under any WSGI server.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request import BoltRequest
from slack_sdk.errors import SlackApiError

from bot.runtime.config import Settings, StartupError, cannot_listen
from bot.runtime.jobs import Dispatcher, Sweeper, resume_local_orphans, start_dispatcher
from bot.runtime.logs import configure_logging
from bot.runtime.metrics import count_slack_error, render
from bot.runtime.wiring import Runtime, build_runtime
from bot.slack.app import build_app, verify_slack_token
from bot.slack.constants import RECEIVED_AT
from storage.db import UNAVAILABLE_ERRORS, make_engine, ping, transaction
from storage.encryption import TokenCipher, seal_plaintext_tokens
from storage.migrate import pending, upgrade

log = logging.getLogger(__name__)

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

    def __init__(self, rt: Runtime, slack: Callable):
        self.rt = rt
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
        if self.rt.redis is not None:
            # Reported, but not required: without Redis, rate limits and de-duplication fail
            # open and everything else works, so the replica must stay in the load balancer.
            checks["redis"] = "ok" if self.rt.limiter.ping() else "unreachable"
        return checks

    def _database_probe(self):
        """An unpooled engine on the app's database: each check opens a new connection
        (bounded by the connect timeout) instead of waiting on a pooled one that hangs."""
        if self._probe_for is not self.rt.engine:
            url = self.rt.engine.url.render_as_string(hide_password=False)
            self._probe_engine = make_engine(url, pooled=False)
            self._probe_for = self.rt.engine
        return self._probe_engine

    def stripe_webhook(self, environ: dict, start_response) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_WEBHOOK_BYTES:
            return _respond(start_response, 413, b"payload too large", "text/plain")
        payload = environ["wsgi.input"].read(length) if length else b""
        outcome = self.rt.billing.handle_webhook(payload, environ.get("HTTP_STRIPE_SIGNATURE"))
        if outcome.notify_admins and outcome.team_id:
            threading.Thread(
                target=notify_admins,
                args=(self.rt, outcome.team_id, outcome.notify_admins),
                daemon=True,
            ).start()
        return _respond(
            start_response,
            outcome.status,
            json.dumps({"message": outcome.message}).encode(),
            "application/json",
        )


def notify_admins(rt: Runtime, team_id: str, text: str) -> None:
    """DM every admin and owner of the workspace (billing problems are theirs to fix)."""
    try:
        client = rt.slack_client(team_id)
        cursor = None
        while True:
            page = client.users_list(cursor=cursor, limit=200)
            for member in page.get("members", []):
                if member.get("deleted") or member.get("is_bot"):
                    continue
                if member.get("is_admin") or member.get("is_owner"):
                    dm = client.conversations_open(users=member["id"])["channel"]["id"]
                    client.chat_postMessage(channel=dm, text=text)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    except SlackApiError as exc:
        count_slack_error("users.list", exc)
        log.error("could not tell the admins about billing", extra={"team_id": team_id})
    except LookupError:
        log.error("billing notice for a workspace without an install", extra={"team_id": team_id})


def database_problem(exc: Exception, url: str) -> str:
    """One line saying what is wrong with the database at start-up, and what to do."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if parsed.get_backend_name() == "sqlite":
        return (
            f"cannot open the SQLite database {parsed.database!r} ({reason}): check that its "
            "directory exists and is writable, or set DATABASE_URL"
        )
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"cannot reach the database at {where} ({reason}): start PostgreSQL or fix DATABASE_URL"


def prepare_database(settings: Settings, engine) -> None:
    """Migrations (applied here on SQLite; PostgreSQL needs `coldcopy migrate`) and tokens left
    in plain text encrypted; any failure is a StartupError naming the problem."""
    cipher = TokenCipher(settings.encryption_key) if settings.encryption_key else None
    try:
        if engine.dialect.name == "sqlite":
            upgrade(engine, cipher)
            return
        if pending(engine):
            raise StartupError("the database has pending migrations: run `coldcopy migrate` first")
        if cipher is not None:
            with transaction(engine) as conn:
                seal_plaintext_tokens(conn, cipher)
    except UNAVAILABLE_ERRORS as exc:
        raise StartupError(database_problem(exc, settings.database_url)) from None


def web_pool_size(settings: Settings) -> int:
    """Database connections per serve process. A request (or an embedded generation) holds
    one only for a short transaction; in the scale-out mode, replicas x worker processes x
    this must stay under PostgreSQL's max_connections (100 by default) with the workers."""
    return min(settings.web_threads, 6) if settings.uses_job_queue else settings.web_threads


def prepare(settings: Settings) -> tuple[Runtime, Dispatcher]:
    """Logging, the database, the Slack token, the runtime and its dispatcher; in the
    embedded mode, the generations a previous run of this process left unfinished are
    resumed at once."""
    configure_logging(settings.log_level)
    engine = make_engine(settings.database_url, pool_size=web_pool_size(settings))
    try:
        prepare_database(settings, engine)
        if not settings.oauth_enabled:
            verify_slack_token(settings)
    except BaseException:
        engine.dispose()
        raise
    rt = build_runtime(settings, engine=engine)
    dispatcher = start_dispatcher(rt)
    if not settings.uses_job_queue:
        resumed = resume_local_orphans(rt, dispatcher)
        if resumed:
            log.info("resuming %d generations left unfinished", resumed)
    return rt, dispatcher


def check_before_serving(settings: Settings) -> None:
    """Once, before any process serves (in gunicorn's master): the database (migrations,
    tokens sealed) and the Slack token, each failure a StartupError naming the problem."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        prepare_database(settings, engine)
        if not settings.oauth_enabled:
            verify_slack_token(settings)
    finally:
        engine.dispose()


def start_runtime(settings: Settings) -> tuple[Runtime, Dispatcher]:
    """The runtime and its dispatcher for this process; in the embedded mode, the generations
    a previous run of this process left unfinished are resumed at once."""
    engine = make_engine(settings.database_url, pool_size=web_pool_size(settings))
    rt = build_runtime(settings, engine=engine)
    try:
        dispatcher = start_dispatcher(rt)
        if not settings.uses_job_queue:
            resumed = resume_local_orphans(rt, dispatcher)
            if resumed:
                log.info("resuming %d generations left unfinished", resumed)
    except BaseException:
        rt.close()
        raise
    return rt, dispatcher


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


def make_wsgi_app(rt: Runtime, dispatcher: Dispatcher, **app_options) -> ColdCopyWSGI:
    return ColdCopyWSGI(rt, StampedSlackHandler(build_app(rt, dispatcher, **app_options)))


@dataclass
class ServingProcess:
    """What one process serving Slack runs, from its start to its graceful stop."""

    rt: Runtime
    dispatcher: Dispatcher
    wsgi: ColdCopyWSGI
    sweeper: Sweeper

    def stop(self) -> None:
        """Stop taking new work; let in-flight generations finish up to the grace, hand the
        rest back for resumption; close the pools."""
        self.sweeper.stop()
        self.dispatcher.shutdown(grace=self.rt.settings.shutdown_grace)
        self.rt.close()


def start_serving_process(settings: Settings) -> ServingProcess:
    """Everything one serving process owns, started inside that process: the engine's and
    Redis's connection pools, the job dispatcher, the sweeper and the Bolt app. None of them
    survives a fork, so under gunicorn this runs in each worker after the fork (never in the
    master); it is the one place per-process start-up belongs."""
    rt, dispatcher = start_runtime(settings)
    try:
        # The token was verified once, before the fork (check_before_serving).
        wsgi = make_wsgi_app(rt, dispatcher, token_verification=False)
    except BaseException:
        dispatcher.shutdown(grace=0)
        rt.close()
        raise
    return ServingProcess(rt, dispatcher, wsgi, Sweeper(rt, dispatcher).start())


def make_server(app, *, host: str, port: int, threads: int):
    """A waitress server (the tests' in-process one) bound to host:port; a port it cannot take
    is a StartupError.

    waitress buffers a body before calling the app, so its own cap refuses an oversized one
    from its Content-Length (or while de-chunking) before reading it."""
    from waitress.server import create_server

    try:
        return create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="coldcopy",
            max_request_body_size=MAX_REQUEST_BYTES + 1,
        )
    except OSError as exc:
        raise cannot_listen(host, port, exc) from None


def close_server(server) -> None:
    """Stop a waitress server from any thread: close its sockets inside its own loop."""
    from waitress import wasyncore

    with contextlib.suppress(OSError):  # already closed
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))
    server.task_dispatcher.shutdown()


def run_socket_mode(settings: Settings) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    rt, dispatcher = prepare(settings)
    sweeper = Sweeper(rt, dispatcher).start()
    handler = SocketModeHandler(build_app(rt, dispatcher), settings.slack_app_token)

    def stop(signum, _frame) -> None:
        log.info("shutting down (signal %d): finishing in-flight generations", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        handler.start()
    finally:
        with contextlib.suppress(Exception):
            handler.close()
        sweeper.stop()
        dispatcher.shutdown(grace=settings.shutdown_grace)
        rt.close()
    return 0

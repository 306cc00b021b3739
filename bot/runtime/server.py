"""`coldcopy serve` and `coldcopy socket`: the WSGI routes around the Bolt app, served by
waitress (a production WSGI server), plus health, readiness, metrics and Stripe's webhook."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.errors import SlackApiError

from bot.runtime.config import Settings
from bot.runtime.jobs import Dispatcher, Sweeper, resume_local_orphans, start_dispatcher
from bot.runtime.logs import configure_logging
from bot.runtime.metrics import count_slack_error, render
from bot.runtime.wiring import Runtime, build_runtime
from bot.slack.app import build_app
from storage.db import make_engine, ping
from storage.migrate import pending, upgrade

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1_000_000


def _respond(start_response, status: int, body: bytes, content_type: str) -> Iterable[bytes]:
    reason = {
        200: "OK",
        400: "Bad Request",
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


class ColdCopyWSGI:
    """Routes our own endpoints and hands everything else to Bolt's WSGI adapter."""

    def __init__(self, rt: Runtime, slack: Callable):
        self.rt = rt
        self.slack = slack

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
        checks: dict[str, str] = {}
        try:
            ping(self.rt.engine)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        if self.rt.redis is not None:
            # Reported, but not required: without Redis, rate limits and de-duplication fail
            # open and everything else works, so the replica must stay in the load balancer.
            checks["redis"] = "ok" if self.rt.limiter.ping() else "unreachable"
        ready = checks["database"] == "ok"
        return (200 if ready else 503), {"ready": ready, "checks": checks}

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


def prepare(settings: Settings) -> tuple[Runtime, Dispatcher]:
    """Logging, migrations (applied here on SQLite; PostgreSQL needs `coldcopy migrate`), the
    runtime and its dispatcher; in the embedded mode, the generations a previous run of this
    process left unfinished are resumed at once."""
    configure_logging(settings.log_level)
    # Requests and generations hold a connection only for one short transaction at a time.
    engine = make_engine(settings.database_url, pool_size=settings.web_threads)
    if engine.dialect.name == "sqlite":
        upgrade(engine)
    elif pending(engine):
        raise SystemExit("The database has pending migrations: run `coldcopy migrate` first.")
    rt = build_runtime(settings, engine=engine)
    dispatcher = start_dispatcher(rt)
    if not settings.uses_job_queue:
        resumed = resume_local_orphans(rt, dispatcher)
        if resumed:
            log.info("resuming %d generations left unfinished", resumed)
    return rt, dispatcher


def make_wsgi_app(rt: Runtime, dispatcher: Dispatcher, **app_options) -> ColdCopyWSGI:
    return ColdCopyWSGI(rt, SlackRequestHandler(build_app(rt, dispatcher, **app_options)))


def close_server(server) -> None:
    """Stop a waitress server from any thread: close its sockets inside its own loop."""
    from waitress import wasyncore

    with contextlib.suppress(OSError):  # already closed
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))
    server.task_dispatcher.shutdown()


def serve(settings: Settings, host: str, port: int) -> int:
    from waitress.server import create_server

    rt, dispatcher = prepare(settings)
    server = create_server(
        make_wsgi_app(rt, dispatcher),
        host=host,
        port=port,
        threads=settings.web_threads,
        ident="coldcopy",
    )
    sweeper = Sweeper(rt, dispatcher).start()

    def stop(signum, _frame) -> None:
        # waitress leaves its loop on SystemExit and stops taking requests; the finally
        # below lets in-flight generations finish up to a deadline, then hands the rest
        # back to the queue so they resume instead of failing.
        log.info("shutting down (signal %d): finishing in-flight generations", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("coldcopy serve listening on http://%s:%s", host, server.effective_port)
    try:
        server.run()
    finally:
        close_server(server)
        sweeper.stop()
        dispatcher.shutdown(grace=settings.shutdown_grace)
        rt.close()
    return 0


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

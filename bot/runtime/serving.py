"""Starting a process that serves Slack, and stopping it gracefully: the checks made once before
serving (the database, the Slack token), then what each serving process owns (its services,
its dispatcher, its sweeper and its Bolt app), started inside that process."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from sqlalchemy.engine import make_url

from bot.core.dispatch import Dispatcher
from bot.core.settings import Settings, StartupError
from bot.flows.sweeper import Sweeper, resume_local_orphans
from bot.runtime.wiring import build_services, start_dispatcher
from bot.slack.app import build_app, verify_slack_token
from bot.slack.services import Services
from storage.db import UNAVAILABLE_ERRORS, make_engine, reading, transaction
from storage.encryption import TokenCipher, seal_plaintext_tokens, unreadable_tokens
from storage.migrate import pending, upgrade

log = logging.getLogger(__name__)


def database_problem(exc: Exception, url: str) -> str:
    """One line saying what is wrong with the database at start-up, and what to do."""
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


def check_token_keys(settings: Settings, engine) -> None:
    """A StartupError when stored Slack tokens do not decrypt with the configured keys (checked
    on a bounded sample of the newest rows): `serve`, `socket` and `worker` exit 2 at once."""
    cipher = TokenCipher(settings.encryption_key) if settings.encryption_key else None
    try:
        with reading(engine) as conn:
            unreadable = unreadable_tokens(conn, cipher)
    except UNAVAILABLE_ERRORS as exc:
        raise StartupError(database_problem(exc, settings.database_url)) from None
    if unreadable:
        raise StartupError(
            f"stored Slack tokens ({unreadable} of the newest installation rows) do not decrypt "
            "with COLDCOPY_ENCRYPTION_KEY: set it to the key they were encrypted with (a new "
            "key first, the old ones after it, comma-separated)"
        )


def check_before_serving(settings: Settings) -> AuthorizeResult | None:
    """Once, before any process serves (in gunicorn's master, or before Socket Mode connects):
    the database (migrations, tokens sealed) and the Slack token, each failure a StartupError
    naming the problem. Returns the single workspace's bot identity (None with OAuth), which
    every serving process then uses without asking Slack again."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        prepare_database(settings, engine)
        check_token_keys(settings, engine)
        return None if settings.oauth_enabled else verify_slack_token(settings)
    finally:
        engine.dispose()


def web_pool_size(settings: Settings) -> int:
    """Database connections per serve process. A request (or an embedded generation) holds
    one only for a short transaction; in the scale-out mode, replicas x worker processes x
    this must stay under PostgreSQL's max_connections (100 by default) with the workers."""
    return min(settings.web_threads, 6) if settings.uses_job_queue else settings.web_threads


@dataclass
class ServingProcess:
    """What one process serving Slack runs, from its start to its graceful stop."""

    services: Services
    dispatcher: Dispatcher
    sweeper: Sweeper
    app: App

    def stop(self) -> None:
        """Stop taking new work; let in-flight generations finish up to the grace, hand the
        rest back for resumption; close the pools."""
        self.sweeper.stop()
        self.dispatcher.shutdown(grace=self.services.settings.shutdown_grace)
        self.services.close()


def start_serving_process(
    settings: Settings, identity: AuthorizeResult | None = None
) -> ServingProcess:
    """Everything one serving process owns, started inside that process: the engine's and
    Redis's connection pools, the job dispatcher, the sweeper and the Bolt app. None of them
    survives a fork, so under gunicorn this runs in each worker after the fork (never in the
    master); it is the one place per-process start-up belongs. In the embedded mode, the
    generations a previous run of this process left unfinished are resumed at once."""
    engine = make_engine(settings.database_url, pool_size=web_pool_size(settings))
    services = build_services(settings, engine=engine, identity=identity)
    try:
        dispatcher = start_dispatcher(services)
    except BaseException:
        services.close()
        raise
    try:
        if not settings.uses_job_queue:
            resumed = resume_local_orphans(services, dispatcher)
            if resumed:
                log.info("resuming %d generations left unfinished", resumed)
            drafts = services.work.resume_drafts()
            if drafts:
                log.info("resuming %d drafts left unfinished", drafts)
        app = build_app(services)
    except BaseException:
        dispatcher.shutdown(grace=0)
        services.close()
        raise
    return ServingProcess(services, dispatcher, Sweeper(services, dispatcher).start(), app)

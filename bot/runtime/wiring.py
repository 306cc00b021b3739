"""The objects one ColdCopy process runs on, built once from the settings: the services every
listener and use case shares, the use cases themselves, and the dispatcher that runs
generations (this process's pool in the embedded mode, the PostgreSQL job queue otherwise)."""

from __future__ import annotations

from limits import parse_many
from slack_bolt.authorization import AuthorizeResult
from sqlalchemy import Engine

from bot.core.backlog import BoundedPool
from bot.core.clock import SYSTEM_CLOCK, Clock
from bot.core.dispatch import LEAD_LIST, Dispatcher, hand_on
from bot.core.settings import Settings
from bot.domain.billing import Billing
from bot.domain.lead_lists import LeadLists
from bot.domain.limits import Deduplicator, RateLimiter, connect_redis
from bot.domain.submission import Submissions
from bot.flows.pool import InProcessPool
from bot.flows.work import UseCases
from bot.runtime.queue import QueueDispatcher
from bot.slack.budget import SlackBudget
from bot.slack.clients import SlackClients
from bot.slack.form_opener import FormOpener
from bot.slack.installations import WorkspaceInstallationStore
from bot.slack.services import Services
from bot.slack.slack_loop import SlackLoop
from bot.writing.writer import Writer
from storage.db import make_engine
from storage.encryption import TokenCipher
from storage.quota import QuotaPolicy

# Waiting work per thread after the ack of a /coldcopy subcommand (status, settings, upgrade).
BACKLOG_PER_THREAD = 2
# /coldcopy forms one process holds at once, from the ack to views.open's answer: about what
# its CPU opens (~200/s) in the 1.5 s a form has between its command and views.open (see
# VIEWS_OPEN_MARGIN_SECONDS); one more would only be told "busy" later instead of in the ack.
FORMS_AT_ONCE = 256
# Threads for the one database read of each form: it takes a millisecond or so.
FORM_READERS = 4


def build_services(
    settings: Settings, *, engine: Engine | None = None, identity: AuthorizeResult | None = None
) -> Services:
    """Everything but the dispatcher; `start_dispatcher` completes it. `identity`: the single
    workspace's bot as start-up found it (None: asked of Slack at first need)."""
    engine = engine or make_engine(settings.database_url, pool_size=settings.web_threads)
    client = connect_redis(settings.redis_url) if settings.redis_url else None
    installations = (
        WorkspaceInstallationStore(
            client_id=settings.slack_client_id,
            engine=engine,
            cipher=TokenCipher(settings.encryption_key or ""),
        )
        if settings.oauth_enabled
        else None
    )
    services = Services(
        settings=settings,
        engine=engine,
        policy=QuotaPolicy(
            free=settings.free_quota,
            pro=settings.pro_quota,
            free_leads=settings.free_leads,
            pro_leads=settings.pro_leads,
        ),
        limiter=RateLimiter.from_settings(settings, client),
        dedup=Deduplicator.from_settings(settings, client),
        writer=Writer.from_settings(settings),
        billing=Billing.from_settings(settings, engine),
        slack=SlackClients(settings, installations, identity),
        after_ack=after_ack_pool(settings),
        redis=client,
        budget=SlackBudget.on(client),
        cipher=TokenCipher(settings.encryption_key) if settings.encryption_key else None,
    )
    services.feedback_limiter = services.limiter.with_limits(parse_many(settings.feedback_rate))
    services.work = UseCases(services)
    services.forms = FormOpener(
        services,
        SlackLoop(settings.slack_api_url, connections=FORMS_AT_ONCE),
        at_once=FORMS_AT_ONCE,
        readers=FORM_READERS,
    )
    return services


def after_ack_pool(settings: Settings) -> BoundedPool:
    # Mostly waiting on Slack (users.info, views.open for the settings) and the database: more
    # threads than cores. Bolt's lazy listeners queue without bound, hence a pool of our own.
    threads = max(8, settings.web_threads)
    return BoundedPool(threads, threads * BACKLOG_PER_THREAD, name="coldcopy-command")


def start_dispatcher(services: Services, clock: Clock = SYSTEM_CLOCK) -> Dispatcher:
    """The job queue in the scale-out mode, else this process's pool (its leases and
    announcements on `clock`); accepted submissions are handed to it from now on."""
    settings = services.settings
    if settings.uses_job_queue:
        dispatcher: Dispatcher = QueueDispatcher(settings, services.engine)
        services.work.hand_drafts_to(dispatcher.queue.defer_draft)
    else:
        dispatcher = InProcessPool(services, settings.job_threads, clock)
    services.submissions = Submissions(
        engine=services.engine,
        policy=services.policy,
        limiter=services.limiter,
        model=settings.model,
        hand_on=lambda generation_id: hand_on(dispatcher, generation_id),
    )
    services.lead_lists = LeadLists(
        engine=services.engine,
        policy=services.policy.leads,
        limiter=services.limiter,
        hand_on=lambda list_id: hand_on(dispatcher, LEAD_LIST + list_id),
    )
    return dispatcher

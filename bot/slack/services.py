"""What every listener and every use case needs, built once per process (bot/runtime/wiring.py)
and handed to listeners through Bolt's context by one middleware, so a listener is a plain
module-level function that a test can import and call with a context of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from slack_bolt import BoltContext
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.core.backlog import BoundedPool
from bot.core.settings import Settings
from bot.domain.billing import Billing
from bot.domain.lead_lists import LeadLists
from bot.domain.limits import Deduplicator, RateLimiter
from bot.domain.rewrites import RewriteRequest
from bot.domain.submission import Submissions
from bot.slack.admins import AdminDirectory
from bot.slack.budget import SlackBudget
from bot.slack.clients import SlackClients
from bot.slack.membership import Memberships
from bot.slack.permalinks import Permalinks
from bot.writing.writer import Writer
from storage.access import Act, NotYours, load_generation, may
from storage.encryption import TokenCipher
from storage.generations import GenerationRow
from storage.quota import QuotaPolicy

# Where the services sit in each request's Bolt context.
SERVICES = "coldcopy_services"


class Work(Protocol):
    """The use cases a listener starts after its ack; carried out above Slack (bot/flows)."""

    def rewrite(self, client: WebClient, request: RewriteRequest) -> None:
        """Rewrite one email in its thread, telling the user when it cannot."""

    def send_draft(self, draft_id: str) -> None:
        """Create (or resume) a claimed draft in its sending tool, after the ack."""

    def hand_drafts_to(self, defer: Callable[[str], None]) -> None:
        """From now on, draft jobs go to `defer` (the job queue) instead of this process."""

    def resume_drafts(self) -> int:
        """Start again the drafts a dead process abandoned; how many."""

    def close(self) -> None:
        """Take no more work."""


class FormOpening(Protocol):
    """`/coldcopy`'s form, opened after the ack, many at once (bot/slack/form_opener.py)."""

    def try_open(
        self, client: WebClient, context: BoltContext, command: dict, received: float
    ) -> bool:
        """Take the form of `command` (received at time.monotonic() `received`) on, or say
        no at once when this process already holds all the forms it can open in time."""

    def close(self) -> None:
        """Take no more forms; let those in flight finish."""


@dataclass
class Services:
    settings: Settings
    engine: Engine
    policy: QuotaPolicy
    limiter: RateLimiter
    dedup: Deduplicator
    writer: Writer
    billing: Billing
    slack: SlackClients
    # The work behind /coldcopy's subcommands after the ack (status, settings, upgrade), with a
    # bounded backlog; its form has `forms`.
    after_ack: BoundedPool
    redis: redis.Redis | None = None
    # Encrypts the workspaces' keys to the sending tools (None: COLDCOPY_ENCRYPTION_KEY unset,
    # and no tool can be connected).
    cipher: TokenCipher | None = None
    # Slack's per-workspace rate tiers, shared by every process (on Redis when there is one).
    budget: SlackBudget = field(default_factory=SlackBudget)
    # The public channels this process has joined lately.
    memberships: Memberships = field(default_factory=Memberships)
    # Admin flags and locales from users.info, shared by the listeners and the Home tab.
    people: AdminDirectory = field(default_factory=AdminDirectory)
    permalinks: Permalinks = field(default_factory=Permalinks)
    # Feedback votes per user (COLDCOPY_FEEDBACK_RATE), on the same storage as `limiter`.
    feedback_limiter: RateLimiter = field(init=False)
    # Set by the wiring once the use cases above Slack exist (they need these services).
    submissions: Submissions = field(init=False)
    lead_lists: LeadLists = field(init=False)
    work: Work = field(init=False)
    forms: FormOpening = field(init=False)

    def generation(
        self, client: WebClient, context: BoltContext, generation_id: str, act: Act
    ) -> GenerationRow | NotYours | None:
        """The generation the person behind `context` may `act` on, or why not
        (storage/access.py holds the rules)."""
        return load_generation(
            self.engine,
            generation_id,
            team_id=context.team_id,
            user_id=context.user_id,
            act=act,
            is_admin=lambda: self.people.is_admin(client, context.team_id, context.user_id),
            channel_id=context.channel_id,
        )

    def may(self, client: WebClient, context: BoltContext, act: Act) -> bool:
        """Whether the person behind `context` may do a workspace act (billing, settings, the
        workspace's usage): the same table (storage/access.py)."""
        return self.may_in(client, context.team_id, context.user_id, act)

    def may_in(self, client: WebClient, team_id: str, user_id: str, act: Act) -> bool:
        """`may` for a person named outside a request's context (the Home tab, billing)."""
        return may(
            act, is_owner=False, is_admin=lambda: self.people.is_admin(client, team_id, user_id)
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> Services:
        # Bolt deep-copies a request's context for its lazy listeners; the process's services
        # (pools, clients, locks) are shared, never copied.
        return self

    def close(self) -> None:
        self.forms.close()
        self.work.close()
        self.engine.dispose()
        if self.redis is not None:
            self.redis.close()


def services_of(context: BoltContext) -> Services:
    return context[SERVICES]


def provide(services: Services):
    """A Bolt middleware putting `services` in every request's context."""

    def put_services(context: BoltContext, next) -> None:
        context[SERVICES] = services
        next()

    return put_services

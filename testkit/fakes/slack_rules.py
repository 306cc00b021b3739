"""Slack's limits of how often, how long and how many: rate tiers per method per workspace,
trigger_ids that work once within three seconds, response_urls good for five uses in thirty
minutes, and the chunks a streaming call may carry.

Each rule quotes the page it follows. Times come from the fake's clock, so a test can move
time on instead of sleeping.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .slack_blocks import _blocks_problems

# ----- rate tiers

RATE_LIMITS_PAGE = "https://docs.slack.dev/apis/web-api/rate-limits"


@dataclass(frozen=True)
class Tier:
    """A rate limit as a token bucket: `burst` calls at once, refilled at `per_minute`."""

    name: str
    per_minute: float
    burst: int


# The rate limits page: limits apply 'on a "per API method per workspace/team per app" basis'.
# "Tier 1 | 1+ per minute | Access tier 1 methods infrequently. A small amount of burst
#  behavior is tolerated."
TIER_1 = Tier("Tier 1", 1, 2)
# "Tier 2 | 20+ per minute | Most methods allow at least 20 requests per minute, while allowing
#  for occasional bursts of more requests."
TIER_2 = Tier("Tier 2", 20, 20)
# "Tier 3 | 50+ per minute | ... Sporadic bursts are welcome."
TIER_3 = Tier("Tier 3", 50, 50)
# "Tier 4 | 100+ per minute | Enjoy a large request quota for Tier 4 methods, including
#  generous burst behavior."
TIER_4 = Tier("Tier 4", 100, 100)
# Special tier, chat.postMessage: "generally allows posting one message per second per channel,
# while also maintaining a workspace-wide limit"; "Posting messages | 1 per second | Short
# bursts >1 allowed." The workspace-wide number is not published, so only the per-channel
# limit is enforced.
POST_MESSAGE_PER_CHANNEL = Tier("Special: 1 per second per channel", 60, 3)

# Each method's tier as its page's Facts name it (https://docs.slack.dev/reference/methods/<m>).
# auth.test, oauth.v2.access and chat.getPermalink say "Special rate limits apply." without a
# number, so they are not limited here.
METHOD_TIERS: dict[str, Tier] = {
    "chat.startStream": TIER_2,
    "chat.stopStream": TIER_2,
    "chat.appendStream": TIER_4,
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.postEphemeral": TIER_4,
    "views.open": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
    "views.publish": TIER_4,
    "users.info": TIER_4,
    "users.list": TIER_2,
    "usergroups.list": TIER_2,
    "usergroups.users.list": TIER_2,
    "team.info": TIER_3,
    "conversations.info": TIER_3,
    "conversations.join": TIER_3,
    "conversations.open": TIER_3,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
    "files.info": TIER_4,  # https://docs.slack.dev/reference/methods/files.info
}


class RateTiers:
    """Per (workspace, method) token buckets; chat.postMessage also per channel."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, ...], tuple[float, float]] = {}

    def take(self, workspace: str, method: str, params: dict[str, Any]) -> int | None:
        """None if the call may go ahead, else the Retry-After seconds Slack would send."""
        if method == "chat.postMessage":
            key = (workspace, method, str(params.get("channel") or ""))
            return self._take(key, POST_MESSAGE_PER_CHANNEL)
        tier = METHOD_TIERS.get(method)
        return None if tier is None else self._take((workspace, method), tier)

    def _take(self, key: tuple[str, ...], tier: Tier) -> int | None:
        rate = tier.per_minute / 60.0
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (float(tier.burst), now))
            tokens = min(float(tier.burst), tokens + (now - then) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


# ----- triggers

# https://docs.slack.dev/reference/methods/views.open (and views.push), errors:
# "expired_trigger_id | The trigger_id is expired." and "exchanged_trigger_id | The trigger_id
# was already exchanged in a previous call." The triggers guide says how long and how often:
# "They expire in three seconds." "Triggers may only be used once."
# (https://api.slack.com/docs/triggers; it names the errors trigger_expired/trigger_exchanged,
# the method pages name them as above, and the method pages are what views.* answer.)
TRIGGER_LIFETIME_SECONDS = 3.0


class Triggers:
    """trigger_ids: issued with their time by `issue`, or (an id from a canned payload the
    fake never issued) taken as issued at its first use, so it works once and then never."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._issued: dict[str, float] = {}
        self._used: set[str] = set()
        self._ids = itertools.count(1)
        self.lifetime = TRIGGER_LIFETIME_SECONDS

    def issue(self) -> str:
        n = next(self._ids)
        # Shaped like Slack's: "132456.7890123.abcdef".
        trigger_id = f"{1_700_000_000 + n}.{7_890_123 + n}.{n:06x}fake"
        with self._lock:
            self._issued[trigger_id] = self._clock()
        return trigger_id

    def exchange(self, trigger_id: str) -> str | None:
        """The error Slack answers for this trigger_id now, None if it may be used."""
        with self._lock:
            now = self._clock()
            if trigger_id in self._used:
                return "exchanged_trigger_id"
            issued = self._issued.setdefault(trigger_id, now)
            if now - issued > self.lifetime:
                return "expired_trigger_id"
            self._used.add(trigger_id)
            return None

    def clear(self) -> None:
        with self._lock:
            self._issued.clear()
            self._used.clear()


# ----- response_url

# https://docs.slack.dev/interactivity/handling-user-interaction (Message responses): a
# response_url can be used "up to 5 times within 30 minutes" of the interaction. What Slack
# answers past that is not documented (slackapi/node-slack-sdk#828: "the total number of times
# it can be used is 5, and the server is authoritative about that. document what error is
# expected if the limit is exceeded."); the fake answers as Slack's webhooks answer an error,
# an HTTP 404 whose text body names it: "used_url" or "expired_url".
RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME_SECONDS = 30 * 60.0


class ResponseUrls:
    """Uses of each response_url path, counted from the first use (or from `issue`)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._uses: dict[str, tuple[float, int]] = {}
        self._ids = itertools.count(1)

    def issue(self) -> str:
        path = f"/response/issued/{next(self._ids)}"
        with self._lock:
            self._uses[path] = (self._clock(), 0)
        return path

    def use(self, path: str) -> str | None:
        """Count one use; the error Slack answers if this one is past the limit."""
        with self._lock:
            now = self._clock()
            issued, uses = self._uses.get(path, (now, 0))
            if now - issued > RESPONSE_URL_LIFETIME_SECONDS:
                return "expired_url"
            if uses >= RESPONSE_URL_USES:
                return "used_url"
            self._uses[path] = (issued, uses + 1)
            return None

    def clear(self) -> None:
        with self._lock:
            self._uses.clear()


# ----- streaming chunks

# https://docs.slack.dev/reference/methods/chat.appendStream (and startStream, stopStream):
# "chunks | Array of streaming chunks." and the error "invalid_chunks | Chunks submitted with
# this message are not valid." The chunk shapes are those of slack_sdk.models.messages.chunk
# (https://docs.slack.dev/messaging/sending-and-scheduling-messages#text-streaming).
TASK_STATUSES = {"pending", "in_progress", "complete", "error"}
CHUNK_FIELDS: dict[str, tuple[str, ...]] = {
    "markdown_text": ("text",),
    "task_update": ("id", "title", "status"),
    "plan_update": ("title",),
    "blocks": ("blocks",),
}


def chunk_problems(chunks: Any) -> list[tuple[str, str]]:
    """What is wrong with a `chunks` argument, with json-pointers; [] if Slack takes it."""
    if not isinstance(chunks, list):
        return [("/chunks", "must be an array")]
    problems: list[tuple[str, str]] = []
    for i, chunk in enumerate(chunks):
        here = f"/chunks/{i}"
        if not isinstance(chunk, dict) or chunk.get("type") not in CHUNK_FIELDS:
            kind = chunk.get("type") if isinstance(chunk, dict) else chunk
            problems.append((f"{here}/type", f"unsupported chunk type {kind!r}"))
            continue
        for name in CHUNK_FIELDS[chunk["type"]]:
            if chunk.get(name) in (None, ""):
                problems.append((f"{here}/{name}", f"missing required field: {name}"))
        if chunk["type"] == "markdown_text" and not isinstance(chunk.get("text", ""), str):
            problems.append((f"{here}/text", "must be a string"))
        if chunk["type"] == "task_update" and chunk.get("status") not in TASK_STATUSES:
            problems.append((f"{here}/status", f"must be one of {sorted(TASK_STATUSES)}"))
        if chunk["type"] == "blocks":
            blocks = chunk.get("blocks")
            if isinstance(blocks, list):
                problems += _blocks_problems(blocks, f"{here}/blocks")
            elif blocks is not None:
                problems.append((f"{here}/blocks", "must be an array"))
    return problems


def chunk_markdown(chunks: list[dict[str, Any]]) -> str:
    return "".join(str(c.get("text") or "") for c in chunks if c.get("type") == "markdown_text")

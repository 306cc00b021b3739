"""Every Prometheus metric ColdCopy exports, defined once; `/metrics` renders this registry.

Under `coldcopy serve`'s several worker processes every process writes its samples to files
in PROMETHEUS_MULTIPROC_DIR (set by serve before this module is imported), and `/metrics`
answers the sum over all of them, whichever process it reaches.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)

GENERATIONS = Counter(
    "coldcopy_generations_total",
    "Generations that reached a final status, by status.",
    ["status"],
    registry=REGISTRY,
)
GENERATION_SECONDS = Histogram(
    "coldcopy_generation_duration_seconds",
    "From job start to the last Slack post of a generation.",
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120),
    registry=REGISTRY,
)
FIRST_EMAIL_SECONDS = Histogram(
    "coldcopy_time_to_first_email_seconds",
    "From job start to the first email posted in the thread.",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30),
    registry=REGISTRY,
)
TAKEOVERS = Counter(
    "coldcopy_generation_takeovers_total",
    "Generations taken over and resumed after the process writing them stopped.",
    registry=REGISTRY,
)
QUOTA_DENIALS = Counter(
    "coldcopy_quota_denials_total",
    "Submissions refused because the workspace's quota was used up.",
    registry=REGISTRY,
)
RATE_LIMIT_DENIALS = Counter(
    "coldcopy_rate_limit_denials_total",
    "Submissions refused by a rate limit, by scope (user or workspace).",
    ["scope"],
    registry=REGISTRY,
)
REDIS_FAIL_OPEN = Counter(
    "coldcopy_redis_fail_open_total",
    "Checks allowed because Redis was unreachable or slow, by operation.",
    ["operation"],
    registry=REGISTRY,
)
SLACK_API_ERRORS = Counter(
    "coldcopy_slack_api_errors_total",
    "Slack Web API calls that failed, by method and error.",
    ["method", "error"],
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "coldcopy_model_tokens_total",
    "Model tokens used, by kind (input, output, cache_creation, cache_read).",
    ["kind"],
    registry=REGISTRY,
)


FORMS_NOT_OPENED = Counter(
    "coldcopy_forms_not_opened_total",
    "/coldcopy forms not opened and answered 'busy, try again' instead, by reason: expired "
    "(Slack's 3-second trigger would have run out before views.open) or overloaded (the "
    "process already held as many forms as it can open in time).",
    ["reason"],
    registry=REGISTRY,
)


def multiprocess() -> bool:
    """Whether samples live in the shared directory of several processes."""
    return getattr(values.ValueClass, "_multiprocess", False)


def slack_error(exc: Exception) -> str:
    """The `error` field of a refused Slack Web API call (a SlackApiError's response)."""
    response = getattr(exc, "response", None)
    return str((response.get("error") if response is not None else None) or "unknown_error")


def count_slack_error(method: str, exc: Exception) -> None:
    SLACK_API_ERRORS.labels(method=method, error=slack_error(exc)).inc()


def render() -> bytes:
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)

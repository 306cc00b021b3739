"""One tool's HTTP API over httpx2 (the client the project already carries through anthropic),
with retries from tenacity: 429, 5xx and connection failures are retried, waiting what the
tool asks (Retry-After, or its rate-limit reset) or else an exponential backoff with jitter;
the pacer's "no slot yet" is waited out the same way. Errors come back as SequencerErrors that
name the tool and say what to do."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx2
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from bot.sequencers.errors import KeyRefused, RequestRefused, SequencerError, ToolUnavailable
from bot.sequencers.pacing import Pacer, PacerFull
from bot.sequencers.retry_after import retry_after_seconds

TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
MAX_ATTEMPTS = 8
MAX_TOTAL_SECONDS = 300.0
MAX_SINGLE_WAIT = 120.0  # a Retry-After longer than this is not worth holding a worker for


class Retryable(Exception):
    """A failure worth another attempt, with the wait the tool asked for (None: our backoff)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


_backoff = wait_exponential_jitter(multiplier=0.5, max=30.0)


class _after_failed_attempts(stop_base):  # named like tenacity's own stop conditions
    """Stop after `attempts` answers that failed; a turn spent waiting for our own pacer's
    slot is not a failed attempt, so a busy key waits its turn instead of giving up."""

    def __init__(self, attempts: int):
        self.attempts = attempts
        self.failed = 0

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not isinstance(outcome.exception(), PacerFull):
            self.failed += 1
        return self.failed >= self.attempts


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    asked = getattr(error, "retry_after", None)
    if asked is not None:
        return min(float(asked), MAX_SINGLE_WAIT)
    return _backoff(state)


def _detail(response: httpx2.Response) -> str:
    """The tool's own words for an error, from the usual places in its JSON body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "errors"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value
            if value:
                return str(value)[:300]
    return str(body)[:300]


class Transport:
    """Requests to one tool for one API key, paced and retried."""

    def __init__(
        self,
        tool: str,
        base_url: str,
        *,
        pacer: Pacer,
        key_help: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        http: httpx2.Client | None = None,
    ):
        self.tool = tool
        self._pacer = pacer
        self._key_help = key_help
        self._http = http or httpx2.Client(timeout=TIMEOUT)
        self._base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._params = dict(params or {})
        self._auth = httpx2.BasicAuth(*auth) if auth else None

    def close(self) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        find_existing: Callable[[], Any] | None = None,
    ) -> Any:
        """The JSON answer to one request. `what` names it for errors ("the campaign").

        For a request that creates something, `find_existing` looks it up: it runs before every
        retry, so an attempt whose answer was lost (a timeout after the tool had created the
        thing) is found instead of created twice."""
        retrying = Retrying(
            retry=retry_if_exception_type((Retryable, PacerFull)),
            wait=_wait,
            stop=_after_failed_attempts(MAX_ATTEMPTS) | stop_after_delay(MAX_TOTAL_SECONDS),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if find_existing is not None and attempt.retry_state.attempt_number > 1:
                        found = find_existing()
                        if found is not None:
                            return found
                    return self._once(method, path, what, json, params)
        except PacerFull as exc:
            raise ToolUnavailable(
                self.tool, f"{self.tool} is busy for this API key; try again in a minute."
            ) from exc
        except Retryable as exc:
            raise ToolUnavailable(
                self.tool,
                f"{self.tool} did not accept {what} after several tries ({exc.reason}); "
                "try again in a few minutes.",
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _once(self, method, path, what, json, params) -> Any:
        self._pacer.take()
        try:
            response = self._http.request(
                method,
                self._base_url + path,
                json=json,
                params={**self._params, **(params or {})},
                headers=self._headers,
                auth=self._auth,
            )
        except httpx2.TransportError as exc:
            raise Retryable(f"{type(exc).__name__}: could not reach {self.tool}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise Retryable(f"{status}", retry_after_seconds(response.headers))
        if status in (401, 403):
            raise KeyRefused(self.tool, status, self._key_help, _detail(response))
        if status >= 400:
            raise RequestRefused(self.tool, status, what, _detail(response))
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise SequencerError(
                self.tool, f"{self.tool} answered {what} with something that is not JSON."
            ) from exc

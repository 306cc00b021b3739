"""One streamed model request with a real wall-clock deadline, and the mapping of the SDK's
errors to the writer's own kinds (`WriterError`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2

from bot.writing.events import WriterError, WriterStopped

# How often a reader waiting on a silent model looks whether its caller has stopped it.
STOP_CHECK = 0.25


@dataclass(frozen=True)
class _Failure:
    error: Exception
    mid_stream: bool  # False: the request itself failed (after the SDK's retries)


_END = object()
# The pump thread's "this generation was abandoned" flag, read by `_skip_abandoned_attempts`.
_attempt_state = threading.local()


def skip_abandoned_attempts(request: Any, call_next: Any) -> Any:
    """SDK middleware: don't start a retry for a generation that has already given up.

    The SDK honours retry-after however long it is; without this, a retry could wake up after
    the deadline and pay for an answer that nobody reads.
    """
    abandoned = getattr(_attempt_state, "abandoned", None)
    if abandoned is not None and abandoned.is_set():
        raise RuntimeError("generation abandoned; retry not sent")
    return call_next(request)


class ModelStream:
    """Runs one streamed request on a background thread, so the reader can wait for each event
    with a real wall-clock deadline.

    httpx timeouts bound each connect and each read, not the whole answer: a stream that keeps
    trickling tokens, or retries that keep backing off, would never time out. Here the reader
    waits on a queue for whatever is left of the budget. On a timeout the thread is left to
    finish by itself: it stops at its next event, and a read blocked on a silent server ends at
    the SDK's read timeout.
    """

    def __init__(
        self,
        client: anthropic.Anthropic,
        request: dict[str, Any],
        budget: float,
        stop: threading.Event | None = None,
    ):
        self._client = client
        self._request = request
        self._budget = budget
        self._stop = stop
        self._deadline = time.monotonic() + budget
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._abandoned = threading.Event()
        self._thread = threading.Thread(target=self._run, name="coldcopy-model-stream", daemon=True)

    def __enter__(self) -> ModelStream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._abandoned.set()

    def events(self) -> Iterator[Any]:
        """The raw stream events, in order; raises WriterError when the stream fails, and
        WriterStopped (within STOP_CHECK seconds) once the caller's `stop` is set."""
        while True:
            if self._stop is not None and self._stop.is_set():
                raise WriterStopped("the caller stopped this answer")
            remaining = self._deadline - time.monotonic()
            try:
                # Events that arrived in time are still read when the consumer was slow.
                if remaining > 0:
                    item = self._queue.get(timeout=min(remaining, STOP_CHECK))
                else:
                    item = self._queue.get_nowait()
            except queue.Empty:
                if remaining > STOP_CHECK:
                    continue
                raise WriterError(
                    "timeout", f"no complete answer within {self._budget:g} s"
                ) from None
            if item is _END:
                return
            if isinstance(item, _Failure) and item.mid_stream:
                raise _stream_failure(item.error)
            if isinstance(item, _Failure):
                raise _request_failure(item.error)
            yield item

    def _run(self) -> None:
        _attempt_state.abandoned = self._abandoned
        try:
            stream = self._client.messages.create(**self._request, stream=True)
        except Exception as exc:
            self._queue.put(_Failure(exc, mid_stream=False))
            return
        try:
            with stream:
                for event in stream:
                    self._queue.put(event)
                    if self._abandoned.is_set():
                        return
        except Exception as exc:
            self._queue.put(_Failure(exc, mid_stream=True))
            return
        self._queue.put(_END)


def _request_failure(error: Exception) -> WriterError:
    """Map a request that failed before any answer arrived (after the SDK's retries)."""
    if isinstance(error, anthropic.APITimeoutError):
        return WriterError("timeout", "the Anthropic API did not answer in time")
    if isinstance(error, anthropic.APIConnectionError):
        return WriterError("unavailable", f"cannot reach the Anthropic API: {error}")
    if not isinstance(error, anthropic.APIStatusError):
        return WriterError("unavailable", f"the request failed: {type(error).__name__}: {error}")
    what = f"{error.status_code} {error.type or 'error'}: {error.api_message or error.message}"
    where = f" (request-id {error.request_id})" if error.request_id else ""
    if isinstance(error, anthropic.OverloadedError) or error.type == "overloaded_error":
        return WriterError("overloaded", f"the Anthropic API is overloaded: {what}{where}")
    if isinstance(error, anthropic.RateLimitError):
        return WriterError("rate_limited", f"rate limited by the Anthropic API: {what}{where}")
    if error.status_code >= 500 or error.status_code in (408, 409):
        return WriterError("unavailable", f"the Anthropic API failed: {what}{where}")
    # Every other 4xx is ours to fix: a bad key, a model we may not use, a malformed request.
    if isinstance(error, anthropic.AuthenticationError):
        hint = "set ANTHROPIC_API_KEY to a valid key"
    elif isinstance(error, anthropic.NotFoundError):
        hint = "check that COLDCOPY_MODEL names a model this key can use"
    elif isinstance(error, anthropic.PermissionDeniedError):
        hint = "this API key may not use this model or feature"
    else:
        hint = "the request ColdCopy sends was rejected"
    return WriterError(
        "misconfigured", f"the Anthropic API refused ColdCopy, {hint}: {what}{where}"
    )


def _stream_failure(error: Exception) -> WriterError:
    """Map a failure after the answer had begun: an error event, a broken or stalled stream."""
    if isinstance(error, anthropic.APITimeoutError | httpx2.TimeoutException):
        return WriterError("timeout", f"the stream stalled: {type(error).__name__}")
    if isinstance(error, anthropic.APIStatusError):
        what = f"{error.type or 'error'}: {error.api_message or error.message}"
        return WriterError("stream_error", f"error event mid-stream: {what}")
    return WriterError("stream_error", f"the stream broke off: {type(error).__name__}: {error}")

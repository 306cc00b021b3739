"""Slack calls that spend their time waiting on the network, many in flight at once: one event
loop thread per process with one aiohttp session (kept-alive connections, at most
`connections` open), started on first use. A request thread hands it a coroutine and goes back
to serving, so a slow round trip to Slack holds no thread.

Calls made here get no rate-limit retries: the work sent here (a form behind a 3-second
trigger) cannot wait out a Retry-After, and is better answered at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.clients import SLACK_TIMEOUT_SECONDS, sdk_logger

log = logging.getLogger(__name__)

# A dropped kept-alive connection or a 5xx is tried once more, at once: there is no time to wait.
RETRIES = [
    AsyncConnectionErrorRetryHandler(
        max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.0)
    ),
    AsyncServerErrorRetryHandler(
        max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.05)
    ),
]


class SlackLoop:
    """`loop.submit(work, *args)` runs the coroutine `work(*args)` on this process's Slack loop;
    inside it, `web_client(token)` and `webhook(url)` talk to Slack over the shared session."""

    def __init__(self, base_url: str, *, connections: int):
        self.base_url = base_url
        self.connections = connections
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def submit(self, work: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Future:
        """Start `work(*args)` on the loop; RuntimeError once the loop is closed."""
        loop = self._running_loop()
        coroutine = work(*args)
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # closed meanwhile
            coroutine.close()
            raise

    def web_client(self, token: str | None) -> AsyncWebClient:
        """A Web API client for `token` on the shared session (only inside the loop)."""
        return AsyncWebClient(
            token=token,
            base_url=self.base_url,
            session=self._session,
            timeout=SLACK_TIMEOUT_SECONDS,
            retry_handlers=RETRIES,
            logger=sdk_logger(),
        )

    def webhook(self, url: str) -> AsyncWebhookClient:
        """A client for an interaction's response_url on the shared session (only inside the
        loop)."""
        return AsyncWebhookClient(
            url,
            session=self._session,
            timeout=SLACK_TIMEOUT_SECONDS,
            retry_handlers=RETRIES,
            logger=sdk_logger(),
        )

    def close(self, timeout: float = SLACK_TIMEOUT_SECONDS) -> None:
        """Take no more work, let the calls in flight finish (up to `timeout`), then close the
        session and stop the thread."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_finish_tasks(timeout), loop).result(timeout + 1)
        except Exception:
            log.warning("Slack calls still in flight at shutdown were abandoned")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("the Slack loop is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, started), name="coldcopy-slack", daemon=True
                )
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        # aiohttp wants its session made inside the running loop.
        self._session = loop.run_until_complete(self._open_session())
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._session.close())
            loop.close()

    async def _open_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connections),
            timeout=aiohttp.ClientTimeout(total=SLACK_TIMEOUT_SECONDS),
        )


async def _finish_tasks(timeout: float) -> None:
    pending = asyncio.all_tasks() - {asyncio.current_task()}
    if pending:
        await asyncio.wait(pending, timeout=timeout)

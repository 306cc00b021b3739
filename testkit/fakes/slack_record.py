"""What a test scripts into the fake (failures, rate limits, slow answers) and what it reads
back (calls, messages as they are now, threads, views, uploads, violations)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .slack_objects import Upload
from .slack_wire import Call

# The methods that create a message in a conversation (or try to).
POSTING_METHODS = ("chat.postMessage", "chat.startStream")
# What Slack names in `needed` when a `missing_scope` error is scripted without one.
NEEDED_SCOPE = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "chat.delete": "chat:write",
    "users.info": "users:read",
    "usergroups.list": "usergroups:read",
    "usergroups.users.list": "usergroups:read",
    "conversations.join": "channels:join",
    "conversations.info": "channels:read",
    "conversations.open": "im:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.info": "files:read",
    "team.info": "team:read",
}
# What `posts()` shows of a message as it is now.
_SHOWN = ("ts", "text", "blocks", "thread_ts", "streaming_state", "edited")


@dataclass
class _Script:
    method: str
    status: int
    body: dict[str, Any] | bytes
    headers: dict[str, str]
    outcome: str
    times: int | None
    when: Callable[[dict[str, Any]], bool] | None


class ScriptsAndRecords:
    """FakeSlack's scripting and reading API (a mixin: the state lives on FakeSlack)."""

    # ----- scripted failures

    def fail(
        self,
        method: str,
        error: str,
        *,
        times: int | None = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
        **fields: Any,
    ) -> None:
        """The next `times` matching calls (None: all of them; method "*": any method) answer
        HTTP 200 {"ok": false, "error": error, **fields}."""
        if error == "missing_scope":
            fields.setdefault("needed", NEEDED_SCOPE.get(method, "chat:write"))
            fields.setdefault("provided", self._default_install.scopes)
        body = {"ok": False, "error": error, **fields}
        self._add_script(_Script(method, 200, body, {}, error, times, when))

    def rate_limit(
        self,
        method: str,
        retry_after: int = 1,
        *,
        times: int | None = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """The next matching calls answer HTTP 429 with `Retry-After: retry_after`."""
        body = {"ok": False, "error": "ratelimited"}
        headers = {"Retry-After": str(retry_after)}
        self._add_script(_Script(method, 429, body, headers, "429", times, when))

    def server_error(
        self,
        method: str,
        status: int = 503,
        *,
        times: int | None = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """The next matching calls answer an HTML error page with this status, as Slack's edge
        does (the SDK reports a non-JSON body)."""
        page = f"<html><body><h1>{status} Service Unavailable</h1></body></html>".encode()
        self._add_script(_Script(method, status, page, {}, str(status), times, when))

    def hold(self, method: str) -> None:
        """Calls to `method` get no answer until `release(method)`: a Slack that is slow to
        answer, without any sleeping."""
        with self._lock:
            self._gates[method] = threading.Event()

    def release(self, method: str) -> None:
        with self._lock:
            gate = self._gates.pop(method, None)
        if gate is not None:
            gate.set()

    def wait_held(self, method: str, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` calls to `method` are waiting on its hold."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._held.get(method, 0) >= count, timeout):
                raise AssertionError(
                    f"{self._held.get(method, 0)} of {count} {method} calls are being held"
                )

    def _wait_if_held(self, method: str) -> None:
        with self._lock:
            gate = self._gates.get(method)
            if gate is None:
                return
            self._held[method] = self._held.get(method, 0) + 1
            self._lock.notify_all()
        gate.wait(timeout=60)
        with self._lock:
            self._held[method] -= 1

    def _add_script(self, script: _Script) -> None:
        with self._lock:
            self._scripts.append(script)

    # ----- what happened

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Block until `count` calls to `method` have arrived; return all calls to it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                matching = [c for c in self._calls if c.method == method]
                if len(matching) >= count:
                    return matching
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.method for c in self._calls]
                    raise AssertionError(
                        f"expected {count} call(s) to {method} within {timeout}s, "
                        f"got {len(matching)}; calls seen: {seen}"
                    )
                self._lock.wait(remaining)

    @property
    def violations(self) -> list[str]:
        """Payloads real Slack would refuse (or our product rules forbid), and fake errors."""
        with self._lock:
            return list(self._violations)

    @property
    def uploads(self) -> list[Upload]:
        """Files shared into a conversation (bytes uploaded, then completed), in order: what a
        user sees. A file whose bytes arrived but whose completion has not is not one yet."""
        with self._lock:
            return [u for u in self._uploads.values() if u.data is not None and u.completed]

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """The current state of every view opened, pushed, updated or published, by id."""
        with self._lock:
            return dict(self._views)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """A message as it is now (after updates, appends and stops), None if absent or deleted."""
        with self._lock:
            found = self._messages.get((channel, ts))
            return None if found is None or found.get("_deleted") else dict(found)

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The replies in a thread as they are now, oldest first (deleted ones left out)."""
        with self._lock:
            replies = [
                dict(m)
                for (where, ts), m in self._messages.items()
                if where == channel
                and m.get("thread_ts") == thread_ts
                and ts != thread_ts
                and not m.get("_deleted")
            ]
        return sorted(replies, key=lambda m: float(m["ts"]))

    def posts(self) -> list[Call]:
        """Every call that posted (or tried to post) a message: chat.postMessage and
        chat.startStream, in order, each with the `ts` Slack gave it; a message deleted since
        is left out, as it is no longer in the conversation. A posted message shows as it was
        posted; a streamed one as it is now (its text, or the blocks a later chat.update gave
        it), since what it finally says is what was delivered."""
        with self._lock:
            calls = [c for c in self._calls if c.method in POSTING_METHODS]
            shown = []
            for call in calls:
                current = self._messages.get(
                    (call.params.get("_channel", ""), call.params.get("_ts", ""))
                )
                if call.ok and current is not None and current.get("_deleted"):
                    continue
                if call.ok and current is not None:
                    keys = _SHOWN if call.method == "chat.startStream" else ("ts",)
                    params = {**call.params, **{k: v for k, v in current.items() if k in keys}}
                    call = Call(call.method, params, call.token, call.at, call.outcome, call.status)
                shown.append(call)
            return shown

    def wait_for_posts(
        self, count: int, timeout: float = 15.0, *, formatted: bool = True
    ) -> list[Call]:
        """Block until `count` messages were posted or attempted and no stream is still open
        (with `formatted`, until every streamed message was also given its blocks or deleted);
        return `posts()`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                posts = [c for c in self._calls if c.method in POSTING_METHODS]
                streams = [m for m in self._messages.values() if "streaming_state" in m]
                streaming = any(
                    m["streaming_state"] == "in_progress" and not m.get("_deleted") for m in streams
                ) or (
                    formatted and any("blocks" not in m and not m.get("_deleted") for m in streams)
                )
                if len(posts) >= count and not streaming:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.method for c in self._calls]
                    raise AssertionError(
                        f"expected {count} posts within {timeout}s, got {len(posts)} "
                        f"(a stream still open: {streaming}); calls seen: {seen}"
                    )
                self._lock.wait(min(remaining, 0.05))
        return self.posts()

"""A local HTTP fake of the Slack Web API that a real `slack_sdk.WebClient` talks to.

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        client.chat_postMessage(channel="C1", text="hi", blocks=[...])
        assert slack.calls_to("chat.postMessage")[0].params["blocks"][0]["type"] == "section"
        assert slack.violations == []

It answers with Slack's wire format (HTTP 200 + `{"ok": false, "error": ...}` for API errors,
HTTP 429 + `Retry-After` for rate limits), records every call, checks Block Kit payloads
against Slack's limits and lets a test script failures. Only the standard library and slack_sdk.

The Block Kit limits below are written out here on purpose, not imported from the app: a test
oracle that shares constants with the code under test cannot catch a wrong constant.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import mimetypes
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

# Slack's Block Kit limits (https://docs.slack.dev/reference/block-kit/).
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELD_TEXT_MAX = 2000
SECTION_FIELDS_MAX = 10
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
CONTEXT_ELEMENTS_MAX = 10
VIEW_TITLE_MAX = 24
VIEW_SUBMIT_CLOSE_MAX = 24
PLAIN_TEXT_INPUT_LENGTH_MAX = 3000
MESSAGE_TEXT_MAX = 40000
STREAM_MARKDOWN_MAX = 12000
# Slack ends a stream nobody stopped after about five minutes; appends then fail.
STREAM_TIME_LIMIT_SECONDS = 300.0
STREAM_CHUNK_TYPES = {"markdown_text", "task_update", "plan_update", "blocks"}

# Form fields that carry JSON text; decoded so tests assert on Python objects.
JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata", "user_auth_blocks")
# Methods that send no bot token: OAuth authenticates the app with client_id/secret instead.
TOKENLESS_METHODS = {"oauth.v2.access", "oauth.access", "oauth.v2.exchange"}
# Slack reads only form fields on these; a JSON body arrives as "missing required field".
FORM_ONLY_METHODS = {"files.getUploadURLExternal"}
MESSAGE_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral"}
# The methods that create a message in a conversation (or try to).
POSTING_METHODS = ("chat.postMessage", "chat.startStream")

DEFAULT_SCOPES = (
    "chat:write,chat:write.public,commands,users:read,channels:join,channels:read,"
    "groups:read,im:write,files:write,team:read"
)
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
    "conversations.join": "channels:join",
    "conversations.info": "channels:read",
    "conversations.open": "im:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "team.info": "team:read",
}


def _block_types() -> set[str]:
    types, pending = set(), [Block]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if isinstance(getattr(cls, "type", None), str):
            types.add(cls.type)
    return types


KNOWN_BLOCK_TYPES = _block_types()


@dataclass(frozen=True)
class Call:
    """One request the fake received, with its decoded parameters and how it was answered."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float
    outcome: str = "ok"  # "ok", the Slack error string, or the HTTP status ("429", "503")
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class Upload:
    """A file sent through files.getUploadURLExternal, the upload URL and completeUploadExternal."""

    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


def _user_object(user: FakeUser, *, include_locale: bool = False) -> dict[str, Any]:
    """A user as users.info and users.list return it; `locale` only when asked for, as
    Slack sends it only with include_locale=true."""
    profile: dict[str, Any] = {
        "real_name": user.real_name,
        "display_name": user.name,
        "team": user.team_id,
    }
    if user.email:
        profile["email"] = user.email
    answer: dict[str, Any] = {
        "id": user.id,
        "team_id": user.team_id,
        "name": user.name,
        "deleted": user.deleted,
        "real_name": user.real_name,
        "tz": user.tz,
        "tz_label": user.tz,
        "tz_offset": _tz_offset(user.tz),
        "is_admin": user.is_admin,
        "is_owner": user.is_owner,
        "is_primary_owner": user.is_primary_owner,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": user.is_bot,
        "is_app_user": False,
        "updated": 1_700_000_000,
        "profile": profile,
    }
    if include_locale:
        answer["locale"] = user.locale
    return answer


@dataclass
class FakeUser:
    id: str
    team_id: str
    name: str
    real_name: str
    is_admin: bool
    is_owner: bool
    is_primary_owner: bool
    is_bot: bool
    deleted: bool
    tz: str
    email: str | None
    locale: str = "en-US"


@dataclass
class FakeChannel:
    id: str
    name: str
    is_private: bool
    is_archived: bool
    is_member: bool


@dataclass
class _Install:
    team_id: str
    team_name: str
    bot_user_id: str
    bot_id: str


@dataclass
class _Script:
    method: str
    status: int
    body: dict[str, Any] | bytes
    headers: dict[str, str]
    outcome: str
    times: int | None
    when: Callable[[dict[str, Any]], bool] | None


@dataclass
class _Answer:
    body: dict[str, Any] | bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str | None = None  # derived from body when None


def _error(error: str, **fields: Any) -> _Answer:
    return _Answer({"ok": False, "error": error, **fields})


def _invalid_arguments(*messages: str) -> _Answer:
    return _error(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] {m}" for m in messages]},
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Slack's edge takes every connection; socketserver's default backlog of 5 would drop
    # bursts of them, and a dropped SYN costs the client a one-second retransmit.
    request_queue_size = 256
    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; every request is in FakeSlack.calls


class FakeSlack:
    """The Slack Web API on 127.0.0.1, started by `with FakeSlack() as slack:`.

    Channels and users not configured with add_channel/add_user behave as follows: an unknown
    channel is a public channel the bot is in; an unknown user is `user_not_found`.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        team_name: str = "ColdCopy Test",
        team_domain: str = "coldcopy-test",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0COLDCOPY",
    ) -> None:
        self.team_domain = team_domain
        self.app_id = app_id
        self._default_install = _Install(team_id, team_name, bot_user_id, bot_id)
        self._installs: dict[str, _Install] = {}
        self.oauth_response: dict[str, Any] = {
            "ok": True,
            "app_id": app_id,
            "authed_user": {"id": "U0INSTALLER"},
            "scope": DEFAULT_SCOPES,
            "token_type": "bot",
            # Not shaped like a real token, so secret scanners leave the repository alone.
            "access_token": f"xoxb-{team_id}-fake-bot-token",
            "bot_user_id": bot_user_id,
            "team": {"id": team_id, "name": team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        self._lock = threading.Condition()
        self._calls: list[Call] = []
        self._violations: list[str] = []
        self._scripts: list[_Script] = []
        self._stubs: dict[str, dict[str, Any]] = {}
        self._users: dict[str, FakeUser] = {}
        self._channels: dict[str, FakeChannel] = {}
        self._opened_dms: set[str] = set()
        self._uploads: dict[str, Upload] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._ts_micros = 1_700_000_000_000_000
        self.stream_time_limit = STREAM_TIME_LIMIT_SECONDS
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._gates: dict[str, threading.Event] = {}
        self._held: dict[str, int] = {}

    # ----- lifecycle

    def start(self) -> FakeSlack:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlack is not running; use `with FakeSlack() as slack:`")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For `WebClient(base_url=...)`. Method URLs are urljoin(base_url, method), so the
        trailing slash matters to anything but WebClient, which adds a missing one itself."""
        return f"http://127.0.0.1:{self.port}/api/"

    # ----- workspace set-up

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        team_id: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_primary_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "America/New_York",
        email: str | None = None,
        locale: str = "en-US",
    ) -> FakeUser:
        """A user for users.info. As in Slack, owners are admins and the primary owner an owner."""
        is_owner = is_owner or is_primary_owner
        user = FakeUser(
            id=user_id,
            team_id=team_id or self._default_install.team_id,
            name=name or user_id.lower(),
            real_name=real_name or (name or user_id).title(),
            is_admin=is_admin or is_owner,
            is_owner=is_owner,
            is_primary_owner=is_primary_owner,
            is_bot=is_bot,
            deleted=deleted,
            tz=tz,
            email=email,
            locale=locale,
        )
        with self._lock:
            self._users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        is_archived: bool = False,
        is_member: bool = True,
    ) -> FakeChannel:
        """A channel whose state drives answers: posting to it when archived is `is_archived`,
        when the bot is not a member `not_in_channel` (`channel_not_found` if private)."""
        channel = FakeChannel(
            channel_id, name or channel_id.lower(), is_private, is_archived, is_member
        )
        with self._lock:
            self._channels[channel_id] = channel
        return channel

    def dm_channel_for(self, user_id: str) -> str:
        """The DM id conversations.open returns for a user: "U123" -> "D123"."""
        return "D" + (user_id[1:] if user_id[:1] in ("U", "W") else user_id)

    def stub(self, method: str, response: dict[str, Any]) -> None:
        """A canned successful answer for a method this fake does not implement."""
        with self._lock:
            self._stubs[method] = {"ok": True, **response}

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
            fields.setdefault("provided", DEFAULT_SCOPES)
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
        """Files whose bytes reached the upload URL, in order."""
        with self._lock:
            return [u for u in self._uploads.values() if u.data is not None]

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
                streaming = any(m["streaming_state"] == "in_progress" for m in streams) or (
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

    def reset(self) -> None:
        """Forget calls, violations, uploads, views, messages and unused scripted failures;
        users, channels, stubs and the OAuth answer stay."""
        with self._lock:
            self._calls.clear()
            self._violations.clear()
            self._scripts.clear()
            self._uploads.clear()
            self._views.clear()
            self._messages.clear()
            self._opened_dms.clear()

    # ----- HTTP

    def _handle(self, request: _Handler) -> None:
        arrived = time.monotonic()
        url = urlsplit(request.path)
        headers = dict(request.headers.items())
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        try:
            if url.path.startswith("/upload/"):
                self._receive_upload(request, url.path.removeprefix("/upload/"), body)
            elif url.path.startswith("/response/"):
                self._response_url_post(request, url.path, headers, body, arrived)
            elif url.path.startswith("/api/") and len(url.path) > len("/api/"):
                method = url.path.removeprefix("/api/")
                self._api_call(request, method, url.query, headers, body, arrived)
            else:
                self._violation(
                    f"request to {url.path}, outside /api/: is base_url missing its trailing '/'?"
                )
                _send(request, 404, b"<html><body>404 Not Found</body></html>", "text/html")
        except Exception:
            self._violation("fake Slack failed:\n" + traceback.format_exc())
            _send(request, 500, b"fake Slack failed; see FakeSlack.violations", "text/plain")

    def _api_call(
        self,
        request: _Handler,
        method: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        arrived: float,
    ) -> None:
        content_type = request.headers.get("Content-Type", "")
        try:
            params = _parse_params(content_type, body, query)
        except ValueError:
            answer = _error("invalid_json")
            params = {"_raw_body": body.decode("utf-8", "replace")}
        else:
            answer = None
        token = _bearer_token(request.headers.get("Authorization")) or params.pop("token", None)
        self._wait_if_held(method)
        is_json = content_type.split(";")[0].strip().lower() == "application/json"
        if answer is None:
            answer = self._scripted(method, params) or self._answer(method, params, token, is_json)
        outcome = answer.outcome
        if outcome is None:
            outcome = "ok" if answer.body.get("ok") else str(answer.body.get("error"))  # type: ignore[union-attr]
        call = Call(method, params, token, arrived, outcome, answer.status, headers)
        with self._lock:
            self._calls.append(call)
            self._lock.notify_all()
        if isinstance(answer.body, bytes):
            _send(request, answer.status, answer.body, "text/html; charset=utf-8", answer.headers)
        else:
            extra = {"X-OAuth-Scopes": DEFAULT_SCOPES, **answer.headers}
            payload = json.dumps(answer.body).encode()
            _send(request, answer.status, payload, "application/json; charset=utf-8", extra)

    def _response_url_post(
        self, request: _Handler, path: str, headers: dict[str, str], body: bytes, arrived: float
    ) -> None:
        """A message sent to an interaction's response_url (Bolt's `respond`): recorded as
        a call to the pseudo-method "response_url", its blocks checked like any message."""
        params = json.loads(body or b"{}")
        params["_path"] = path
        refusal = self._check_message("response_url", params) if params.get("blocks") else None
        outcome = "ok" if refusal is None else "invalid_blocks"
        with self._lock:
            self._calls.append(Call("response_url", params, None, arrived, outcome, 200, headers))
            self._lock.notify_all()
        _send(request, 200, b"ok", "text/html")

    @property
    def response_url_base(self) -> str:
        """Prefix for the response_url of fake slash commands and clicks."""
        return f"http://127.0.0.1:{self.port}/response"

    def _scripted(self, method: str, params: dict[str, Any]) -> _Answer | None:
        with self._lock:
            for script in self._scripts:
                if script.method not in (method, "*"):
                    continue
                if script.when is not None and not script.when(params):
                    continue
                if script.times is not None:
                    script.times -= 1
                    if script.times == 0:
                        self._scripts.remove(script)
                body = dict(script.body) if isinstance(script.body, dict) else script.body
                return _Answer(body, script.status, dict(script.headers), script.outcome)
        return None

    def _receive_upload(self, request: _Handler, file_id: str, body: bytes) -> None:
        with self._lock:
            upload = self._uploads.get(file_id)
            if upload is not None:
                upload.data = body
        if upload is None:
            self._violation(f"upload to unknown file id {file_id}")
            _send(request, 404, b"file not found", "text/plain")
            return
        if len(body) != upload.length:
            self._violation(
                f"files.getUploadURLExternal declared length {upload.length} for "
                f"{upload.filename!r} but {len(body)} bytes were uploaded"
            )
        _send(request, 200, f"OK - {len(body)}".encode(), "text/plain; charset=utf-8")

    def _violation(self, message: str) -> None:
        with self._lock:
            self._violations.append(message)

    # ----- Web API methods

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None, is_json: bool
    ) -> _Answer:
        if method not in TOKENLESS_METHODS and not token:
            return _error("not_authed")
        if is_json and method in FORM_ONLY_METHODS:
            params = {}  # Slack ignores JSON bodies here
        handler = self._handlers().get(method)
        if handler is not None:
            return handler(params, self._install_for(token))
        with self._lock:
            stubbed = self._stubs.get(method)
        if stubbed is not None:
            return _Answer(dict(stubbed))
        return _error("unknown_method", req_method=method)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any], _Install], _Answer]]:
        return {
            "auth.test": self._auth_test,
            "team.info": self._team_info,
            "oauth.v2.access": self._oauth_v2_access,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    def _install_for(self, token: str | None) -> _Install:
        with self._lock:
            return self._installs.get(token or "", self._default_install)

    def _auth_test(self, params: dict[str, Any], install: _Install) -> _Answer:
        return _Answer(
            {
                "ok": True,
                "url": f"https://{self.team_domain}.slack.com/",
                "team": install.team_name,
                "user": "coldcopy",
                "team_id": install.team_id,
                "user_id": install.bot_user_id,
                "bot_id": install.bot_id,
                "is_enterprise_install": False,
            }
        )

    def _team_info(self, params: dict[str, Any], install: _Install) -> _Answer:
        return _Answer(
            {
                "ok": True,
                "team": {
                    "id": install.team_id,
                    "name": install.team_name,
                    "domain": self.team_domain,
                    "email_domain": "",
                    "url": f"https://{self.team_domain}.slack.com/",
                    "icon": {"image_default": True},
                },
            }
        )

    def _oauth_v2_access(self, params: dict[str, Any], install: _Install) -> _Answer:
        response = {"ok": True, **self.oauth_response}
        if response["ok"] and response.get("access_token"):
            team = response.get("team") or {}
            new_install = _Install(
                team_id=team.get("id", install.team_id),
                team_name=team.get("name", install.team_name),
                bot_user_id=response.get("bot_user_id", install.bot_user_id),
                bot_id=self._default_install.bot_id,
            )
            with self._lock:
                self._installs[response["access_token"]] = new_install
        return _Answer(response)

    # chat

    def _chat_post_message(self, params: dict[str, Any], install: _Install) -> _Answer:
        refused = self._check_message("chat.postMessage", params)
        if refused is not None:
            return refused
        channel = self._resolve_channel(params.get("channel"))
        refusal = self._channel_refusal(channel)
        if refusal:
            return _error(refusal)
        ts = self._next_ts()
        message = self._message_echo(params, install, ts)
        with self._lock:
            self._messages[(channel, ts)] = message
        params["_channel"], params["_ts"] = channel, ts
        return _Answer({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _chat_update(self, params: dict[str, Any], install: _Install) -> _Answer:
        refused = self._check_message("chat.update", params)
        if refused is not None:
            return refused
        channel, ts = params.get("channel") or "", params.get("ts") or ""
        if not ts:
            return _error("message_not_found")
        refusal = self._channel_refusal(channel)
        if refusal:
            return _error(refusal)
        message = self._message_echo(params, install, ts)
        with self._lock:
            previous = self._messages.get((channel, ts), {})
            if previous.get("_deleted"):
                return _error("message_not_found")
            if previous.get("streaming_state") == "in_progress":
                # Ours is stricter than Slack may be: a stream must be stopped before updating.
                return _error("cant_update_message")
            if "thread_ts" in previous:
                message["thread_ts"] = previous["thread_ts"]
            message["edited"] = {"user": install.bot_user_id, "ts": self._next_ts_locked()}
            self._messages[(channel, ts)] = message
        text = params.get("text", "")
        return _Answer({"ok": True, "channel": channel, "ts": ts, "text": text, "message": message})

    # chat streaming: startStream opens a reply in a thread, appendStream adds markdown to it,
    # stopStream ends it; Slack ends a stream itself after `stream_time_limit` seconds.

    def _chat_start_stream(self, params: dict[str, Any], install: _Install) -> _Answer:
        channel = self._resolve_channel(params.get("channel"))
        thread_ts = params.get("thread_ts") or ""
        if not thread_ts:
            return _invalid_arguments("missing required field: thread_ts")
        if channel[:1] in ("C", "G") and not (
            params.get("recipient_user_id") and params.get("recipient_team_id")
        ):
            # Slack needs the recipient of a stream outside a DM.
            return _invalid_arguments(
                "recipient_user_id and recipient_team_id are required outside DMs"
            )
        text, refused = self._stream_text("chat.startStream", params)
        if refused is not None:
            return refused
        refusal = self._channel_refusal(channel)
        if refusal:
            return _error(refusal)
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": install.bot_user_id,
            "bot_id": install.bot_id,
            "app_id": self.app_id,
            "team": install.team_id,
            "ts": ts,
            "thread_ts": thread_ts,
            "parent_user_id": install.bot_user_id,
            "text": text,
            "streaming_state": "in_progress",
            "recipient_user_id": params.get("recipient_user_id"),
            "_started": time.monotonic(),
        }
        with self._lock:
            self._messages[(channel, ts)] = message
        params["_channel"], params["_ts"] = channel, ts
        return _Answer({"ok": True, "channel": channel, "ts": ts})

    def _streaming_message(
        self, params: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, _Answer | None]:
        channel, ts = params.get("channel") or "", params.get("ts") or ""
        with self._lock:
            message = self._messages.get((channel, ts))
            if message is None or message.get("_deleted"):
                return None, _error("message_not_found")
            if (
                message.get("streaming_state") == "in_progress"
                and time.monotonic() - message["_started"] > self.stream_time_limit
            ):
                message["streaming_state"] = "completed"  # Slack closed it
            if message.get("streaming_state") != "in_progress":
                return None, _error("message_not_in_streaming_state")
        return message, None

    def _chat_append_stream(self, params: dict[str, Any], install: _Install) -> _Answer:
        text, refused = self._stream_text("chat.appendStream", params)
        if refused is not None:
            return refused
        if not text:
            return _invalid_arguments("missing required field: markdown_text or chunks")
        message, refused = self._streaming_message(params)
        if refused is not None:
            return refused
        with self._lock:
            message["text"] += text
        return _Answer({"ok": True, "channel": params["channel"], "ts": params["ts"]})

    def _chat_stop_stream(self, params: dict[str, Any], install: _Install) -> _Answer:
        text, refused = self._stream_text("chat.stopStream", params)
        if refused is not None:
            return refused
        blocks = params.get("blocks")
        if blocks is not None:
            problems = (
                _blocks_problems(blocks, "/blocks")
                if isinstance(blocks, list)
                else [("/blocks", "must be an array")]
            )
            refused = self._refuse("chat.stopStream", problems, "invalid_blocks")
            if refused is not None:
                return refused
        message, refused = self._streaming_message(params)
        if refused is not None:
            return refused
        with self._lock:
            message["text"] += text
            message["streaming_state"] = "completed"
            if params.get("blocks"):
                message["blocks"] = params["blocks"]
            echoed = {k: v for k, v in message.items() if not k.startswith("_")}
        return _Answer(
            {"ok": True, "channel": params["channel"], "ts": params["ts"], "message": echoed}
        )

    def _stream_text(self, method: str, params: dict[str, Any]) -> tuple[str, _Answer | None]:
        """The markdown a streaming call carries, in `markdown_text` or `chunks`."""
        text = params.get("markdown_text") or ""
        chunks = params.get("chunks") or []
        if isinstance(chunks, str):
            try:
                chunks = json.loads(chunks)
            except ValueError:
                return "", _invalid_arguments("must be an array [json-pointer:/chunks]")
        if not isinstance(chunks, list):
            return "", _invalid_arguments("must be an array [json-pointer:/chunks]")
        for i, chunk in enumerate(chunks):
            if not isinstance(chunk, dict) or chunk.get("type") not in STREAM_CHUNK_TYPES:
                self._violation(f"{method}: unknown chunk {chunk!r}")
                return "", _invalid_arguments(f"unsupported chunk type [json-pointer:/chunks/{i}]")
            if chunk["type"] == "markdown_text":
                text += str(chunk.get("text") or "")
        if len(text) > STREAM_MARKDOWN_MAX:
            self._violation(f"{method}: {len(text)} characters of markdown in one call")
            return "", _error("msg_too_long")
        return text, None

    def _chat_delete(self, params: dict[str, Any], install: _Install) -> _Answer:
        channel, ts = params.get("channel") or "", params.get("ts") or ""
        with self._lock:
            message = self._messages.get((channel, ts))
            if message is None or message.get("_deleted"):
                return _error("message_not_found")
            if message.get("user") != install.bot_user_id:
                return _error("cant_delete_message")
            message["_deleted"] = True
        return _Answer({"ok": True, "channel": channel, "ts": ts})

    def _chat_post_ephemeral(self, params: dict[str, Any], install: _Install) -> _Answer:
        refused = self._check_message("chat.postEphemeral", params)
        if refused is not None:
            return refused
        if not params.get("user"):
            return _error("user_not_found")
        refusal = self._channel_refusal(self._resolve_channel(params.get("channel")))
        if refusal:
            return _error(refusal)
        return _Answer({"ok": True, "message_ts": self._next_ts()})

    def _chat_get_permalink(self, params: dict[str, Any], install: _Install) -> _Answer:
        channel, ts = params.get("channel") or "", params.get("message_ts") or ""
        if not channel:
            return _error("channel_not_found")
        if not ts:
            return _error("message_not_found")
        permalink = (
            f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        )
        with self._lock:
            thread_ts = self._messages.get((channel, ts), {}).get("thread_ts")
        if thread_ts and thread_ts != ts:
            permalink += f"?thread_ts={thread_ts}&cid={channel}"
        return _Answer({"ok": True, "channel": channel, "permalink": permalink})

    def _message_echo(self, params: dict[str, Any], install: _Install, ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": params.get("text", ""),
            "user": install.bot_user_id,
            "bot_id": install.bot_id,
            "app_id": self.app_id,
            "team": install.team_id,
            "ts": ts,
        }
        for key in ("blocks", "attachments", "metadata", "thread_ts"):
            if params.get(key):
                message[key] = params[key]
        if "thread_ts" in message:
            message["parent_user_id"] = install.bot_user_id
        return message

    def _check_message(self, method: str, params: dict[str, Any]) -> _Answer | None:
        text = params.get("text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX:
            return _error("msg_too_long")
        if "blocks" not in params:
            return None
        blocks = params["blocks"]
        if not isinstance(blocks, list):
            self._violation(f"{method}: blocks is not a JSON array: {str(blocks)[:100]!r}")
            return _error("invalid_blocks_format")
        problems: list[tuple[str, str]] = []
        if len(blocks) > MESSAGE_BLOCKS_MAX:
            problems.append(("/blocks", f"must be no more than {MESSAGE_BLOCKS_MAX} items"))
        problems += _blocks_problems(blocks, "/blocks")
        if blocks and not (isinstance(text, str) and text.strip()):
            problems.append(("/text", "(product rule) blocks need a non-empty text fallback"))
        return self._refuse(method, problems, "invalid_blocks")

    def _refuse(self, method: str, problems: list[tuple[str, str]], error: str) -> _Answer | None:
        if not problems:
            return None
        described = [f"{message} [json-pointer:{pointer}]" for pointer, message in problems]
        with self._lock:
            self._violations.extend(f"{method}: {d}" for d in described)
        fields: dict[str, Any] = {
            "response_metadata": {"messages": [f"[ERROR] {d}" for d in described]}
        }
        if error == "invalid_blocks":
            fields["errors"] = described
        return _error(error, **fields)

    # views

    def _views_open(self, params: dict[str, Any], install: _Install) -> _Answer:
        if not params.get("trigger_id") and not params.get("interactivity_pointer"):
            return _invalid_arguments("missing required field: trigger_id")
        return self._store_view("views.open", params, install, previous=None)

    def _views_push(self, params: dict[str, Any], install: _Install) -> _Answer:
        if not params.get("trigger_id") and not params.get("interactivity_pointer"):
            return _invalid_arguments("missing required field: trigger_id")
        return self._store_view("views.push", params, install, previous=None)

    def _views_publish(self, params: dict[str, Any], install: _Install) -> _Answer:
        if not params.get("user_id"):
            return _invalid_arguments("missing required field: user_id")
        with self._lock:
            previous = next(
                (v for v in self._views.values() if v.get("_published_for") == params["user_id"]),
                None,
            )
        if previous is not None and params.get("hash") and params["hash"] != previous["hash"]:
            return _error("hash_conflict")
        return self._store_view("views.publish", params, install, previous=previous)

    def _views_update(self, params: dict[str, Any], install: _Install) -> _Answer:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        with self._lock:
            if view_id:
                # A view the fake never opened (an id from a canned payload) is accepted as new.
                previous = self._views.get(view_id, {"id": view_id})
            else:
                previous = next(
                    (v for v in self._views.values() if v.get("external_id") == external_id), None
                )
        if previous is None:
            return _error("not_found")
        if params.get("hash") and "hash" in previous and params["hash"] != previous["hash"]:
            return _error("hash_conflict")
        return self._store_view("views.update", params, install, previous=previous)

    def _store_view(
        self,
        method: str,
        params: dict[str, Any],
        install: _Install,
        previous: dict[str, Any] | None,
    ) -> _Answer:
        submitted = params.get("view")
        if not isinstance(submitted, dict):
            self._violation(f"{method}: view is not a JSON object: {str(submitted)[:100]!r}")
            return _invalid_arguments("must be an object [json-pointer:/view]")
        refused = self._refuse(method, _view_problems(submitted), "invalid_arguments")
        if refused is not None:
            return refused
        with self._lock:
            n = next(self._ids)
            view_id = previous["id"] if previous else f"V{n:010d}"
            view: dict[str, Any] = {
                "id": view_id,
                "team_id": install.team_id,
                "type": submitted.get("type"),
                "blocks": [],
                "private_metadata": "",
                "callback_id": "",
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{n:08x}",
                "clear_on_close": False,
                "notify_on_close": False,
                "close": None,
                "submit": None,
                "previous_view_id": None,
                "root_view_id": (previous or {}).get("root_view_id", view_id),
                "app_id": self.app_id,
                "external_id": "",
                "app_installed_team_id": install.team_id,
                "bot_id": install.bot_id,
            }
            view.update(submitted)
            view["id"] = view_id
            view["hash"] = f"{int(time.time())}.{n:08x}"
            if method == "views.publish":
                view["_published_for"] = params["user_id"]
            self._views[view_id] = view
        echoed = {k: v for k, v in view.items() if not k.startswith("_")}
        return _Answer({"ok": True, "view": echoed})

    # users and conversations

    def _users_info(self, params: dict[str, Any], install: _Install) -> _Answer:
        with self._lock:
            user = self._users.get(params.get("user") or "")
        if user is None:
            return _error("user_not_found")
        include_locale = _flag(params.get("include_locale"))
        return _Answer({"ok": True, "user": _user_object(user, include_locale=include_locale)})

    def _users_list(self, params: dict[str, Any], install: _Install) -> _Answer:
        """Every configured user, in pages of `limit` with Slack's cursor pagination."""
        with self._lock:
            users = sorted(self._users.values(), key=lambda u: u.id)
        limit = int(params.get("limit") or 200)
        start = int(params.get("cursor") or 0)
        page = users[start : start + limit]
        following = start + limit
        cursor = str(following) if following < len(users) else ""
        return _Answer(
            {
                "ok": True,
                "members": [_user_object(u) for u in page],
                "response_metadata": {"next_cursor": cursor},
            }
        )

    def _conversations_info(self, params: dict[str, Any], install: _Install) -> _Answer:
        channel_id = params.get("channel") or ""
        if not channel_id:
            return _error("channel_not_found")
        if channel_id.startswith("D"):
            return _Answer(
                {
                    "ok": True,
                    "channel": {
                        "id": channel_id,
                        "created": 1_700_000_000,
                        "is_im": True,
                        "is_channel": False,
                        "is_private": False,
                        "is_archived": False,
                        "user": "U" + channel_id[1:],
                    },
                }
            )
        channel = self._channel(channel_id)
        if channel.is_private and not channel.is_member:
            return _error("channel_not_found")
        return _Answer({"ok": True, "channel": _channel_json(channel)})

    def _conversations_join(self, params: dict[str, Any], install: _Install) -> _Answer:
        channel_id = params.get("channel") or ""
        if not channel_id:
            return _error("channel_not_found")
        channel = self._channel(channel_id)
        if channel.is_archived:
            return _error("is_archived")
        if channel.is_private:
            return _error("method_not_supported_for_channel_type")
        answer: dict[str, Any] = {"ok": True}
        if channel.is_member:
            answer["warning"] = "already_in_channel"
            answer["response_metadata"] = {"warnings": ["already_in_channel"]}
        with self._lock:
            channel.is_member = True
            self._channels[channel.id] = channel
        answer["channel"] = _channel_json(channel)
        return _Answer(answer)

    def _conversations_open(self, params: dict[str, Any], install: _Install) -> _Answer:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if params.get("channel"):
            return _Answer({"ok": True, "channel": {"id": params["channel"]}})
        if not users:
            return _error("users_list_not_supplied")
        if len(users) == 1:
            channel_id = self.dm_channel_for(users[0])
        else:
            channel_id = "G" + "".join(u[1:] for u in sorted(users))
        with self._lock:
            already_open = channel_id in self._opened_dms
            self._opened_dms.add(channel_id)
        answer: dict[str, Any] = {"ok": True, "channel": {"id": channel_id}}
        if already_open:
            answer.update({"no_op": True, "already_open": True})
        return _Answer(answer)

    def _resolve_channel(self, channel: Any) -> str:
        """Posting to a user id lands in the DM with that user, as in Slack."""
        channel = str(channel or "")
        if channel[:1] in ("U", "W"):
            return self.dm_channel_for(channel)
        return channel

    def _channel(self, channel_id: str) -> FakeChannel:
        with self._lock:
            known = self._channels.get(channel_id)
        if known is not None:
            return known
        return FakeChannel(channel_id, channel_id.lower(), False, False, True)

    def _channel_refusal(self, channel_id: str) -> str | None:
        if not channel_id:
            return "channel_not_found"
        with self._lock:
            channel = self._channels.get(channel_id)
        if channel is None:
            return None
        if not channel.is_member:
            return "channel_not_found" if channel.is_private else "not_in_channel"
        if channel.is_archived:
            return "is_archived"
        return None

    # files

    def _files_get_upload_url(self, params: dict[str, Any], install: _Install) -> _Answer:
        missing = [
            f"missing required field: {k}" for k in ("length", "filename") if not params.get(k)
        ]
        if missing:
            return _invalid_arguments(*missing)
        try:
            length = int(params["length"])
        except ValueError:
            return _invalid_arguments("must be an integer [json-pointer:/length]")
        with self._lock:
            file_id = f"F{next(self._ids):010d}"
            self._uploads[file_id] = Upload(file_id, str(params["filename"]), length)
        return _Answer(
            {
                "ok": True,
                "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
                "file_id": file_id,
            }
        )

    def _files_complete_upload(self, params: dict[str, Any], install: _Install) -> _Answer:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            return _invalid_arguments("missing required field: files")
        channel_id = params.get("channel_id")
        if channel_id:
            refusal = self._channel_refusal(channel_id)
            if refusal:
                return _error(refusal)
        answered = []
        with self._lock:
            for item in files:
                upload = self._uploads.get(item.get("id", ""))
                if upload is None or upload.data is None:
                    return _error("file_not_found")
            for item in files:
                upload = self._uploads[item["id"]]
                upload.title = item.get("title") or upload.filename
                upload.channel_id = channel_id
                upload.thread_ts = params.get("thread_ts")
                upload.initial_comment = params.get("initial_comment")
                upload.completed = True
                answered.append(self._file_json(upload, install))
        return _Answer({"ok": True, "files": answered})

    def _file_json(self, upload: Upload, install: _Install) -> dict[str, Any]:
        mimetype = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
        private = f"https://files.slack.com/files-pri/{install.team_id}-{upload.file_id}/"
        return {
            "id": upload.file_id,
            "created": 1_700_000_000,
            "name": upload.filename,
            "title": upload.title,
            "mimetype": mimetype,
            "filetype": upload.filename.rsplit(".", 1)[-1] if "." in upload.filename else "binary",
            "user": install.bot_user_id,
            "user_team": install.team_id,
            "size": len(upload.data or b""),
            "is_external": False,
            "url_private": private + upload.filename,
            "permalink": f"https://{self.team_domain}.slack.com/files/"
            f"{install.bot_user_id}/{upload.file_id}/{upload.filename}",
        }

    # ids

    def _next_ts(self) -> str:
        with self._lock:
            return self._next_ts_locked()

    def _next_ts_locked(self) -> str:
        self._ts_micros += 100
        return f"{self._ts_micros // 1_000_000}.{self._ts_micros % 1_000_000:06d}"


# ----- Block Kit checks


# What `posts()` shows of a message as it is now.
_SHOWN = ("ts", "text", "blocks", "thread_ts", "streaming_state", "edited")


def _blocks_problems(blocks: list[Any], pointer: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        here = f"{pointer}/{i}"
        found = _block_problems(block, here)
        if isinstance(block, dict) and isinstance(block.get("block_id"), str):
            if block["block_id"] in block_ids:
                found.append((f"{here}/block_id", f"duplicate block_id {block['block_id']!r}"))
            block_ids.add(block["block_id"])
        # The SDK models catch the rest (nested elements included); asked only when our own
        # checks pass so one mistake is reported once.
        problems += found or _model_problems(block, here)
    return problems


def _block_problems(block: Any, here: str) -> list[tuple[str, str]]:
    if not isinstance(block, dict):
        return [(here, "must be an object")]
    kind = block.get("type")
    if kind not in KNOWN_BLOCK_TYPES:
        return [(f"{here}/type", f"unsupported type: {kind}")]
    problems: list[tuple[str, str]] = []
    if kind == "section":
        text = block.get("text")
        if text is not None and not isinstance(text, dict):
            problems.append((f"{here}/text", "must be a text object"))
        elif text is not None:
            problems += _too_long(text, f"{here}/text", SECTION_TEXT_MAX)
        fields = block.get("fields") or []
        if len(fields) > SECTION_FIELDS_MAX:
            problems.append((f"{here}/fields", f"must be no more than {SECTION_FIELDS_MAX} items"))
        for j, item in enumerate(fields):
            problems += _too_long(item, f"{here}/fields/{j}", SECTION_FIELD_TEXT_MAX)
    elif kind == "header":
        text = block.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            problems.append((f"{here}/text", "must be a plain_text object"))
        else:
            problems += _too_long(text, f"{here}/text", HEADER_TEXT_MAX)
    elif kind == "context" and len(block.get("elements") or []) > CONTEXT_ELEMENTS_MAX:
        problems.append((f"{here}/elements", f"must be no more than {CONTEXT_ELEMENTS_MAX} items"))
    for element, at in _objects(block, here):
        if element.get("type") == "button":
            problems += _too_long(element.get("text"), f"{at}/text", BUTTON_TEXT_MAX)
        elif element.get("type") == "plain_text_input":
            for key in ("max_length", "min_length"):
                value = element.get(key)
                if isinstance(value, int) and value > PLAIN_TEXT_INPUT_LENGTH_MAX:
                    problems.append(
                        (f"{at}/{key}", f"must be no more than {PLAIN_TEXT_INPUT_LENGTH_MAX}")
                    )
    return problems


def _too_long(text: Any, pointer: str, limit: int) -> list[tuple[str, str]]:
    if isinstance(text, dict) and len(str(text.get("text", ""))) > limit:
        return [(f"{pointer}/text", f"must be less than {limit + 1} characters")]
    return []


def _objects(node: Any, pointer: str):
    """Every dict inside a block (the block itself excluded), with its json-pointer."""
    children = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in children:
        if isinstance(child, dict | list):
            if isinstance(child, dict):
                yield child, f"{pointer}/{key}"
            yield from _objects(child, f"{pointer}/{key}")


def _model_problems(block: dict[str, Any], here: str) -> list[tuple[str, str]]:
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [(here, "not a block slack_sdk can parse")]
        # to_dict() validates nested elements too; validate_json() checks only the block itself.
        parsed.to_dict()
    except Exception as exc:  # the models raise SlackObjectFormationError, TypeError, ...
        return [(here, f"{type(exc).__name__}: {exc}")]
    return []


def _view_problems(view: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [("/view/type", f"must be modal or home, not {kind!r}")]
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return [("/view/blocks", "missing required field: blocks")]
    if kind == "modal":
        title = view.get("title")
        if not isinstance(title, dict) or not title.get("text"):
            problems.append(("/view/title", "missing required field: title"))
        else:
            problems += _too_long(title, "/view/title", VIEW_TITLE_MAX)
        for key in ("submit", "close"):
            problems += _too_long(view.get(key), f"/view/{key}", VIEW_SUBMIT_CLOSE_MAX)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and not view.get("submit"):
            problems.append(("/view", "must provide submit property when using input blocks"))
    if not 0 < len(blocks) <= VIEW_BLOCKS_MAX:
        problems.append(("/view/blocks", f"must have between 1 and {VIEW_BLOCKS_MAX} items"))
    problems += _blocks_problems(blocks, "/view/blocks")
    if problems:
        return problems
    try:
        View(**view).to_dict()
    except Exception as exc:
        problems.append(("/view", f"{type(exc).__name__}: {exc}"))
    return problems


# ----- wire format


def _parse_params(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """Form, multipart or JSON body (plus query string) -> params, JSON text fields decoded.

    Form values stay strings as sent: the SDK sends booleans as "1"/"0" and numbers as text.
    Raises ValueError for a JSON body that does not parse."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if body:
        if kind == "application/json":
            decoded = json.loads(body)
            if not isinstance(decoded, dict):
                raise ValueError("JSON body is not an object")
            params.update(decoded)
        elif kind == "multipart/form-data":
            params.update(_parse_multipart(content_type, body))
        else:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for key in JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str):
            # Text that does not parse is left as is; the method decides whether that is an error.
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    params: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        params[name] = payload if part.get_filename() else payload.decode("utf-8")
    return params


def _flag(value: Any) -> bool:
    """A boolean argument as clients send it: true/false in JSON, "true"/"1" in a form."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true")


def _bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[len("bearer ") :].strip() or None
    return None


def basic_auth_client_id(call: Call) -> str | None:
    """The client_id an OAuth call authenticated with (the SDK sends HTTP Basic auth)."""
    authorization = next((v for k, v in call.headers.items() if k.lower() == "authorization"), "")
    if not authorization.lower().startswith("basic "):
        return call.params.get("client_id")
    decoded = base64.b64decode(authorization[len("basic ") :]).decode()
    return decoded.split(":", 1)[0]


def _channel_json(channel: FakeChannel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "name_normalized": channel.name,
        "created": 1_700_000_000,
        "creator": "U0INSTALLER",
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_mpim": False,
        "is_private": channel.is_private,
        "is_archived": channel.is_archived,
        "is_general": False,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "is_member": channel.is_member,
    }


def _tz_offset(tz: str) -> int:
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset else 0


def _send(
    request: _Handler,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(body)

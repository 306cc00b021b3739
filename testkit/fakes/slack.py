"""A local HTTP fake of the Slack Web API that a real `slack_sdk.WebClient` talks to.

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        client.chat_postMessage(channel="C1", text="hi", blocks=[...])
        assert slack.calls_to("chat.postMessage")[0].params["blocks"][0]["type"] == "section"
        assert slack.violations == []

It answers with Slack's wire format (HTTP 200 + `{"ok": false, "error": ...}` for API errors,
HTTP 429 + `Retry-After` for rate limits), records every call, checks payloads against
Slack's limits and lets a test script failures. Only the standard library and slack_sdk.

What real Slack refuses, the fake refuses, each rule citing the page it follows: Block Kit
limits (slack_blocks), membership and scopes (here and slack_chat), installs, Grid and token
rotation (slack_installs), rate tiers, triggers, response_urls and stream chunks (slack_rules).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from .slack_blocks import _view_problems  # noqa: F401 - re-exported for tests
from .slack_chat import STREAM_TIME_LIMIT_SECONDS, ChatMethods
from .slack_installs import (
    DEFAULT_SCOPES,
    ROTATED_TOKEN_TTL_SECONDS,
    Install,
    TokenBook,
)
from .slack_objects import FakeChannel, FakeUser, Upload
from .slack_record import ScriptsAndRecords, _Script
from .slack_rules import RateTiers, ResponseUrls, Triggers
from .slack_usergroups import UsergroupMethods
from .slack_wire import (
    Call,
    _Answer,
    _bearer_token,
    _error,
    _Handler,
    _parse_params,
    _send,
    _Server,
    basic_auth_client_id,
)
from .slack_workspace import FILES_PATH, WorkspaceMethods

__all__ = [
    "DEFAULT_SCOPES",
    "Call",
    "FakeChannel",
    "FakeSlack",
    "FakeUser",
    "Install",
    "Upload",
    "basic_auth_client_id",
]

# Methods that send no bot token: OAuth authenticates the app with client_id/secret instead.
TOKENLESS_METHODS = {"oauth.v2.access", "oauth.access", "oauth.v2.exchange"}
# Slack reads only form fields on these; a JSON body arrives as "missing required field".
FORM_ONLY_METHODS = {"files.getUploadURLExternal"}


class FakeSlack(ScriptsAndRecords, ChatMethods, WorkspaceMethods, UsergroupMethods):
    """The Slack Web API on 127.0.0.1, started by `with FakeSlack() as slack:`.

    Channels and users not configured with add_channel/add_user behave as follows: an unknown
    channel is a public channel the bot is in; an unknown user is `user_not_found`. A token
    the fake never issued belongs to the default install (the workspace `team_id`).

    The default install can be of an Enterprise Grid workspace (`enterprise_id`), of a whole
    org (`org_install=True`), have other `scopes`, or rotate its tokens (`token_rotation=True`,
    each expiring after `token_ttl` seconds). `tiers=True` enforces Slack's rate tiers.
    `clock` (default time.monotonic) is what token, trigger, response_url and rate rules
    read, so a test can move time on.
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
        enterprise_id: str | None = None,
        enterprise_name: str | None = None,
        org_install: bool = False,
        scopes: str = DEFAULT_SCOPES,
        token_rotation: bool = False,
        token_ttl: float = ROTATED_TOKEN_TTL_SECONDS,
        tiers: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if org_install and not enterprise_id:
            raise ValueError("an org-wide install belongs to an enterprise: pass enterprise_id")
        self.team_domain = team_domain
        self.app_id = app_id
        self.clock = clock
        self._default_install = Install(
            team_id,
            team_name,
            bot_user_id,
            bot_id,
            enterprise_id=enterprise_id,
            enterprise_name=enterprise_name,
            is_enterprise_install=org_install,
            scopes=scopes,
            rotate_tokens=token_rotation,
            token_ttl=token_ttl,
        )
        self.tokens = TokenBook(clock)
        self.rate_tiers = RateTiers(clock)
        self.triggers = Triggers(clock)
        self.response_urls = ResponseUrls(clock)
        self._tiers_enforced = tiers
        self.oauth_response: dict[str, Any] = {
            "ok": True,
            "app_id": app_id,
            "authed_user": {"id": "U0INSTALLER"},
            "scope": scopes,
            "token_type": "bot",
            # Not shaped like a real token, so secret scanners leave the repository alone.
            "access_token": f"xoxb-{team_id}-fake-bot-token",
            "bot_user_id": bot_user_id,
            **self._default_install.oauth_fields(),
        }
        self._lock = threading.Condition()
        self._calls: list[Call] = []
        self._violations: list[str] = []
        self._tier_refusals: list[Call] = []
        self._scripts: list[_Script] = []
        self._stubs: dict[str, dict[str, Any]] = {}
        self._users: dict[str, FakeUser] = {}
        self._channels: dict[str, FakeChannel] = {}
        self._opened_dms: set[str] = set()
        self._uploads: dict[str, Upload] = {}
        self._uploaded_by: dict[str, str] = {}  # file id -> the member who picked it
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

    def is_member(self, channel_id: str) -> bool:
        """Whether the app is in a conversation, so whether Slack would deliver an app_mention
        from it (https://docs.slack.dev/reference/events/app_mention: "If your app is mentioned
        but not part of a conversation (and not invited to join), you won't receive an
        event."). A DM or an unknown channel counts as joined, as every rule here takes it."""
        return self._channel(channel_id).is_member

    @property
    def install(self) -> Install:
        """The default install: its team, enterprise, scopes and token rotation."""
        return self._default_install

    def rotate_tokens(self, ttl_seconds: float = ROTATED_TOKEN_TTL_SECONDS) -> None:
        """From now on oauth.v2.access hands the default install expiring `xoxe.xoxb-` tokens
        and `xoxe-1-` refresh tokens (https://docs.slack.dev/authentication/using-token-rotation),
        each access token good for `ttl_seconds` (Slack: 12 hours)."""
        self._default_install = replace(
            self._default_install, rotate_tokens=True, token_ttl=ttl_seconds
        )

    def expire_tokens(self) -> None:
        """Every expiring access token issued so far expires now: the next call with one
        answers `token_expired`."""
        self.tokens.expire_all()

    @property
    def refreshes(self) -> int:
        """How many refresh tokens were exchanged for new tokens."""
        return self.tokens.refreshes

    @property
    def reused_refresh_tokens(self) -> list[str]:
        """Refresh tokens used after they were revoked (each use listed): [] means no process
        ever used a revoked refresh token."""
        with self.tokens._lock:
            return list(self.tokens.reused_refresh_tokens)

    def enforce_tiers(self, on: bool = True) -> None:
        """Refuse calls past each method's rate tier with HTTP 429, as Slack does."""
        self._tiers_enforced = on

    @property
    def tier_refusals(self) -> list[Call]:
        """Calls refused with 429 by the rate tiers (not by `rate_limit` scripts)."""
        with self._lock:
            return list(self._tier_refusals)

    def new_trigger(self) -> str:
        """A trigger_id issued now, as Slack puts one in an interaction payload: it opens one
        view within three seconds (see slack_rules.Triggers)."""
        return self.triggers.issue()

    def new_response_url(self) -> str:
        """A response_url issued now: five uses within thirty minutes."""
        return f"http://127.0.0.1:{self.port}" + self.response_urls.issue()

    def reset(self) -> None:
        """Forget calls, violations, uploads, views, messages, unused scripted failures,
        triggers, response_url uses and rate windows; users, channels, stubs, installs, tokens
        and the OAuth answer stay."""
        self.triggers.clear()
        self.response_urls.clear()
        self.rate_tiers.clear()
        with self._lock:
            self._calls.clear()
            self._violations.clear()
            self._tier_refusals.clear()
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
            elif url.path.startswith(FILES_PATH):
                self._download(request, url.path, headers)
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
        install, refusal = self._install_for(token)
        if answer is None:
            answer = (
                self._scripted(method, params)
                or self._tier_refusal(method, params, install, token)
                or (_error(refusal) if refusal and method not in TOKENLESS_METHODS else None)
                or self._answer(method, params, token, install, is_json)
            )
        outcome = answer.outcome
        if outcome is None:
            outcome = "ok" if answer.body.get("ok") else str(answer.body.get("error"))  # type: ignore[union-attr]
        call = Call(method, params, token, arrived, outcome, answer.status, headers)
        with self._lock:
            self._calls.append(call)
            if answer.outcome == "ratelimited":
                self._tier_refusals.append(call)
            self._lock.notify_all()
        if isinstance(answer.body, bytes):
            _send(request, answer.status, answer.body, "text/html; charset=utf-8", answer.headers)
        else:
            extra = {"X-OAuth-Scopes": install.scopes, **answer.headers}
            payload = json.dumps(answer.body).encode()
            _send(request, answer.status, payload, "application/json; charset=utf-8", extra)

    def _tier_refusal(
        self, method: str, params: dict[str, Any], install: Install, token: str | None
    ) -> _Answer | None:
        """HTTP 429 past the method's rate tier (slack_rules.METHOD_TIERS), as the rate limits
        page says Slack answers: "Slack will start returning a HTTP 429 Too Many Requests
        error, a JSON object containing the number of calls you have been making, and a
        Retry-After header containing the number of seconds until you can retry."; every method
        lists "ratelimited | The request has been ratelimited. Refer to the Retry-After header
        for when to retry the request." """
        if not self._tiers_enforced or (method not in TOKENLESS_METHODS and not token):
            return None
        retry_after = self.rate_tiers.take(install.rate_key, method, params)
        if retry_after is None:
            return None
        return _Answer(
            {"ok": False, "error": "ratelimited"},
            429,
            {"Retry-After": str(retry_after)},
            "ratelimited",
        )

    def _response_url_post(
        self, request: _Handler, path: str, headers: dict[str, str], body: bytes, arrived: float
    ) -> None:
        """A message sent to an interaction's response_url (Bolt's `respond`): recorded as
        a call to the pseudo-method "response_url", its blocks checked like any message. Past
        five uses or thirty minutes (slack_rules.ResponseUrls) it is refused and a violation."""
        params = json.loads(body or b"{}")
        params["_path"] = path
        refused = self.response_urls.use(path)
        if refused is not None:
            self._violation(f"response_url {path}: {refused} (5 uses within 30 minutes)")
            with self._lock:
                self._calls.append(Call("response_url", params, None, arrived, refused, 404))
                self._lock.notify_all()
            _send(request, 404, refused.encode(), "text/plain; charset=utf-8")
            return
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
                upload.sent_at = time.monotonic()
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
        self,
        method: str,
        params: dict[str, Any],
        token: str | None,
        install: Install,
        is_json: bool,
    ) -> _Answer:
        if method not in TOKENLESS_METHODS and not token:
            return _error("not_authed")
        if is_json and method in FORM_ONLY_METHODS:
            params = {}  # Slack ignores JSON bodies here
        handler = self._handlers().get(method)
        if handler is not None:
            return handler(params, install)
        with self._lock:
            stubbed = self._stubs.get(method)
        if stubbed is not None:
            return _Answer(dict(stubbed))
        return _error("unknown_method", req_method=method)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any], Install], _Answer]]:
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
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
        }

    def _install_for(self, token: str | None) -> tuple[Install, str | None]:
        """The install a token belongs to, and `token_expired` once a rotated token's time
        is up: chat.postMessage and every other method list "token_expired | Authentication
        token has expired." A token the fake never issued is the default install's."""
        install, refusal = self.tokens.install_for(token or "")
        return install or self._default_install, refusal

    # ids

    def _next_ts(self) -> str:
        with self._lock:
            return self._next_ts_locked()

    def _next_ts_locked(self) -> str:
        self._ts_micros += 100
        return f"{self._ts_micros // 1_000_000}.{self._ts_micros % 1_000_000:06d}"

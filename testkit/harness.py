"""ColdCopy served for real over HTTP, wired to the local Slack and Anthropic fakes (its
in-process pool on a clock a test may move), with a client that sends Slack's signed requests
(slash commands, view submissions, clicks, events) as Slack sends them."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier
from waitress import wasyncore
from waitress.server import create_server

from bot.core.clock import SYSTEM_CLOCK, Clock
from bot.core.settings import cannot_listen
from bot.runtime.wiring import build_services, start_dispatcher
from bot.runtime.wsgi import MAX_REQUEST_BYTES, make_wsgi_app
from bot.slack import constants as K
from bot.slack.services import Services
from testkit.fakes.slack import FakeSlack

SIGNING_SECRET = "test-signing-secret"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict
    # What the request carried, for a test to find what the app did with it.
    trigger_id: str | None = None
    response_url: str | None = None

    def json(self) -> dict:
        return json.loads(self.body) if self.body else {}


class SignedSlackClient:
    """Sends what Slack sends: signed slash commands, view submissions, clicks and events.

    Given its FakeSlack (`slack`), each interaction's trigger_id and response_url are issued by
    the fake when the request is built, as Slack issues them, so the three-second trigger and
    the five uses of a response_url count from there; without one they are numbered
    ("trigger-N", ".../commands/N") and the fake takes each as issued at its first use. In an
    Enterprise Grid workspace (`enterprise_id`) every payload names the enterprise where Slack
    puts it; `is_enterprise_install` marks an org-wide install."""

    def __init__(
        self,
        url: str,
        signing_secret: str = SIGNING_SECRET,
        team_id: str = "T0001",
        *,
        slack: FakeSlack | None = None,
        enterprise_id: str | None = None,
        enterprise_name: str | None = None,
        is_enterprise_install: bool = False,
    ):
        self.url = url
        self.verifier = SignatureVerifier(signing_secret)
        self.team_id = team_id
        self.slack = slack
        self.enterprise_id = enterprise_id
        self.enterprise_name = enterprise_name or enterprise_id
        self.is_enterprise_install = is_enterprise_install
        self.timeout = 30.0  # seconds before a request counts as hung
        self._ids = itertools.count(1)

    # -- raw HTTP ------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict | None = None,
        *,
        timeout: float | None = None,
    ):
        timeout = self.timeout if timeout is None else timeout
        req = urllib.request.Request(self.url + path, data=body or None, method=method)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Reply(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read(), dict(err.headers))

    def signed(
        self,
        body: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
        retry_num=None,
    ) -> tuple[bytes, dict[str, str]]:
        """`body` and the headers Slack sends with it (signed now, unless told otherwise)."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        signature = signature or self.verifier.generate_signature(
            timestamp=str(timestamp), body=body
        )
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature,
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return body.encode(), headers

    def signed_post(self, body: str, **signing) -> Reply:
        return self.request("POST", "/slack/events", *self.signed(body, **signing))

    # -- what Slack issues with an interaction -------------------------------------------

    response_base = "http://127.0.0.1:9/response"  # without a FakeSlack: nowhere

    def new_trigger(self, n: int) -> str:
        return self.slack.new_trigger() if self.slack else f"trigger-{n}"

    def new_response_url(self, kind: str, n: int) -> str:
        if self.slack:
            return self.slack.new_response_url()
        return f"{self.response_base}/{kind}/{n}"

    def _enterprise(self) -> dict | None:
        """An interaction payload's `enterprise` ({id, name} in Grid, else null)."""
        if self.enterprise_id is None:
            return None
        return {"id": self.enterprise_id, "name": self.enterprise_name}

    # -- Slack's payloads ----------------------------------------------------------------

    def slash_fields(self, text: str = "", *, user: str = "U1", channel: str = "C1") -> dict:
        """The form Slack posts for `/coldcopy TEXT`."""
        n = next(self._ids)
        fields = {"token": "legacy", "team_id": self.team_id, "team_domain": "coldcopy-test"}
        if self.enterprise_id is not None:
            fields |= {"enterprise_id": self.enterprise_id, "enterprise_name": self.enterprise_name}
        return fields | {
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": K.COMMAND,
            "text": text,
            "api_app_id": "A0COLDCOPY",
            "is_enterprise_install": str(self.is_enterprise_install).lower(),
            "response_url": self.new_response_url("commands", n),
            "trigger_id": self.new_trigger(n),
        }

    def slash(self, text: str = "", *, user: str = "U1", channel: str = "C1", **kw) -> Reply:
        fields = self.slash_fields(text, user=user, channel=channel)
        reply = self.signed_post(urlencode(fields), **kw)
        return replace(reply, trigger_id=fields["trigger_id"], response_url=fields["response_url"])

    @staticmethod
    def interaction_body(payload: dict) -> str:
        return urlencode({"payload": json.dumps(payload)})

    def interact(self, payload: dict, **kw) -> Reply:
        reply = self.signed_post(self.interaction_body(payload), **kw)
        return replace(
            reply, trigger_id=payload.get("trigger_id"), response_url=payload.get("response_url")
        )

    def _interaction(self, kind: str, user: str, n: int) -> dict:
        """What every interaction payload starts with: who, where, and its trigger."""
        return {
            "type": kind,
            "team": {"id": self.team_id, "domain": "coldcopy-test"},
            "enterprise": self._enterprise(),
            "is_enterprise_install": self.is_enterprise_install,
            "user": {"id": user, "team_id": self.team_id, "name": user.lower()},
            "api_app_id": "A0COLDCOPY",
            "token": "legacy",
            "trigger_id": self.new_trigger(n),
        }

    @staticmethod
    def view_state(view: dict, values: dict, *, channel: str | None = "C1") -> dict:
        """The `state.values` Slack sends when `view`'s inputs hold `values`."""
        state: dict = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            block_id = block["block_id"]
            element = block["element"]
            action_id = element["action_id"]
            if element["type"] == "plain_text_input":
                state[block_id] = {
                    action_id: {"type": "plain_text_input", "value": values.get(block_id)}
                }
            elif element["type"] == "static_select":
                # As typed by the test, else what the view opened with (tone, language, ...).
                picked = values.get(block_id, (element.get("initial_option") or {}).get("value"))
                state[block_id] = {
                    action_id: {
                        "type": "static_select",
                        "selected_option": {
                            "text": {"type": "plain_text", "text": picked},
                            "value": picked,
                        }
                        if picked
                        else None,
                    }
                }
            elif element["type"] == "file_input":
                # The files the member picked, as file objects (FakeSlack.add_user_file).
                files = values.get(block_id) or []
                state[block_id] = {action_id: {"type": "file_input", "files": files}}
            elif element["type"] == "conversations_select":
                picked = values.get("channel", channel)
                state[block_id] = {
                    action_id: {"type": "conversations_select", "selected_conversation": picked}
                }
        return state

    def submission(
        self,
        view: dict,
        values: dict,
        *,
        user: str = "U1",
        view_id: str | None = None,
        channel: str | None = "C1",
    ) -> dict:
        """The payload Slack posts when `view` (as the app opened it) is submitted with
        `values`: block id -> typed text or the picked option's value (e.g. "tone",
        "language"), plus optional "channel"."""
        state = self.view_state(view, values, channel=channel)
        submitted = dict(view)
        submitted.update(
            id=view_id or view.get("id") or f"V{next(self._ids):06d}",
            team_id=self.team_id,
            state={"values": state},
            hash="h",
        )
        payload = self._interaction("view_submission", user, next(self._ids))
        return {**payload, "view": submitted, "response_urls": []}

    def submit(self, view: dict, values: dict, **kw) -> Reply:
        """Submit `view` with `values` (see `submission`)."""
        return self.interact(self.submission(view, values, **kw))

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        message_ts: str = "1700000000.000100",
        view: dict | None = None,
    ) -> Reply:
        action = {"action_id": action_id, "block_id": "b", "value": value, "type": "button"}
        return self.act(action, user=user, channel=channel, message_ts=message_ts, view=view)

    def choose(self, action_id: str, value: str, *, label: str = "", **kw) -> Reply:
        """Pick an option of a static select menu, as Slack sends the choice."""
        action = {
            "action_id": action_id,
            "block_id": "b",
            "type": "static_select",
            "selected_option": {"text": {"type": "plain_text", "text": label}, "value": value},
        }
        return self.act(action, **kw)

    def act(
        self,
        action: dict,
        *,
        user: str = "U1",
        channel: str = "C1",
        message_ts: str = "1700000000.000100",
        view: dict | None = None,
    ) -> Reply:
        """A block action in a message, or in `view` (a modal or the Home tab): as in Slack,
        only a message's actions come with a response_url."""
        n = next(self._ids)
        payload = self._interaction("block_actions", user, n)
        payload["actions"] = [{**action, "action_ts": f"{time.time():.6f}"}]
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view["id"]}
            payload["view"] = view
        else:
            payload["response_url"] = self.new_response_url("actions", n)
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": channel, "name": "general"}
            payload["message"] = {"ts": message_ts, "text": "", "type": "message"}
        return self.interact(payload)

    def event(self, event: dict, *, event_id: str = "Ev1", retry_num=None) -> Reply:
        body = {
            "token": "legacy",
            "team_id": self.team_id,
            "api_app_id": "A0COLDCOPY",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id,
                    "team_id": self.team_id,
                    "user_id": "U0BOT",
                    "is_bot": True,
                    "is_enterprise_install": self.is_enterprise_install,
                }
            ],
        }
        if self.enterprise_id is not None:
            body["enterprise_id"] = self.enterprise_id
        return self.signed_post(
            json.dumps(body), content_type="application/json", retry_num=retry_num
        )


def make_server(app, *, host: str, port: int, threads: int):
    """A waitress server bound to host:port, in this process (serve itself runs gunicorn).

    waitress buffers a body before calling the app, so its own cap refuses an oversized one
    from its Content-Length (or while de-chunking) before reading it."""
    try:
        return create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="coldcopy",
            max_request_body_size=MAX_REQUEST_BYTES + 1,
        )
    except OSError as exc:
        raise cannot_listen(host, port, exc) from None


def close_server(server) -> None:
    """Stop a waitress server from any thread: close its sockets inside its own loop."""
    with contextlib.suppress(OSError):  # already closed
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map, ignore_all=True))
    server.task_dispatcher.shutdown()


class ServedApp(SignedSlackClient):
    """`coldcopy serve`'s WSGI app on a free port, in a background thread of this process;
    a SignedSlackClient of it (`slack`, `enterprise_id`, ... as that client takes them). The
    in-process pool keeps its leases and announces waiting generations on `clock`."""

    def __init__(self, settings, engine, clock: Clock = SYSTEM_CLOCK, **client):
        self.services: Services = build_services(settings, engine=engine)
        self.dispatcher = start_dispatcher(self.services, clock)
        self.server = make_server(make_wsgi_app(self.services), host="127.0.0.1", port=0, threads=8)
        super().__init__(
            f"http://127.0.0.1:{self.server.effective_port}",
            settings.slack_signing_secret or SIGNING_SECRET,
            **client,
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        close_server(self.server)
        self.dispatcher.shutdown(grace=30)
        self.thread.join(timeout=5)
        self.services.close()

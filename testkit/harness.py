"""ColdCopy served for real over HTTP, wired to the local Slack and Anthropic fakes, with a
client that sends Slack's signed requests (slash commands, view submissions, clicks)."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier
from waitress import wasyncore
from waitress.server import create_server

from bot.core.settings import cannot_listen
from bot.runtime.wiring import build_services, start_dispatcher
from bot.runtime.wsgi import MAX_REQUEST_BYTES, make_wsgi_app
from bot.slack import constants as K
from bot.slack.services import Services

SIGNING_SECRET = "test-signing-secret"

# A valid brief, as a user would type it: for tests and benchmarks alike.
SAMPLE_BRIEF = {
    "company": "Northwind Logistics",
    "job_title": "Head of Operations",
    "problem": "Dispatchers re-key every order into three systems.",
    "product": "RouteSync connects order intake to dispatch.",
    "benefit": "Cuts order handling time by 40%.",
    "call_to_action": "A 15-minute call next week",
}


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict

    def json(self) -> dict:
        return json.loads(self.body) if self.body else {}


class SignedSlackClient:
    """Sends what Slack sends: signed slash commands, view submissions, clicks and events."""

    def __init__(self, url: str, signing_secret: str = SIGNING_SECRET, team_id: str = "T0001"):
        self.url = url
        self.verifier = SignatureVerifier(signing_secret)
        self.team_id = team_id
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

    def signed_post(
        self,
        body: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
        retry_num=None,
    ):
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
        return self.request("POST", "/slack/events", body.encode(), headers)

    # -- Slack's payloads ----------------------------------------------------------------

    def slash(self, text: str = "", *, user: str = "U1", channel: str = "C1", **kw) -> Reply:
        n = next(self._ids)
        body = urlencode(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "team_domain": "coldcopy-test",
                "channel_id": channel,
                "channel_name": "general",
                "user_id": user,
                "user_name": user.lower(),
                "command": K.COMMAND,
                "text": text,
                "api_app_id": "A0COLDCOPY",
                "response_url": f"{self.response_base}/commands/{n}",
                "trigger_id": f"trigger-{n}",
            }
        )
        return self.signed_post(body, **kw)

    response_base = "http://127.0.0.1:9/response"  # set to FakeSlack.response_url_base

    def interact(self, payload: dict, **kw) -> Reply:
        return self.signed_post(urlencode({"payload": json.dumps(payload)}), **kw)

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
            elif element["type"] == "conversations_select":
                picked = values.get("channel", channel)
                state[block_id] = {
                    action_id: {"type": "conversations_select", "selected_conversation": picked}
                }
        return state

    def submit(
        self,
        view: dict,
        values: dict,
        *,
        user: str = "U1",
        view_id: str | None = None,
        channel: str | None = "C1",
    ) -> Reply:
        """Submit `view` (as the app opened it) with `values`: block id -> typed text or the
        picked option's value (e.g. "tone", "language"), plus optional "channel"."""
        state = self.view_state(view, values, channel=channel)
        submitted = dict(view)
        submitted.update(
            id=view_id or view.get("id") or f"V{next(self._ids):06d}",
            team_id=self.team_id,
            state={"values": state},
            hash="h",
        )
        return self.interact(
            {
                "type": "view_submission",
                "team": {"id": self.team_id, "domain": "coldcopy-test"},
                "user": {"id": user, "team_id": self.team_id, "name": user.lower()},
                "api_app_id": "A0COLDCOPY",
                "token": "legacy",
                "trigger_id": f"trigger-{next(self._ids)}",
                "view": submitted,
                "response_urls": [],
            }
        )

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
        n = next(self._ids)
        payload = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "coldcopy-test"},
            "user": {"id": user, "team_id": self.team_id, "name": user.lower()},
            "api_app_id": "A0COLDCOPY",
            "token": "legacy",
            "trigger_id": f"trigger-{n}",
            "response_url": f"{self.response_base}/actions/{n}",
            "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view["id"]}
            payload["view"] = view
        else:
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
            "authorizations": [{"team_id": self.team_id, "user_id": "U0BOT", "is_bot": True}],
        }
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
    """`coldcopy serve`'s WSGI app on a free port, in a background thread of this process."""

    def __init__(self, settings, engine):
        self.services: Services = build_services(settings, engine=engine)
        self.dispatcher = start_dispatcher(self.services)
        self.server = make_server(make_wsgi_app(self.services), host="127.0.0.1", port=0, threads=8)
        super().__init__(
            f"http://127.0.0.1:{self.server.effective_port}",
            settings.slack_signing_secret or SIGNING_SECRET,
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

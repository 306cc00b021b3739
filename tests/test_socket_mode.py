"""`coldcopy socket` end to end: the real process connects to a local WebSocket server that
speaks Socket Mode's envelopes (hello, slash_commands, interactive), acks each envelope, and
writes the sequence through the fake Slack Web API."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from websockets.sync.server import serve

from bot.slack import constants as K
from testkit.briefs import SAMPLE_BRIEF
from testkit.fakes.anthropic import FakeAnthropic
from testkit.fakes.slack import FakeSlack
from testkit.harness import SignedSlackClient
from testkit.processes import clean_env
from testkit.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


class FakeSocketMode:
    """Socket Mode's WebSocket end: sends envelopes, collects the app's acks."""

    def __init__(self):
        self.connected = threading.Event()
        self.outbox: queue.Queue = queue.Queue()
        self.acks: dict[str, dict] = {}
        self._server = serve(self._session, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def _session(self, ws) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {}}))
        self.connected.set()
        while True:
            try:
                envelope = self.outbox.get(timeout=0.05)
                ws.send(json.dumps(envelope))
            except queue.Empty:
                pass
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except Exception:
                return  # the app disconnected
            data = json.loads(message)
            if "envelope_id" in data:
                self.acks[data["envelope_id"]] = data

    def send(self, envelope_id: str, kind: str, payload: dict) -> dict:
        self.outbox.put(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "accepts_response_payload": True,
                "payload": payload,
            }
        )
        wait_until(lambda: envelope_id in self.acks, timeout=15)
        return self.acks[envelope_id]


def test_socket_mode_takes_a_command_and_a_submission_and_writes_the_thread(tmp_path):
    with FakeSlack() as slack, FakeAnthropic() as claude, FakeSocketMode() as socket_mode:
        slack.add_user("U1")
        slack.stub("apps.connections.open", {"ok": True, "url": socket_mode.url})
        env = clean_env(
            PYTHONPATH=str(ROOT),
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_APP_TOKEN="xapp-test",
            SLACK_API_URL=slack.base_url,
            ANTHROPIC_API_KEY="sk-ant-test",
            ANTHROPIC_BASE_URL=claude.base_url,
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.runtime.cli", "socket"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert socket_mode.connected.wait(30), "coldcopy socket never connected"
            assert slack.calls_to("apps.connections.open")[0].token == "xapp-test"

            command = {
                "token": "legacy",
                "team_id": "T0001",
                "team_domain": "coldcopy-test",
                "channel_id": "C1",
                "user_id": "U1",
                "command": K.COMMAND,
                "text": "",
                "api_app_id": "A0COLDCOPY",
                "response_url": f"{slack.response_url_base}/socket/1",
                "trigger_id": "trigger-socket-1",
            }
            socket_mode.send("env-command", "slash_commands", command)
            opened = slack.wait_for("views.open")[0]
            assert opened.params["trigger_id"] == "trigger-socket-1"

            view = dict(opened.params["view"], id="VSOCKET", team_id="T0001", hash="h")
            state = SignedSlackClient.view_state(view, SAMPLE_BRIEF, channel="C1")
            claude.enqueue_sequence()
            ack = socket_mode.send(
                "env-submit",
                "interactive",
                {
                    "type": "view_submission",
                    "team": {"id": "T0001", "domain": "coldcopy-test"},
                    "user": {"id": "U1", "team_id": "T0001"},
                    "api_app_id": "A0COLDCOPY",
                    "view": dict(view, state={"values": state}),
                },
            )
            assert ack["payload"]["response_action"] == "update"
            assert "Writing your sequence" in json.dumps(ack["payload"]["view"])
            posts = slack.wait_for_posts(8, timeout=20)
            assert {p.params["channel"] for p in posts} == {"C1"}
            assert slack.violations == []
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

"""The local FakeSlack in a process of its own, so the Web API calls the app makes after its
ack (views.open) cost the fake's CPU, not the load generator's GIL.

The parent drives it over stdin/stdout, one line each way: `count <method>`, `opened` (JSON:
trigger id -> when views.open arrived, on the machine-wide monotonic clock), `thread <n>`
(JSON: the messages posted and updated from the n-th call on, see `Message`), `responded`
(JSON: response_url path -> the text posted to it), `reset`, `violations`, `latency <s>`;
closing stdin stops it.

`latency` (seconds) holds every request (Web API calls and response_url posts alike) that long
before the fake looks at it, as a real round trip to Slack would: the whole round trip is
counted before Slack sees the call, the strictest reading for a trigger's 3 seconds.
`known_users` makes everyone who is looked up with users.info exist (Slack's own users do),
so the app can remember what it learned instead of asking again after `user_not_found`.
`remember_views` checks each distinct view once: the fake's full check of a modal (slack_sdk's
models, twice per views.open) costs ~4 ms of the cores it shares with the app, which real
Slack's checks never do; the same view still gets the same verdict. `keep_alive` keeps a
client's connection open between calls (HTTP/1.1), as Slack's servers do, instead of a new
connection (and a new thread of the fake) per call; a client that closes each one still can.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.services import ROOT
from testkit.fakes.slack import FakeSlack


class FakeSlackProcess:
    """`with FakeSlackProcess() as slack:` -> `slack.base_url`, `slack.count("views.open")`."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        known_users: bool = False,
        remember_views: bool = False,
        keep_alive: bool = False,
    ):
        self.options = [f"--latency={latency}"]
        self.options += ["--known-users"] if known_users else []
        self.options += ["--remember-views"] if remember_views else []
        self.options += ["--keep-alive"] if keep_alive else []

    def __enter__(self) -> FakeSlackProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_slack_process", *self.options],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.base_url, self.response_base = self.proc.stdout.readline().split()
        return self

    def _ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def count(self, method: str) -> int:
        return int(self._ask(f"count {method}"))

    def opened(self) -> dict[str, float]:
        """trigger_id -> time.monotonic() at which views.open with it reached the fake."""
        return json.loads(self._ask("opened"))

    def messages(self, since: int = 0) -> tuple[list[dict], int]:
        """The chat.postMessage, chat.update and chat.startStream calls from the `since`-th call
        on, each as {method, channel, thread_ts, text, state, at}; and the index to ask from
        next time.
        `state` is "finished" or "failed" for a parent update that says so, else ""."""
        answer = json.loads(self._ask(f"thread {since}"))
        return answer["messages"], answer["next"]

    def responded(self) -> dict[str, str]:
        """response_url path (e.g. /response/commands/12) -> the text the app posted there."""
        return json.loads(self._ask("responded"))

    def violations(self) -> int:
        return int(self._ask("violations"))

    def reset(self) -> None:
        self._ask("reset")

    def set_latency(self, seconds: float) -> None:
        """From now on every request is answered `seconds` later (a Slack that far away)."""
        self._ask(f"latency {seconds}")

    def __exit__(self, *exc_info) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _messages(slack, since: int) -> dict:
    calls = slack.calls
    messages = []
    for call in calls[since:]:
        if call.method not in ("chat.postMessage", "chat.update", "chat.startStream"):
            continue
        if not call.ok:
            continue
        blocks = str(call.params.get("blocks", ""))
        # The parent's progress line: a check mark once finished, a warning once failed.
        state = (
            "finished"
            if ":white_check_mark:" in blocks
            else "failed"
            if ":warning:" in blocks
            else ""
        )
        messages.append(
            {
                "method": call.method,
                "channel": call.params.get("channel"),
                "thread_ts": call.params.get("thread_ts"),
                "text": str(call.params.get("text", ""))[:60],
                "state": state,
                "at": call.at,
            }
        )
    return {"messages": messages, "next": len(calls)}


def distant_fake_slack(latency: float, known_users: bool, remember_views: bool, keep_alive: bool):
    """The FakeSlack, `latency` seconds away; with `known_users`, everyone looked up exists;
    with `remember_views`, each distinct view is checked once; with `keep_alive`, connections
    stay open between calls."""
    import testkit.fakes.slack_wire
    import testkit.fakes.slack_workspace

    if keep_alive:
        testkit.fakes.slack_wire._Handler.protocol_version = "HTTP/1.1"  # every answer has a length

    if remember_views:
        check = testkit.fakes.slack_workspace._view_problems
        verdicts: dict[str, list] = {}

        def remembered_check(view: dict) -> list:
            key = json.dumps(view, sort_keys=True)
            if key not in verdicts:
                verdicts[key] = check(view)
            return list(verdicts[key])

        testkit.fakes.slack_workspace._view_problems = remembered_check

    class DistantFakeSlack(FakeSlack):
        def _handle(self, request) -> None:
            if self.latency:
                time.sleep(self.latency)
            super()._handle(request)

        def _users_info(self, params, install):
            user_id = params.get("user") or ""
            if known_users and user_id.startswith(("U", "W")) and user_id not in self._users:
                self.add_user(user_id)
            return super()._users_info(params, install)

    slack = DistantFakeSlack()
    slack.latency = latency
    return slack


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--known-users", action="store_true")
    parser.add_argument("--remember-views", action="store_true")
    parser.add_argument("--keep-alive", action="store_true")
    args = parser.parse_args(argv)
    options = (args.latency, args.known_users, args.remember_views, args.keep_alive)
    with distant_fake_slack(*options) as slack:
        print(slack.base_url, slack.response_url_base, flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "count":
                answer = str(len(slack.calls_to(argument)))
            elif command == "opened":
                answer = json.dumps(
                    {c.params.get("trigger_id"): c.at for c in slack.calls_to("views.open")}
                )
            elif command == "thread":
                answer = json.dumps(_messages(slack, int(argument or 0)))
            elif command == "responded":
                answer = json.dumps(
                    {
                        c.params.get("_path"): c.params.get("text")
                        for c in slack.calls_to("response_url")
                    }
                )
            elif command == "violations":
                answer = str(len(slack.violations))
            elif command == "reset":
                slack.reset()
                answer = "ok"
            elif command == "latency":
                slack.latency = float(argument)
                answer = "ok"
            else:
                answer = "?"
            print(answer, flush=True)


if __name__ == "__main__":
    main()

"""The local FakeSlack in a process of its own, so the Web API calls the app makes after its
ack (views.open) cost the fake's CPU, not the load generator's GIL.

The parent drives it over stdin/stdout, one line each way: `count <method>`, `opened` (JSON:
trigger id -> when views.open arrived, on the machine-wide monotonic clock), `thread <n>`
(JSON: the messages posted and updated from the n-th call on, see `Message`), `responded`
(JSON: response_url path -> the text posted to it), `reset`, `violations`; closing stdin stops
it.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.services import ROOT
from testkit.fakes.slack import FakeSlack


class FakeSlackProcess:
    """`with FakeSlackProcess() as slack:` -> `slack.base_url`, `slack.count("views.open")`."""

    def __enter__(self) -> FakeSlackProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_slack_process"],
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


def main() -> None:
    with FakeSlack() as slack:
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
            else:
                answer = "?"
            print(answer, flush=True)


if __name__ == "__main__":
    main()

"""The README's two set-up commands are the ones that work: CI runs the test command
verbatim, and here the run command's server starts from a `.env` file and answers."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from bot.slack.listeners.commands import SUBCOMMANDS
from testkit.fakes.slack import FakeSlack
from testkit.processes import clean_env, free_port, healthy
from testkit.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def marked(name: str) -> str:
    block = re.search(rf"<!-- {name} -->\n```\n(.+?)\n```\n<!-- /{name} -->", README, re.S)
    assert block, f"README.md has no {name} block"
    return block[1].strip()


def test_the_readme_has_exactly_two_setup_commands():
    assert README.count("```\npython3 -m venv") == 2
    run, test = marked("run-command"), marked("test-command")
    assert run.startswith("python3 -m venv .venv && .venv/bin/pip install -e . && ")
    assert test.startswith("python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && ")
    ci = (ROOT / ".ci/run").read_text()
    assert f'TEST_COMMAND="{test}"' in ci  # the command CI checks against the README
    assert test in ci.replace(" </dev/null", "")  # ...and runs, word for word


def test_the_run_command_starts_a_server_configured_by_a_dot_env_file(tmp_path):
    run = marked("run-command").split(" && ")[-1]
    assert run == ".venv/bin/coldcopy serve --port 3000"
    coldcopy = Path(sys.executable).parent / "coldcopy"  # the console script pip installed
    port = free_port()
    with FakeSlack() as slack:
        (tmp_path / ".env").write_text(
            "SLACK_BOT_TOKEN=xoxb-test\n"
            "SLACK_SIGNING_SECRET=test-signing-secret\n"
            "ANTHROPIC_API_KEY=sk-ant-test\n"
            f"SLACK_API_URL={slack.base_url}\n"
        )
        proc = subprocess.Popen(
            [str(coldcopy), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: proc.poll() is not None or healthy(port), timeout=30)
            assert proc.poll() is None, proc.stdout.read()
            assert slack.calls_to("auth.test")  # the token was checked at start-up
            assert (tmp_path / "coldcopy.db").exists()  # SQLite, migrated at start
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        output = proc.stdout.read()
        # Starting and stopping is quiet: no logging failure, no traceback.
        assert "listening on http://127.0.0.1:" in output
        assert "Logging error" not in output and "Traceback" not in output, output


def test_every_slash_subcommand_and_the_home_tab_are_documented():
    for name in {*(name for name in SUBCOMMANDS if name), "help"}:
        assert f"`/coldcopy {name}`" in README, f"README does not document /coldcopy {name}"
    assert (
        "### The Home tab" in README
        and "`/coldcopy settings`" in README.split("## Contract changes")[1]
    )

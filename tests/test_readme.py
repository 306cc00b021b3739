"""The README's run command works: its server starts from a `.env` file and answers. (CI runs
the test command verbatim; tests/unit/test_readme_commands.py holds the README to both.)"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from helpers import readme_block

from testkit.fakes.slack import FakeSlack
from testkit.processes import clean_env, free_port, healthy
from testkit.waiting import wait_until


def test_the_run_command_starts_a_server_configured_by_a_dot_env_file(tmp_path):
    run = readme_block("run-command").split(" && ")[-1]
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


def test_the_unit_command_runs_the_unit_layer_alone_without_services():
    # As the README says: no PostgreSQL, Redis or served app (their URLs point nowhere here).
    command = readme_block("unit-command")
    assert command.startswith(".venv/bin/pytest ")
    env = {
        **clean_env(),
        "COLDCOPY_TEST_POSTGRES_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "COLDCOPY_TEST_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    args = [sys.executable, "-m", "pytest", *command.split()[1:], "-p", "no:cacheprovider"]
    done = subprocess.run(
        args, cwd=Path(__file__).parent.parent, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout

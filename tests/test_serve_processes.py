"""`coldcopy serve` as real processes: a gunicorn master with several worker processes in the
scale-out mode (PostgreSQL + Redis), one in the embedded mode, every route answered whichever
process takes the request, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers import BRIEF

from bot.slack.modal import brief_view
from storage.db import make_engine
from storage.migrate import upgrade
from testkit.fakes.anthropic import FakeAnthropic
from testkit.fakes.slack import FakeSlack
from testkit.processes import Processes, children, coldcopy_env
from testkit.waiting import wait_until


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_serve_runs_worker_processes_that_share_routes_metrics_and_stop_on_sigterm(
    postgres_url, redis_url, tmp_path
):
    with FakeSlack() as slack, FakeAnthropic() as claude:
        engine = make_engine(postgres_url)
        upgrade(engine)
        env = coldcopy_env(
            slack,
            claude,
            postgres_url,
            REDIS_URL=redis_url,
            COLDCOPY_FREE_QUOTA="1",
            COLDCOPY_WEB_WORKERS="3",
        )
        procs = Processes(env, tmp_path, slack)
        try:
            client = procs.serve("serve")
            master = procs.running[0]
            wait_until(lambda: len(children(master.pid)) == 3)
            workers = children(master.pid)
            assert "3 worker process(es)" in master.log_path.read_text()

            # Many requests over fresh connections land on every worker; each answers.
            view = brief_view(None, "C1")
            replies = [
                client.submit(view, BRIEF, user=f"U{i}", view_id=f"VW{i:03d}").json()
                for i in range(12)
            ]
            accepted = [r for r in replies if r.get("view", {}).get("title", {}).get("text")]
            assert len(accepted) == 12
            assert sum("Writing your sequence" in str(r) for r in replies) == 1  # quota of 1
            assert client.request("GET", "/readyz").status == 200
            # /metrics sums every process's samples, whichever process answers it.
            for _ in range(5):
                text = client.request("GET", "/metrics").body.decode()
                assert metric(text, "coldcopy_quota_denials_total") == 11

            master.send_signal(signal.SIGTERM)
            assert master.wait(timeout=60) == 0
            assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
        finally:
            procs.stop_all()
            engine.dispose()


def test_the_embedded_mode_runs_one_worker_and_says_why(tmp_path):
    with FakeSlack() as slack, FakeAnthropic() as claude:
        env = coldcopy_env(
            slack, claude, f"sqlite:///{tmp_path}/coldcopy.db", COLDCOPY_WEB_WORKERS="4"
        )
        procs = Processes(env, tmp_path, slack)
        try:
            client = procs.serve("serve")
            master = procs.running[0]
            assert client.slash("help").status == 200
            assert len(children(master.pid)) == 1
            log = master.log_path.read_text()
            assert "1 worker process(es)" in log
            assert "rate limits and the generation pool live in its memory" in log
            master.send_signal(signal.SIGTERM)
            assert master.wait(timeout=60) == 0
        finally:
            procs.stop_all()


def test_a_port_in_use_stops_serve_with_one_line_and_status_2(tmp_path):
    import socket

    with socket.socket() as taken, FakeSlack() as slack, FakeAnthropic() as claude:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = coldcopy_env(slack, claude, f"sqlite:///{tmp_path}/coldcopy.db")
        result = subprocess.run(
            [sys.executable, "-m", "bot.runtime.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=tmp_path, env={**env, "PATH": os.environ.get("PATH", "")},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout

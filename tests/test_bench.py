"""`python -m bench` (the README's benchmark command) runs on this machine: a small run of
the limiter and quota parts, recording nothing, must finish and find no over-grant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_command_runs_and_checks_for_over_grant(postgres_admin_url, redis_url):
    before = (ROOT / "bench/README.md").read_text()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "limiter",
            "quota",
            "--quota-per-thread",
            "20",
            "--no-record",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    quota_rows = [line for line in result.stdout.splitlines() if line.startswith("quota:")]
    assert len(quota_rows) == 4
    assert all("yes" in row for row in quota_rows)  # zero over-grant on both databases
    assert (ROOT / "bench/README.md").read_text() == before

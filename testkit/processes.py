"""Starting ColdCopy (or any server) as a process of its own, wired to the fakes, and watching
it from outside: a free port, its environment, waiting for /healthz, stopping it, and what
/proc says about it (its children, CPU time and resident memory)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The variables that configure ColdCopy: a child process gets only those its caller sets.
SETTING_PREFIXES = ("SLACK_", "ANTHROPIC_", "COLDCOPY_", "STRIPE_", "DATABASE_URL", "REDIS_URL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no ColdCopy, Slack, Anthropic or Stripe variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    env.update(extra)
    return env


def coldcopy_env(slack, claude, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a coldcopy process wired to the Slack and Anthropic fakes."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_API_URL": slack.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": claude.base_url,
        "DATABASE_URL": database_url,
        **extra,
    }


def run_coldcopy(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    """`coldcopy ARGS` to its end, from the code its env's PYTHONPATH names (else installed)."""
    return subprocess.run(
        [sys.executable, "-m", "bot.runtime.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Server:
    """A server process on 127.0.0.1:`port`, its output in `log_path`."""

    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_server(
    name: str, command: list[str], env: dict[str, str], workdir: Path, timeout: float = 60
) -> Server:
    """`python -m COMMAND --host 127.0.0.1 --port P` from `workdir` (its log there too), once
    GET /healthz answers 200; raises RuntimeError, with its log, if it exits or never does."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", *command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, proc, port, log_path)
    deadline = time.monotonic() + timeout
    while not healthy(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"{name} did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    return server


def healthy(port: int) -> bool:
    """Whether GET /healthz on 127.0.0.1:`port` answers 200."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        healthy = conn.getresponse().status == 200
        conn.close()
        return healthy
    except OSError:
        return False


@contextmanager
def served(
    name: str, command: list[str], env: dict[str, str], workdir: Path, timeout: float = 60
) -> Iterator[Server]:
    """`start_server`, stopped with SIGTERM at the end."""
    server = start_server(name, command, env, workdir, timeout)
    try:
        yield server
    finally:
        stop(server.proc)


def stop(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Processes:
    """Starts coldcopy subcommands with one environment and stops them all at the end; the
    clients of the servers it starts know `slack` (see SignedSlackClient)."""

    def __init__(self, env: dict[str, str], workdir: Path, slack=None):
        self.env = env
        self.workdir = workdir
        self.slack = slack
        self.running: list[subprocess.Popen] = []

    def start(self, *args: str, name: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.runtime.cli", *args],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log_path = self.workdir / f"{name}.log"
        self.running.append(proc)
        return proc

    def serve(self, name: str, *args: str):
        """`coldcopy serve ARGS` on a free port, once it answers /healthz; a client for it."""
        from testkit.harness import SignedSlackClient  # the harness imports the whole app

        server = start_server(name, ["bot.runtime.cli", "serve", *args], self.env, self.workdir)
        server.proc.log_path = server.log_path
        self.running.append(server.proc)
        return SignedSlackClient(server.url, slack=self.slack)

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running:
            stop(proc, grace=20)


# --- what /proc says about a process -------------------------------------------------------


def _stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            yield int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (e.g. `coldcopy serve`'s gunicorn workers)."""
    return [child for child, fields in _stats() if int(fields[1]) == pid and fields[0] != "Z"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its live children."""
    ticks = sum(
        int(fields[11]) + int(fields[12])
        for each, fields in _stats()
        if each == pid or int(fields[1]) == pid
    )
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (0 once it has no memory left to report)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

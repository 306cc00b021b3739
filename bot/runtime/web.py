"""How `coldcopy serve` runs: a gunicorn master binds the port and forks worker processes with
gthread workers (request threads each); every worker starts its own ServingProcess after the
fork and stops it gracefully on its way out.

In the scale-out mode (PostgreSQL, Redis and the job queue) there is one worker per CPU core
(COLDCOPY_WEB_WORKERS or --workers to change it). The embedded mode (SQLite, no REDIS_URL, or
generations run in-process) always runs ONE worker: its rate limits and its generation pool
live in that process's memory, so several processes would each allow the full rate and each
run (and recover) generations the others cannot see.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger as GunicornLogger

from bot.core.settings import Settings, StartupError, cannot_listen

log = logging.getLogger("coldcopy.serve")

# Environment variable of prometheus_client: the directory where each process keeps its samples.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# A request that Slack is still waiting on gets this long once the worker is told to stop.
REQUEST_GRACE_SECONDS = 30


def available_cores() -> int:
    """The CPU cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ProcessPlan:
    workers: int
    why: str


def plan_workers(settings: Settings, requested: int | None = None) -> ProcessPlan:
    """How many worker processes `serve` runs, and the reason, for the start-up log line."""
    if settings.embedded:
        why = (
            "embedded mode (SQLite, no REDIS_URL, or generations run in this process): one "
            "worker process, because the rate limits and the generation pool live in its memory"
        )
        wanted = requested or settings.web_workers
        if wanted and wanted > 1:
            why += f"; the {wanted} workers asked for need PostgreSQL, Redis and the job queue"
        return ProcessPlan(1, why)
    if requested:
        return ProcessPlan(requested, "--workers")
    if settings.web_workers:
        return ProcessPlan(settings.web_workers, "COLDCOPY_WEB_WORKERS")
    return ProcessPlan(available_cores(), "one per CPU core")


class _Logs(GunicornLogger):
    """gunicorn's own messages through ColdCopy's JSON logging; no access log (it would
    carry Slack's request URLs to no one's benefit)."""

    def setup(self, cfg) -> None:
        self.error_log.handlers.clear()
        self.error_log.propagate = True
        self.access_log.handlers.clear()
        self.access_log.propagate = False
        self.access_log.disabled = True


class ColdCopyServer(BaseApplication):
    """gunicorn, configured from the settings instead of gunicorn's command line."""

    def __init__(self, settings: Settings, host: str, port: int, workers: int, identity=None):
        self.settings = settings
        # The single workspace's bot, from the master's check: workers never ask Slack again.
        self.identity = identity
        self.options = {
            "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": settings.web_threads,
            # A stopping worker answers its requests, then gives the generations its pool is
            # running (embedded mode) COLDCOPY_SHUTDOWN_GRACE before it hands the rest back;
            # the master waits that long before it kills.
            "graceful_timeout": int(settings.shutdown_grace) + REQUEST_GRACE_SECONDS,
            "proc_name": "coldcopy",
            "logger_class": _Logs,
            "loglevel": settings.log_level.lower(),
            # A control socket in $HOME would be shared by every replica on a host.
            "control_socket_disable": True,
            "worker_exit": _stop_worker,
        }
        self.process = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        """Runs in each worker after the fork (the app is not preloaded in the master)."""
        from bot.runtime.serving import start_serving_process
        from bot.runtime.wsgi import make_wsgi_app

        try:
            self.process = start_serving_process(self.settings, self.identity)
        except Exception as exc:
            # One line, not a traceback; the master then stops with "Worker failed to boot".
            print(f"ColdCopy cannot start a worker process: {exc}", file=sys.stderr, flush=True)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
        return make_wsgi_app(self.process.services, self.process.app)


def _stop_worker(arbiter, worker) -> None:
    """gunicorn's worker_exit hook, in the worker process once it stopped taking requests."""
    process = arbiter.app.process
    if process is not None:
        process.stop()


def _check_port(host: str, port: int) -> None:
    """Fail at once with one line, rather than after gunicorn's five retries."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise cannot_listen(host, port, exc) from None


def serve(settings: Settings, host: str, port: int, workers: int | None = None) -> int:
    """Run `coldcopy serve` until SIGTERM (graceful) or SIGINT; the master's exit status."""
    master = os.getpid()
    metrics_dir = tempfile.mkdtemp(prefix="coldcopy-metrics-")
    # Must be set before prometheus_client is first imported (bot.core.metrics imports it).
    os.environ[METRICS_DIR_VARIABLE] = metrics_dir
    try:
        from bot.core.logs import configure_logging
        from bot.runtime.serving import check_before_serving

        configure_logging(settings.log_level)
        _check_port(host, port)
        identity = check_before_serving(settings)
        plan = plan_workers(settings, workers)
        log.info(
            "coldcopy serve listening on http://%s:%d: %d worker process(es), %d threads each (%s)",
            host,
            port,
            plan.workers,
            settings.web_threads,
            plan.why,
        )
        ColdCopyServer(settings, host, port, plan.workers, identity).run()
        return 0
    except SystemExit as exit_:
        # Workers are forked from inside this call and leave it the same way: let them go.
        if os.getpid() == master and exit_.code == Arbiter.WORKER_BOOT_ERROR:
            raise StartupError("coldcopy serve stopped: a worker process could not start") from None
        raise
    finally:
        if os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)

"""`coldcopy socket`: the same serving process, connected to Slack over Socket Mode instead of
receiving requests (development, or a single workspace behind a firewall)."""

from __future__ import annotations

import contextlib
import logging
import signal

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.core.logs import configure_logging
from bot.core.settings import Settings
from bot.runtime.serving import check_before_serving, start_serving_process

log = logging.getLogger(__name__)


def run_socket_mode(settings: Settings) -> int:
    configure_logging(settings.log_level)
    process = start_serving_process(settings, check_before_serving(settings))
    handler = SocketModeHandler(process.app, settings.slack_app_token)

    def stop(signum, _frame) -> None:
        log.info("shutting down (signal %d): finishing in-flight generations", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        handler.start()
    finally:
        with contextlib.suppress(Exception):
            handler.close()
        process.stop()
    return 0

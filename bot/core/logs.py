"""Structured JSON logs: one object per line, carrying team and generation ids.

Only the whitelisted context keys below are ever written, so a brief, an email or a token
passed by mistake in `extra` never reaches the logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

CONTEXT_KEYS = ("team_id", "generation_id", "user_id", "slack_error", "kind", "event_id")
# A credential in a URL's query string (Smartlead takes its key as ?api_key=...; httpx2 logs
# every request's URL at INFO, and an error's text may carry the URL too).
SECRET_IN_QUERY = re.compile(r"((?:api_key|access_token|apikey)=)[^&\s\"'<>]+", re.IGNORECASE)


def redact(text: str) -> str:
    return SECRET_IN_QUERY.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class NoRequestBodies(logging.Filter):
    """Bolt's "Invalid request signature detected (..., body: ...)" line writes a request's
    whole body (an attacker's megabytes, or a late genuine request's brief): keep the line,
    drop everything from the body on."""

    MARKER = "body:"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("slack_bolt", "coldcopy.bolt")):
            message = record.getMessage()
            cut = message.find(self.MARKER)
            if cut >= 0:
                record.msg = message[:cut] + "body: [not logged]"
                record.args = ()
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(NoRequestBodies())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Client libraries log request bodies at DEBUG; keep them quiet at any level.
    for noisy in ("slack_sdk", "slack_bolt", "anthropic", "httpx2", "stripe", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))

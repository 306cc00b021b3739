"""A key in a URL's query string (Smartlead's ?api_key=) never reaches a log line: httpx2 logs
every request's URL at INFO, and an error's text may carry it too."""

from __future__ import annotations

import json
import logging

from bot.core.logs import JsonFormatter


def test_a_smartlead_api_key_in_a_logged_url_is_redacted():
    record = logging.LogRecord(
        "httpx2",
        logging.INFO,
        __file__,
        1,
        'HTTP Request: %s %s "%s"',
        (
            "POST",
            "https://server.smartlead.ai/api/v1/campaigns/create?api_key=sl_secret_1234",
            "HTTP/1.1 200 OK",
        ),
        None,
    )
    line = JsonFormatter().format(record)
    assert "sl_secret_1234" not in line
    assert "api_key=[redacted]" in json.loads(line)["message"]

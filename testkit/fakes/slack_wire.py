"""Slack's wire format: how the Web API reads a request (form, multipart or JSON; a bearer
token or HTTP Basic auth) and how it answers (HTTP 200 with `ok`, or an error status)."""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

# Form fields that carry JSON text; decoded so tests assert on Python objects.
JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata", "user_auth_blocks")


@dataclass(frozen=True)
class Call:
    """One request the fake received, with its decoded parameters and how it was answered."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float
    outcome: str = "ok"  # "ok", the Slack error string, or the HTTP status ("429", "503")
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class _Answer:
    body: dict[str, Any] | bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str | None = None  # derived from body when None


def _error(error: str, **fields: Any) -> _Answer:
    return _Answer({"ok": False, "error": error, **fields})


def _invalid_arguments(*messages: str) -> _Answer:
    return _error(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] {m}" for m in messages]},
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Slack's edge takes every connection; socketserver's default backlog of 5 would drop
    # bursts of them, and a dropped SYN costs the client a one-second retransmit.
    request_queue_size = 256
    fake: Any  # the FakeSlack serving this port


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; every request is in FakeSlack.calls


def _parse_params(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """Form, multipart or JSON body (plus query string) -> params, JSON text fields decoded.

    Form values stay strings as sent: the SDK sends booleans as "1"/"0" and numbers as text.
    Raises ValueError for a JSON body that does not parse."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if body:
        if kind == "application/json":
            decoded = json.loads(body)
            if not isinstance(decoded, dict):
                raise ValueError("JSON body is not an object")
            params.update(decoded)
        elif kind == "multipart/form-data":
            params.update(_parse_multipart(content_type, body))
        else:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for key in JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str):
            # Text that does not parse is left as is; the method decides whether that is an error.
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    params: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        params[name] = payload if part.get_filename() else payload.decode("utf-8")
    return params


def _flag(value: Any) -> bool:
    """A boolean argument as clients send it: true/false in JSON, "true"/"1" in a form."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true")


def _bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[len("bearer ") :].strip() or None
    return None


def basic_auth_client_id(call: Call) -> str | None:
    """The client_id an OAuth call authenticated with (the SDK sends HTTP Basic auth)."""
    authorization = next((v for k, v in call.headers.items() if k.lower() == "authorization"), "")
    if not authorization.lower().startswith("basic "):
        return call.params.get("client_id")
    decoded = base64.b64decode(authorization[len("basic ") :]).decode()
    return decoded.split(":", 1)[0]


def _send(
    request: _Handler,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(body)

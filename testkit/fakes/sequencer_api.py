"""The shared part of the local HTTP fakes of the sending tools (Instantly, Smartlead, lemlist,
Apollo): a real HTTP server on 127.0.0.1 that records every request, enforces the tool's own
rate limit, waits a configurable latency per call, and lets a test script failures: bursts of
429 with Retry-After, 5xx, a refusal of one call, or an answer lost after the tool acted.

Each tool's module adds its routes and rules, every rule citing the tool's page."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # the parsed JSON, or None
    at: float = 0.0  # time.monotonic() on arrival
    status: int = 0  # filled in once answered

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class ApiError(Exception):
    """An error answer: status, JSON body and extra headers, as the tool sends it."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class _Script:
    method: str
    pattern: re.Pattern
    kind: str  # "status", "lose"
    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    body: Any = None
    passes: int = 0  # matching requests served normally before the script acts


Handler = Callable[..., Any]


class FakeSequencerAPI:
    """Subclasses set TOOL and RATE_LIMIT, add routes in `routes()` and implement `authorize`."""

    TOOL = "tool"
    RATE_LIMIT: tuple[int, float] = (100, 1.0)  # requests per seconds, per API key

    def __init__(self, *, api_key: str, latency: float = 0.0):
        self.api_key = api_key
        self.latency = latency
        self.requests: list[Recorded] = []
        self.lock = threading.RLock()
        self._scripts: list[_Script] = []
        self._windows: defaultdict[str, deque[float]] = defaultdict(deque)
        self._routes = [(m, re.compile(p), h) for m, p, h in self.routes()]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- for subclasses ---------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def authorize(self, request: Recorded) -> None:
        """Raise ApiError(401/403) unless the request carries the key as the tool wants it."""
        raise NotImplementedError

    def rate_limited(self, retry_after: float) -> ApiError:
        return ApiError(
            429, {"message": "Too many requests"}, {"Retry-After": f"{retry_after:.0f}"}
        )

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use the fake as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test controls ----------------------------------------------------------------------

    def fail_next(
        self, method: str, path: str, statuses: list[int], retry_after: str | None = None
    ) -> None:
        """Answer the next matching requests with `statuses` in turn (429s carry Retry-After),
        acting on none of them."""
        with self.lock:
            self._scripts.append(
                _Script(method, re.compile(path), "status", list(statuses), retry_after)
            )

    def refuse_next(self, method: str, path: str, status: int, body: Any) -> None:
        """Refuse the next matching request with `status` and `body`, acting on nothing."""
        with self.lock:
            self._scripts.append(_Script(method, re.compile(path), "status", [status], body=body))

    def refuse_after(self, passes: int, method: str, path: str, status: int, body: Any) -> None:
        """Serve `passes` matching requests, then refuse the next one (a batch refused mid-way)."""
        with self.lock:
            script = _Script(method, re.compile(path), "status", [status], body=body, passes=passes)
            self._scripts.append(script)

    def lose_next_answer(self, method: str, path: str) -> None:
        """Act on the next matching request, then drop the connection without answering, as a
        timeout after the tool did the work looks to a client."""
        with self.lock:
            self._scripts.append(_Script(method, re.compile(path), "lose"))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        pattern = re.compile(path)
        with self.lock:
            return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    def answered(self, status: int) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.status == status]

    # --- serving ----------------------------------------------------------------------------

    def _scripted(self, method: str, path: str) -> tuple[str, int, _Script] | None:
        """The scripted behaviour for this request, if any, taken off the script."""
        with self.lock:
            for script in self._scripts:
                if script.method == method and script.pattern.fullmatch(path):
                    if script.passes:
                        script.passes -= 1
                        return None
                    status = script.statuses.pop(0) if script.statuses else 0
                    if not script.statuses:
                        self._scripts.remove(script)
                    return script.kind, status, script
        return None

    def _check_rate(self, key: str) -> None:
        count, seconds = self.RATE_LIMIT
        now = time.monotonic()
        with self.lock:
            window = self._windows[key]
            while window and window[0] <= now - seconds:
                window.popleft()
            if len(window) >= count:
                raise self.rate_limited(max(1.0, window[0] + seconds - now))
            window.append(now)

    def _serve(self, request: Recorded) -> tuple[int, Any, dict[str, str], bool]:
        """(status, body, headers, lose the answer)"""
        if self.latency:
            time.sleep(self.latency)
        try:
            self.authorize(request)
            self._check_rate(self.api_key)
            if isinstance(request.body, ValueError):
                raise ApiError(400, {"message": "Body is not valid JSON"})
            scripted = self._scripted(request.method, request.path)
            lose = scripted is not None and scripted[0] == "lose"
            if scripted is not None and scripted[0] == "status":
                _, status, script = scripted
                headers = {"Retry-After": script.retry_after} if script.retry_after else {}
                body = script.body if script.body is not None else {"message": f"scripted {status}"}
                raise ApiError(status, body, headers)
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(request.path)
                if method == request.method and match:
                    with self.lock:
                        answer = handler(request, *match.groups())
                    status, body = answer if isinstance(answer, tuple) else (200, answer)
                    return status, body, {}, lose
            raise ApiError(404, {"message": f"Cannot {request.method} {request.path}"})
        except ApiError as exc:
            return exc.status, exc.body, exc.headers, False

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = ValueError("not JSON")
                request = Recorded(
                    method=method,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
                with fake.lock:
                    fake.requests.append(request)
                    index = len(fake.requests) - 1
                status, answer, headers, lose = fake._serve(request)
                with fake.lock:
                    fake.requests[index] = Recorded(**{**request.__dict__, "status": status})
                if lose:
                    self.close_connection = True
                    return
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def log_message(self, format: str, *args) -> None:
                pass

        return Handler


def require(condition: bool, status: int, body: Any) -> None:
    if not condition:
        raise ApiError(status, body)


HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

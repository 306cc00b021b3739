"""A local fake of the Stripe API (customers, Checkout and billing-portal sessions) over real HTTP,
and signed webhook deliveries built with the stripe library's own signing helper.

The fake speaks Stripe's wire format: form-encoded POST bodies with bracketed keys
(`line_items[0][price]`), JSON objects carrying an "object" field, errors shaped
`{"error": {...}}`, and `Idempotency-Key` replays (same key and parameters: the same object;
same key, other parameters: an `idempotency_error`). Point the library at it with
`stripe.StripeClient(key, base_addresses={"api": fake.base_url})`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import stripe

API_VERSION = "2026-10-28.endive"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    # True when the fake answered from its idempotency cache instead of creating anything.
    replayed: bool

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding back into nested values: `a[0][b]=1` -> {"a": [{"b": "1"}]}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None:
                    node[index] = container
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            index = int(last)
            while len(node) <= index:
                node.append(None)
            node[index] = value
        else:
            node[last] = value
    return root


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class FakeStripe:
    """A Stripe API on 127.0.0.1, in a background thread; use as a context manager."""

    def __init__(self, *, api_key: str = "sk_test_coldcopy"):
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.customers: dict[str, dict] = {}
        self.checkout_sessions: dict[str, dict] = {}
        self.portal_sessions: dict[str, dict] = {}
        self._lock = threading.Lock()
        # Requests with the same idempotency key run one at a time, so the second one replays
        # the first one's answer (real Stripe would answer 409 and the library would retry).
        self._key_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._idempotent: dict[str, tuple[str, dict, int, dict]] = {}
        self._failures: dict[str, list[int]] = defaultdict(list)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeStripe:
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
        assert self._server is not None, "use FakeStripe as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test controls -------------------------------------------------------------------

    def fail_next(self, path: str, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` POSTs to `path` with `status`, creating nothing (a retry
        with the same idempotency key then goes through)."""
        with self._lock:
            self._failures[path].extend([status] * times)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # --- the API -------------------------------------------------------------------------

    def _handle(self, method: str, path: str, headers: dict[str, str], body: str):
        """(status, json body, extra headers) for one request."""
        params = parse_form(body) if body else {}
        key = headers.get("idempotency-key")
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            self._record(method, path, params, headers, replayed=False)
            raise StripeError(401, "invalid_request_error", "Invalid API Key provided.")
        if method != "POST":
            self._record(method, path, params, headers, replayed=False)
            raise StripeError(
                404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
            )
        if not key:
            return self._create(method, path, params, headers)
        with self._key_locks[key]:
            seen = self._idempotent.get(key)
            if seen is not None:
                seen_path, seen_params, status, answer = seen
                self._record(method, path, params, headers, replayed=True)
                if (seen_path, seen_params) != (path, params):
                    raise StripeError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    )
                return status, answer, {"Idempotent-Replayed": "true"}
            # Only successes are saved: the fake's errors stand for failures before Stripe began
            # executing, which Stripe does not save either, so the library's retry can succeed.
            status, answer, extra = self._create(method, path, params, headers)
            self._idempotent[key] = (path, params, status, answer)
            return status, answer, extra

    def _create(self, method: str, path: str, params: dict, headers: dict[str, str]):
        self._record(method, path, params, headers, replayed=False)
        with self._lock:
            pending = self._failures.get(path)
            if pending:
                status = pending.pop(0)
                raise StripeError(status, "api_error", "Something went wrong on Stripe's end.")
        if path == "/v1/customers":
            return 200, self._create_customer(params), {}
        if path == "/v1/checkout/sessions":
            return 200, self._create_checkout_session(params), {}
        if path == "/v1/billing_portal/sessions":
            return 200, self._create_portal_session(params), {}
        raise StripeError(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
        )

    def _record(self, method, path, params, headers, *, replayed: bool) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, params, headers, replayed))

    def _create_customer(self, params: dict) -> dict:
        customer = {
            "id": _new_id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "description": params.get("description"),
            "email": params.get("email"),
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "name": params.get("name"),
        }
        with self._lock:
            self.customers[customer["id"]] = customer
        return customer

    def _require_customer(self, params: dict) -> str | None:
        customer = params.get("customer")
        if customer is not None and customer not in self.customers:
            raise StripeError(
                400,
                "invalid_request_error",
                f"No such customer: '{customer}'",
                code="resource_missing",
                param="customer",
            )
        return customer

    def _create_checkout_session(self, params: dict) -> dict:
        mode = params.get("mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeError(
                400, "invalid_request_error", "Missing required param: mode.", param="mode"
            )
        if "success_url" not in params:
            raise StripeError(
                400,
                "invalid_request_error",
                "Missing required param: success_url.",
                param="success_url",
            )
        customer = self._require_customer(params)
        session_id = f"cs_test_{secrets.token_hex(24)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "customer": customer,
            "expires_at": int(time.time()) + 24 * 3600,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": mode,
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": params.get("success_url"),
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
        }
        with self._lock:
            self.checkout_sessions[session_id] = {**session, "_params": params}
        return session

    def _create_portal_session(self, params: dict) -> dict:
        if "customer" not in params:
            raise StripeError(
                400,
                "invalid_request_error",
                "Missing required param: customer.",
                param="customer",
            )
        customer = self._require_customer(params)
        session_id = _new_id("bps")
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "created": int(time.time()),
            "customer": customer,
            "livemode": False,
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.test/p/session/test_{secrets.token_hex(16)}",
        }
        with self._lock:
            self.portal_sessions[session_id] = session
        return session

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path.split("?", 1)[0]
                try:
                    status, answer, extra = fake._handle(method, path, headers, body)
                except StripeError as exc:
                    status, answer, extra = exc.status, exc.body, {}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", _new_id("req"))
                self.send_header("Stripe-Version", headers.get("stripe-version", API_VERSION))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self._serve("POST")

            def do_GET(self) -> None:
                self._serve("GET")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def log_message(self, format: str, *args) -> None:
                pass

        return Handler


# --- webhook deliveries ------------------------------------------------------------------


def signed_event(event: dict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The raw body and `Stripe-Signature` header Stripe would send for `event`."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=timestamp
    )
    return payload, header


def _event(
    event_type: str,
    obj: dict,
    *,
    created: int | None,
    previous: dict | None = None,
    event_id: str | None = None,
) -> dict:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": event_id or _new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def checkout_session_completed(
    *,
    team_id: str | None,
    customer: str,
    subscription: str,
    created: int | None = None,
    metadata: bool = True,
    payment_status: str = "paid",
    event_id: str | None = None,
) -> dict:
    session_id = f"cs_test_{secrets.token_hex(24)}"
    session = {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": 2900,
        "cancel_url": "https://coldcopy.example/billing/cancelled",
        "client_reference_id": team_id,
        "created": (created or int(time.time())) - 60,
        "currency": "usd",
        "customer": customer,
        "livemode": False,
        "metadata": {"team_id": team_id} if metadata and team_id else {},
        "mode": "subscription",
        "payment_status": payment_status,
        "status": "complete",
        "subscription": subscription,
        "success_url": "https://coldcopy.example/billing/success",
        "url": None,
    }
    return _event("checkout.session.completed", session, created=created, event_id=event_id)


def subscription(
    *,
    subscription_id: str,
    customer: str,
    status: str,
    period_start: int,
    period_end: int,
    team_id: str | None = None,
    price_id: str = "price_pro_monthly",
    period_on_items: bool = True,
) -> dict:
    """A Subscription object; since API version 2025-03-31 its period lives on the items."""
    item = {
        "id": _new_id("si"),
        "object": "subscription_item",
        "price": {"id": price_id, "object": "price", "recurring": {"interval": "month"}},
        "quantity": 1,
        "subscription": subscription_id,
    }
    sub: dict[str, Any] = {
        "id": subscription_id,
        "object": "subscription",
        "cancel_at_period_end": False,
        "canceled_at": None,
        "created": period_start,
        "customer": customer,
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "livemode": False,
        "metadata": {"team_id": team_id} if team_id else {},
        "status": status,
    }
    if period_on_items:
        item["current_period_start"] = period_start
        item["current_period_end"] = period_end
    else:
        sub["current_period_start"] = period_start
        sub["current_period_end"] = period_end
    return sub


def subscription_updated(
    sub: dict,
    *,
    created: int | None = None,
    previous_status: str | None = None,
    event_id: str | None = None,
) -> dict:
    previous = {"status": previous_status} if previous_status else {}
    return _event(
        "customer.subscription.updated",
        sub,
        created=created,
        previous=previous,
        event_id=event_id,
    )


def subscription_deleted(
    sub: dict, *, created: int | None = None, event_id: str | None = None
) -> dict:
    ended = created or int(time.time())
    sub = {**sub, "status": "canceled", "canceled_at": ended, "ended_at": ended}
    return _event("customer.subscription.deleted", sub, created=created, event_id=event_id)


def invoice_payment_failed(
    *,
    customer: str,
    subscription_id: str,
    team_id: str | None = None,
    created: int | None = None,
    event_id: str | None = None,
) -> dict:
    invoice = {
        "id": _new_id("in"),
        "object": "invoice",
        "amount_due": 2900,
        "attempt_count": 1,
        "billing_reason": "subscription_cycle",
        "currency": "usd",
        "customer": customer,
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": (created or int(time.time())) + 3 * 24 * 3600,
        # Since API version 2025-03-31 an invoice names its subscription under `parent`.
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": {"team_id": team_id} if team_id else {},
                "subscription": subscription_id,
            },
        },
        "status": "open",
    }
    return _event("invoice.payment_failed", invoice, created=created, event_id=event_id)

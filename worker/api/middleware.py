"""ASGI middleware: the body size and time limits, and per-request telemetry.

Slow clients: uvicorn has no read timeout for a request's headers, so `babelwire api` runs
its HTTP/1.1 protocol with one (`HeaderTimeoutProtocol`, below: a connection whose request
line and headers are not complete within `header_timeout_s` of its opening, or of the end of
the previous response, is closed). The body's time limit is here (`BodyLimitMiddleware`):
a body that has not fully arrived `body_timeout_s` after the app first asks for it gets a 408.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable

import h11
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from worker import logging as json_logs
from worker.metrics import ApiMetrics

log = logging.getLogger(__name__)

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]
QUIET_ROUTES = frozenset({"/healthz", "/metrics"})  # probed every few seconds: logged at DEBUG
# Metric labels come from closed sets: anything else is "other" (a made-up method or path
# must not create a new time series).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


class BodyRefused(HTTPException):
    """A body over the size limit (413) or too slow to arrive (408). An HTTPException so that
    FastAPI's body reading lets it through to the exception handling as it is."""


class BodyLimitMiddleware:
    """413 for a body over `max_bytes` (from Content-Length before anything is read, else by
    counting the bytes as the app reads them); 408 for a body still arriving `timeout_s` after
    the app first asked for it."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, 413, f"request body is {int(declared):,} bytes; the limit is {self.max_bytes:,}")
            return
        received = 0
        started = False
        deadline: float | None = None
        loop = asyncio.get_running_loop()

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, deadline
            if deadline is None:
                deadline = loop.time() + self.timeout_s
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise BodyRefused(408, f"request body not received within {self.timeout_s:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyRefused(413, f"request body is over the limit of {self.max_bytes:,} bytes")
                if not message.get("more_body", False):
                    deadline = float("inf")  # complete: later receives wait for a disconnect
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyRefused as exc:
            if started:
                raise
            await _refuse(send, exc.status_code, str(exc.detail))


async def _refuse(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class TelemetryMiddleware:
    """Per request: a request id (X-Request-ID), a JSON log line, and the HTTP metrics."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        token = json_logs.bind_context(request_id=request_id, stage="api")
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_label(scope)
            method = method_label(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route).observe(seconds)
            log.log(
                logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                "%s %s %d", method, route, status,
                extra={"method": method, "route": route, "status_code": status, "duration_ms": round(seconds * 1000)},
            )
            json_logs.unbind_context(token)


def method_label(scope: Scope) -> str:
    method = scope.get("method", "")
    return method if method in HTTP_METHODS else OTHER


def route_label(scope: Scope) -> str:
    """The matched route's template (never a raw path with ids in it), else "other"."""
    route = getattr(scope.get("route"), "path", None)  # FastAPI and Starlette routes
    return route if isinstance(route, str) and route else OTHER


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a time limit on receiving a request's line and headers.

    uvicorn only times out an idle keep-alive connection, and any byte cancels that timer, so
    a client sending its headers a byte at a time holds a connection (and a slot of
    `limit_concurrency`) forever. Set `header_timeout_s` on the class (see `with_header_timeout`)."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the next request on this keep-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing a connection: no complete request headers within %g s", self.header_timeout_s)
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for `uvicorn.run(http=...)` with this header timeout."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})

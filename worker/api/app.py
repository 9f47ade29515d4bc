"""The app factory: `create_app(settings)` wires the routers, the middleware, the exception
handlers and the telemetry (JSON logs are configured by `babelwire api`; the request metrics
and log lines come from `TelemetryMiddleware`)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from worker.api.dependencies import ApiServices, LoginNeeded
from worker.api.middleware import BodyLimitMiddleware, TelemetryMiddleware
from worker.api.routers import ops, review, v1
from worker.api.routers.review import html_page
from worker.config import Settings, get_settings
from worker.errors import SERVICE_FAULTS, ServiceUnavailable, as_unavailable

log = logging.getLogger("worker.api")

DESCRIPTION = """Multilingual summaries of news articles.

- `POST /v1/articles`: one article or a list → 202 with a job per valid article (queue `live`);
  invalid items of a list are reported with their index and field, the others accepted.
- `GET /v1/jobs/{id}`: a job's status, and its result once finished.
- `GET /v1/articles/{id}`: an article by its id (key) or by the site's external id.
- `GET /healthz`, `GET /metrics`: operations (no token).

Auth: with `BABELWIRE_API_TOKENS` set, `/v1/*` needs `Authorization: Bearer <token>` (401
without, 403 with a wrong one). Bodies over `BABELWIRE_API_MAX_BODY_BYTES` get a 413 before
they are parsed. A broker or database that cannot be reached gives a 503 with Retry-After.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over the configured broker and database (nothing is connected until used)."""
    settings = settings or get_settings()
    services = ApiServices.open(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(services.ensure_schema)
        except Exception as exc:  # /healthz says so; requests retry the migration
            log.error("database not ready at start: %s: %s", type(exc).__name__, exc)
        yield
        services.close()

    app = FastAPI(title="babelwire", version="1", summary="Multilingual summaries of news articles",
                  description=DESCRIPTION, lifespan=lifespan)
    app.state.services = services
    app.include_router(v1.router)
    app.include_router(ops.router)
    app.include_router(review.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes,
                       timeout_s=settings.api_body_timeout_s)
    app.add_middleware(TelemetryMiddleware, metrics=services.metrics)  # outermost: sees the 413s too

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        """The one place a broker or database fault becomes a 503."""
        mapped = as_unavailable(exc) or ServiceUnavailable("service", exc)
        log.warning("service unavailable: %s", mapped)
        return JSONResponse({"detail": f"{mapped.service} unavailable ({type(mapped.cause).__name__}); retry later"},
                            status_code=503, headers={"Retry-After": "5"})

    for fault in (ServiceUnavailable, *SERVICE_FAULTS):
        app.add_exception_handler(fault, unavailable)

    @app.exception_handler(LoginNeeded)
    async def login_page(request: Request, exc: LoginNeeded) -> HTMLResponse:
        return html_page(services, "login.html", http_status=exc.status, next=request.url.path, message=exc.message)

    return app

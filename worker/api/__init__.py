"""The HTTP API for news sites and the editors' review pages (FastAPI).

    app.py           create_app: routers, middleware, exception handlers
    dependencies.py  services, the bearer token, review sessions and the login throttle
    schemas.py       request and response models (the OpenAPI document)
    middleware.py    body size/time limits, telemetry, the header timeout for uvicorn
    routers/v1.py    POST /v1/articles, GET /v1/jobs/{id}, GET /v1/articles/{id}
    routers/ops.py   /healthz, /metrics
    routers/review.py  /, /jobs, /articles/{id}, /login, /logout
"""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, not on import: a worker that builds webhook bodies with
    # `worker.api.schemas.job_document` does not load FastAPI and the routers.
    if name == "create_app":
        from worker.api.app import create_app

        return create_app
    raise AttributeError(f"module 'worker.api' has no attribute {name!r}")

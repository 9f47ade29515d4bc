"""Operations: health and metrics. Open (no token): probes and Prometheus send none, and they
carry no article content — keep them off the public internet at the proxy."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from worker.api.dependencies import ApiServices, get_services
from worker.api.schemas import Health

router = APIRouter(tags=["operations"])


def check_health(services: ApiServices) -> tuple[bool, Health]:
    broker = database = "ok"
    try:
        services.redis.ping()
    except Exception as exc:
        broker = f"unreachable: {type(exc).__name__}: {exc}"
    try:
        with services.store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        services.ensure_schema()
    except Exception as exc:
        database = f"unreachable: {type(exc).__name__}: {exc}"
    ok = broker == "ok" and database == "ok"
    return ok, Health(status="ok" if ok else "unavailable", broker=broker, database=database)


@router.get("/healthz", response_model=Health,
            responses={503: {"description": "Broker or database unreachable", "model": Health}})
def healthz(services: ApiServices = Depends(get_services)) -> JSONResponse:
    """Broker (Redis PING) and database (SELECT 1, schema current) reachable."""
    ok, health = check_health(services)
    return JSONResponse(health.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def metrics(services: ApiServices = Depends(get_services)) -> Response:
    """Prometheus metrics (names babelwire_*)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(services.registry), media_type=CONTENT_TYPE_LATEST)

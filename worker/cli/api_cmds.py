"""`babelwire api`: the HTTP API and review pages (worker/api.py) under uvicorn."""

from __future__ import annotations

import typer

from worker.cli.app import app, fail


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 in a container)"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free port, logged at start)"),
) -> None:
    """Start the HTTP API (SPEC §3.5): POST /v1/articles, GET /v1/jobs/ID, /healthz, /metrics, review pages."""
    import uvicorn

    from worker.config import get_settings
    from worker.logging import configure_logging

    try:
        settings = get_settings()
    except Exception as exc:  # pydantic ValidationError: a bad BABELWIRE_* variable
        raise fail(f"configuration: {exc}") from None
    configure_logging(settings)
    from worker.api import create_app

    try:
        application = create_app(settings)
    except ValueError as exc:
        raise fail(f"configuration: {exc}") from None
    # log_config=None: uvicorn's loggers go through our JSON handler; the access log is replaced
    # by the app's own request lines (route templates, durations, request ids).
    uvicorn.run(application, host=host, port=port, log_config=None, access_log=False,
                proxy_headers=True, server_header=False, timeout_graceful_shutdown=10)

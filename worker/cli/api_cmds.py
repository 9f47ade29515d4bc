"""`babelwire api`: the HTTP API and review pages (worker/api/) under uvicorn.

Limits on slow and many clients (settings, README "Behind a reverse proxy"): the request line
and headers must arrive within BABELWIRE_API_HEADER_TIMEOUT_S (our h11 protocol; uvicorn has
no such timeout), the body within BABELWIRE_API_BODY_TIMEOUT_S (408), an idle keep-alive
connection closes after BABELWIRE_API_KEEP_ALIVE_S, headers are at most 16 KiB (h11), and past
BABELWIRE_API_MAX_CONNECTIONS concurrent connections new requests get a 503.
"""

from __future__ import annotations

import typer

from worker.cli.app import app, fail, load_settings

H11_MAX_HEADER_BYTES = 16 * 1024


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 in a container)"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free port, logged at start)"),
) -> None:
    """Start the HTTP API: POST /v1/articles, GET /v1/jobs/ID, /healthz, /metrics, review pages."""
    import uvicorn

    from worker.api.middleware import with_header_timeout
    from worker.logging import configure_logging

    settings = load_settings()
    configure_logging(settings)
    from worker.api import create_app

    try:
        application = create_app(settings)
    except ValueError as exc:
        raise fail(f"configuration: {exc}") from None
    # log_config=None: uvicorn's loggers go through our JSON handler; the access log is replaced
    # by the app's own request lines (route templates, durations, request ids).
    uvicorn.run(
        application, host=host, port=port, log_config=None, access_log=False, server_header=False,
        timeout_graceful_shutdown=10,
        http=with_header_timeout(settings.api_header_timeout_s),
        timeout_keep_alive=settings.api_keep_alive_s,
        h11_max_incomplete_event_size=H11_MAX_HEADER_BYTES,
        limit_concurrency=settings.api_max_connections,
        proxy_headers=True, forwarded_allow_ips=settings.api_trusted_proxies,
    )

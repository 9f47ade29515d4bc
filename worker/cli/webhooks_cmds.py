"""`babelwire webhooks …`: endpoints, deliveries, replays, and the dispatcher process.

    webhooks add URL [--events article.done,article.partial,article.failed] [--secret-env VAR]
    webhooks list [--json]
    webhooks remove ID
    webhooks deliveries [--failed] [--job ID] [--limit N] [--json]
    webhooks replay ID... | --since TIME
    webhooks prune --older-than AGE
    webhooks dispatch [--once] [--metrics-port N]

A URL `celery://QUEUE` is a result queue (worker/delivery/result_queue.py). A secret is
generated (whsec_…) and printed once — it is not shown again — unless `--secret-env VAR`
names an environment variable that holds one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Optional

import typer

from worker.cli.app import EXIT_OK, app, fail, print_json
from worker.cli.queue_cmds import _settings, open_store, parse_since

webhooks_app = typer.Typer(help="Signed webhooks and the result queue: endpoints, deliveries, the dispatcher.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


def _outbox(settings: Any) -> Any:
    from worker.delivery.outbox import Outbox

    return Outbox(open_store(settings))


def _check_endpoint_url(url: str) -> str:
    """A URL the dispatcher can call: http(s) with a host, or celery://QUEUE. Addresses are
    checked at every delivery (DNS can change), not here."""
    from urllib.parse import urlsplit

    from worker.delivery.events import QUEUE_SCHEME

    if url.startswith(QUEUE_SCHEME):
        queue = url[len(QUEUE_SCHEME):]
        if not queue or "/" in queue or len(queue) > 200:
            raise fail(f"URL: write celery://QUEUE with a queue name (got {url!r})")
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(f"URL: an http(s) URL with a host, or celery://QUEUE (got {url!r})")
    if parts.username or parts.password:
        raise fail("URL: no user or password in the URL (the signature authenticates the sender)")
    return url


@webhooks_app.command("add")
def add(
    url: str = typer.Argument(..., help="https://… to POST events to, or celery://QUEUE for a result queue"),
    events: Optional[str] = typer.Option(None, "--events", help="Comma-separated: article.done,article.partial,article.failed (default: all)"),
    secret_env: Optional[str] = typer.Option(None, "--secret-env", help="Take the whsec_ secret from this environment variable"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Register an endpoint. Its signing secret is printed once."""
    from worker.delivery.events import QUEUE_SCHEME, parse_event_types
    from worker.delivery.exceptions import DeliveryError
    from worker.delivery.signing import check_secret, new_secret

    settings = _settings()
    url = _check_endpoint_url(url.strip())
    try:
        types = parse_event_types(events)
        if secret_env:
            value = os.environ.get(secret_env)
            if not value:
                raise fail(f"--secret-env: the environment variable {secret_env} is not set")
            secret = check_secret(value.strip())
        else:
            secret = new_secret()
    except DeliveryError as exc:
        raise fail(str(exc)) from None
    endpoint = _outbox(settings).add_endpoint(url, types, secret)
    shown = None if secret_env or url.startswith(QUEUE_SCHEME) else secret
    if json_out:
        print_json({"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events), "secret": shown})
        return
    typer.echo(f"endpoint {endpoint.id}: {endpoint.url} ({', '.join(endpoint.events)})")
    if shown:
        typer.echo(f"secret: {shown}")
        typer.echo("(shown only now: give it to the receiver, which verifies webhook-signature with it)")


@webhooks_app.command("list")
def list_endpoints(json_out: bool = typer.Option(False, "--json")) -> None:
    """The registered endpoints (secrets are never shown again)."""
    endpoints = _outbox(_settings()).endpoints()
    if json_out:
        print_json([{"id": e.id, "url": e.url, "events": list(e.events), "created_at": e.created_at.isoformat()}
                    for e in endpoints])
        return
    for e in endpoints:
        typer.echo(f"{e.id}\t{e.url}\t{','.join(e.events)}\t{e.created_at:%Y-%m-%d %H:%M}")
    if not endpoints:
        typer.echo("no endpoints (babelwire webhooks add URL)", err=True)


@webhooks_app.command("remove")
def remove(endpoint_id: int = typer.Argument(..., help="The id `webhooks list` shows")) -> None:
    """Remove an endpoint; its undelivered events to it end as dead."""
    ended = _outbox(_settings()).remove_endpoint(endpoint_id)
    if ended is None:
        raise fail(f"no endpoint {endpoint_id}", code=1)
    typer.echo(f"endpoint {endpoint_id} removed ({ended} pending deliveries ended)")


@webhooks_app.command("deliveries")
def deliveries(
    failed: bool = typer.Option(False, "--failed", help="Only dead ones and pending ones that failed before"),
    job: Optional[str] = typer.Option(None, "--job", help="Only this job's"),
    limit: int = typer.Option(100, "--limit", min=1, max=100_000),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Deliveries, newest first: state, attempts, last answer or error."""
    rows = _outbox(_settings()).deliveries(failed_only=failed, job_id=job, limit=limit)
    if json_out:
        for d in rows:
            print_json(d.to_dict())
        return
    for d in rows:
        last = d.last_error or (f"HTTP {d.last_status}" if d.last_status else "")
        typer.echo(f"{d.id}\t{d.state}\t{d.event_type}\tjob {d.job_id}\t{d.target}\tattempts {d.attempts}\t{last}")


@webhooks_app.command("replay")
def replay(
    ids: Optional[list[str]] = typer.Argument(None, help="Delivery ids, or event ids (msg_…)"),
    since: Optional[str] = typer.Option(None, "--since", help="Every event since: ISO 8601 or an age (30m, 12h, 7d)"),
) -> None:
    """Send again, with the same webhook-id (receivers deduplicate by it)."""
    ids = ids or []
    if not ids and since is None:
        raise fail("name delivery or event ids, or --since TIME")
    delivery_ids, event_ids = [], []
    for value in ids:
        if value.isdigit():
            delivery_ids.append(int(value))
        elif value.startswith("msg_"):
            event_ids.append(value)
        else:
            raise fail(f"{value!r} is neither a delivery id (a number) nor an event id (msg_…)")
    count = _outbox(_settings()).replay(delivery_ids=delivery_ids, event_ids=event_ids,
                                        since=parse_since(since) if since else None)
    typer.echo(f"{count} deliveries queued again")
    if not count:
        raise typer.Exit(1)


@webhooks_app.command("prune")
def prune(
    older_than: str = typer.Option("30d", "--older-than", help="Events older than this age (30m, 12h, 7d) or date"),
) -> None:
    """Delete old events that have nothing left to deliver (run from cron to bound the outbox)."""
    removed = _outbox(_settings()).prune(parse_since(older_than))
    typer.echo(f"{removed} events removed")


@webhooks_app.command("dispatch")
def dispatch(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit"),
    metrics_port: int = typer.Option(0, "--metrics-port", help="Serve Prometheus metrics on this port (0: off)"),
) -> None:
    """Deliver the outbox until SIGTERM/SIGINT (run one or more, apart from the workers)."""
    from worker import logging as json_logs
    from worker.delivery.dispatcher import Dispatcher

    settings = _settings()
    json_logs.configure_logging(settings)
    store = open_store(settings)
    counter = _outcome_counter(metrics_port)
    try:
        dispatcher = Dispatcher.from_settings(store, settings, on_outcome=counter)
    except ValueError as exc:  # a bad allowlist entry, network or secret
        raise fail(f"configuration: {exc}") from None
    if once:
        dispatcher.run_once()
        raise typer.Exit(EXIT_OK)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger(__name__).info("webhook dispatcher started (concurrency %d)", settings.webhook_concurrency)
    dispatcher.run(stop)


def _outcome_counter(port: int) -> Any:
    if not port:
        return None
    from prometheus_client import CollectorRegistry, Counter, start_http_server

    registry = CollectorRegistry()
    attempts = Counter("babelwire_webhook_attempts", "Webhook and result-queue delivery attempts by outcome "
                       "(delivered, failed: due again, dead)", ["outcome"], registry=registry)
    for outcome in ("delivered", "failed", "dead"):
        attempts.labels(outcome)
    start_http_server(port, registry=registry)
    return lambda outcome: attempts.labels(outcome).inc()

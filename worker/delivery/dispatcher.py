"""The dispatcher: delivers the outbox, at least once, out of the workers' way.

It runs as a process of its own (`babelwire webhooks dispatch`; one or several — they share
the work through the outbox's leases), never inside `babelwire worker`: a worker's only part
in delivery is a few rows written in the transaction that stores a result. So a slow, failing
or dead receiver holds only dispatcher threads; it never slows article processing and never
grows worker memory.

Memory is bounded: at most `concurrency` deliveries are claimed at a time (each one event
body and at most `max_response_bytes` of an answer); everything else waits in the database.

A failed attempt is due again after an exponential backoff with jitter (base · 2^(n-1),
capped, times a random 0.5–1); once a delivery has been failing for `retry_for_s` (25 h by
default) it is dead. Backoff is per endpoint as well: when a registered endpoint fails, all
its pending deliveries wait with it (n counts the endpoint's failures in a row), and for up
to 30 s the dispatcher also leaves alone the ones that arrive meanwhile, so a dead receiver is
probed a few times per interval instead of once per event; its first success makes the held
ones due at once. Refusals (a callback off the allowlist or to a forbidden address, no
callback secret, a removed endpoint) are dead at once. 2xx is delivered; anything else,
redirects included (never followed), is a failed attempt.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable
from urllib.parse import urlsplit

from worker.delivery.events import QUEUE_SCHEME
from worker.delivery.exceptions import DeliveryError, UnsafeURLError
from worker.delivery.outbox import Claimed, Outbox
from worker.delivery.signing import signed_headers
from worker.delivery.ssrf import AddressPolicy, AllowRule, HttpLimits, UrlGuard, parse_allowlist, post
from worker.store.schema import utcnow

log = logging.getLogger(__name__)

DELIVERED, FAILED, DEAD = "delivered", "failed", "dead"  # outcomes of one attempt (metrics label)
USER_AGENT = "babelwire-webhooks/1"
HOLD_NEW_S = 30.0  # how long a dispatcher leaves new deliveries of a failing endpoint alone


@dataclass(frozen=True)
class DispatchOptions:
    concurrency: int = 8
    poll_s: float = 1.0
    retry_base_s: float = 5.0
    retry_max_s: float = 3600.0
    retry_for_s: float = 25 * 3600.0
    http: HttpLimits = HttpLimits()
    callback_allowlist: tuple[AllowRule, ...] = ()
    callback_secret: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> "DispatchOptions":
        from worker.delivery.signing import check_secret

        secret = settings.webhook_callback_secret
        return cls(
            concurrency=settings.webhook_concurrency, poll_s=settings.webhook_poll_s,
            retry_base_s=settings.webhook_retry_base_s, retry_max_s=settings.webhook_retry_max_s,
            retry_for_s=settings.webhook_retry_for_s,
            http=HttpLimits(connect_s=settings.webhook_connect_timeout_s, read_s=settings.webhook_read_timeout_s,
                            total_s=3 * settings.webhook_read_timeout_s,
                            max_response_bytes=settings.webhook_max_response_bytes),
            callback_allowlist=parse_allowlist(settings.webhook_callback_allowlist),
            callback_secret=check_secret(secret) if secret else None,
        )

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery is ours: longer than any one attempt can take."""
        return self.http.connect_s + self.http.read_s + self.http.total_s + 5


def retry_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempt + 1`: exponential from `base_s`, capped, jittered."""
    ceiling = min(max_s, base_s * 2 ** min(attempt - 1, 60))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Attempt:
    outcome: str  # DELIVERED, FAILED (due again) or DEAD
    status: int | None = None
    error: str | None = None


class Dispatcher:
    def __init__(self, outbox: Outbox, options: DispatchOptions, guard: UrlGuard, publisher: Any = None,
                 on_outcome: Callable[[str], None] | None = None):
        self.outbox = outbox
        self.options = options
        self.guard = guard
        self.publisher = publisher  # ResultQueuePublisher, for celery:// endpoints
        self.on_outcome = on_outcome or (lambda outcome: None)
        self._failures: dict[int, int] = {}  # endpoint id → failed attempts in a row (one per endpoint)
        self._held: dict[int, Any] = {}  # endpoint id → until when its new deliveries wait too
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, store: Any, settings: Any, on_outcome: Callable[[str], None] | None = None) -> "Dispatcher":
        from worker.delivery.result_queue import ResultQueuePublisher

        return cls(Outbox(store), DispatchOptions.from_settings(settings),
                   UrlGuard(AddressPolicy.from_strings(settings.webhook_allow_networks)),
                   ResultQueuePublisher(settings.broker_url), on_outcome)

    # --- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; then finish the attempts in flight and return."""
        limit = self.options.concurrency
        with ThreadPoolExecutor(limit, thread_name_prefix="webhook") as pool:
            inflight: set[Future[None]] = set()
            while not stop.is_set():
                claimed = self._claim(limit - len(inflight)) if len(inflight) < limit else []
                inflight.update(pool.submit(self.deliver, c) for c in claimed)
                if claimed and len(inflight) < limit:
                    continue  # more may be due
                if inflight:
                    _, pending = wait(inflight, timeout=self.options.poll_s, return_when=FIRST_COMPLETED)
                    inflight = set(pending)
                else:
                    stop.wait(self.options.poll_s)
            wait(inflight)

    def run_once(self) -> int:
        """Claim what is due now (up to `concurrency`), attempt it all, return how many."""
        claimed = self._claim(self.options.concurrency)
        with ThreadPoolExecutor(max(1, len(claimed))) as pool:
            list(pool.map(self.deliver, claimed))
        return len(claimed)

    def _claim(self, limit: int) -> list[Claimed]:
        now = utcnow()
        with self._lock:  # events that arrive for a held endpoint wait with its backlog
            held = [e for e, until in self._held.items() if until > now]
        try:
            return self.outbox.claim(limit, self.options.lease_s, held)
        except Exception as exc:  # the database is down: nothing is lost, try again later
            log.warning("webhooks: cannot read the outbox: %s: %s", type(exc).__name__, exc)
            return []

    # --- one delivery -------------------------------------------------------------------------

    def deliver(self, claimed: Claimed) -> None:
        """Attempt it and record the outcome (a crash before recording: the lease runs out)."""
        attempt = self.attempt(claimed)
        outcome, error, retry_at = attempt.outcome, attempt.error or "failed", None
        endpoint = claimed.endpoint_id  # None: an article's callback, backed off on its own
        now = utcnow()
        with self._lock:
            streak = self._failures.pop(endpoint, 0) if outcome == DELIVERED else self._failures.get(endpoint, 0)
            if outcome == DELIVERED:
                self._held.pop(endpoint, None)
            if outcome == FAILED and endpoint is not None:
                streak = self._failures[endpoint] = streak + 1
        hold_until = None  # a failing endpoint: when its other deliveries may be tried again
        if outcome == FAILED:
            delay = retry_delay(max(claimed.attempt, streak), self.options.retry_base_s, self.options.retry_max_s)
            hold_until = now + timedelta(seconds=delay) if endpoint is not None else None
            if now - claimed.created_at < timedelta(seconds=self.options.retry_for_s):
                retry_at = now + timedelta(seconds=delay)
            else:
                outcome, error = DEAD, f"{error} (gave up after {claimed.attempt} attempts)"
        where = _where(claimed.target)
        extra = {"delivery_id": claimed.delivery_id, "event_id": claimed.event_id, "target": where,
                 "attempt": claimed.attempt, "outcome": outcome}
        try:
            if outcome == DELIVERED:
                self.outbox.delivered(claimed.delivery_id, attempt.status)
                if endpoint is not None:  # held by this or another dispatcher (a read when nothing is)
                    self.outbox.release_endpoint(endpoint, self.options.lease_s)
                log.info("webhook delivered to %s", where, extra=extra)
            else:
                self.outbox.failed(claimed.delivery_id, error, attempt.status, retry_at)
                if hold_until is not None and endpoint is not None:
                    self.outbox.hold_endpoint(endpoint, hold_until, now - timedelta(seconds=self.options.retry_for_s),
                                              error)
                    with self._lock:  # briefly: an operator's replay waits at most this long
                        self._held[endpoint] = min(hold_until, now + timedelta(seconds=HOLD_NEW_S))
                log.log(logging.INFO if outcome == FAILED else logging.WARNING, "webhook to %s %s: %s", where,
                        outcome, error, extra=extra)
        except Exception as exc:  # could not record it: the lease runs out and it is tried again
            log.warning("webhooks: cannot record delivery %s: %s: %s", claimed.delivery_id, type(exc).__name__, exc)
            return
        self.on_outcome(outcome)

    def attempt(self, claimed: Claimed) -> Attempt:
        """One attempt; never raises."""
        try:
            if claimed.target.startswith(QUEUE_SCHEME):
                if self.publisher is None:
                    return Attempt(DEAD, error="no result-queue publisher")
                self.publisher.publish(claimed.target[len(QUEUE_SCHEME):], claimed.event_id, claimed.payload)
                return Attempt(DELIVERED)
            if claimed.endpoint_id is None:  # the article's own callback_url
                secret, allowlist = self.options.callback_secret, self.options.callback_allowlist
                if not secret:
                    return Attempt(DEAD, error="callbacks need BABELWIRE_WEBHOOK_CALLBACK_SECRET (a whsec_ secret)")
            else:
                secret, allowlist = claimed.secret, None
                if secret is None:
                    return Attempt(DEAD, error="endpoint removed")
            target = self.guard.check(claimed.target, allowlist)
            headers = {**signed_headers(secret, claimed.event_id, claimed.payload),
                       "content-type": "application/json", "user-agent": USER_AGENT}
            answer = post(target, claimed.payload.encode(), headers, self.options.http)
        except UnsafeURLError as exc:
            return Attempt(DEAD, error=f"refused: {exc}")
        except DeliveryError as exc:
            return Attempt(FAILED, error=str(exc))
        except Exception as exc:  # a broker fault while publishing, a bug: retried, never fatal
            return Attempt(FAILED, error=f"{type(exc).__name__}: {exc}")
        if 200 <= answer.status < 300:
            return Attempt(DELIVERED, answer.status)
        if 300 <= answer.status < 400:
            return Attempt(FAILED, answer.status, f"HTTP {answer.status}: redirect to {answer.location!r} not followed")
        return Attempt(FAILED, answer.status, f"HTTP {answer.status}")


def _where(target: str) -> str:
    """What a log line may show of a target: scheme, host and port (a path can hold a token)."""
    if target.startswith(QUEUE_SCHEME):
        return target
    parts = urlsplit(target)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"

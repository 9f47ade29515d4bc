"""The webhook outbox in the SQL store: endpoints, events, deliveries.

`record_event` runs inside the store's transaction that finishes or fails a job, so an event
exists if and only if the result it reports was committed (no event for a rolled-back
result, no result without its event). Everything else here is the dispatcher's and the
CLI's side, in transactions of their own.

Claiming is a lease: a due delivery's `next_attempt_at` is pushed `lease_s` ahead in the
claiming transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so several dispatchers share the
work; SQLite: writers are serialized anyway). A dispatcher killed mid-delivery leaves the row
pending, and it is due again when the lease runs out: delivery is at least once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from worker.delivery.events import EVENT_FOR_STATUS, event_body, new_event_id
from worker.store.schema import (
    ArticleRow,
    JobRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookEventRow,
    utcnow,
)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
DELIVERY_STATES = (PENDING, DELIVERED, DEAD)
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    events: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class Claimed:
    """A delivery to attempt now, with everything the attempt needs."""

    delivery_id: int
    event_id: str
    event_type: str
    payload: str
    target: str
    endpoint_id: int | None  # None: the article's callback_url
    secret: str | None  # the endpoint's; None for a callback or a removed endpoint
    attempt: int  # this attempt's number, from 1
    created_at: datetime  # the delivery's (a replay starts a new retry window)


@dataclass(frozen=True)
class Delivery:
    """One delivery as `webhooks deliveries` and the review page show it."""

    id: int
    event_id: str
    event_type: str
    job_id: str
    target: str
    endpoint_id: int | None
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class DeliveryStats:
    by_state: dict[str, int]
    oldest_pending_s: float  # age of the oldest undelivered (pending) event; 0 when none


# --- the write side of a job (inside the store's transaction) -------------------------------------


def record_event(session: Session, job: JobRow, insert: Any) -> str | None:
    """Write the event for the just-finished `job` and one pending delivery per target
    (endpoints subscribed to its type, and the job's callback_url). Nothing when no one
    listens. Idempotent per job (`webhook_events.job_id` is unique). Returns the event id.

    It runs inside the write transaction that stores the result (on SQLite: holding the one
    write lock), so it does the least it can: Core statements, and no body — the dispatcher
    renders that from the committed job (`render_payloads`), which never changes once
    finished, before the first attempt."""
    event_type = EVENT_FOR_STATUS.get(job.status)
    if event_type is None:
        return None
    endpoints = session.execute(
        select(WebhookEndpointRow.id, WebhookEndpointRow.url, WebhookEndpointRow.events).order_by(WebhookEndpointRow.id)
    ).all()
    targets: list[tuple[int | None, str]] = [(e.id, e.url) for e in endpoints if event_type in (e.events or ())]
    if job.callback_url:
        targets.append((None, job.callback_url))
    if not targets:
        return None
    now = utcnow()
    event_id = new_event_id()
    connection = session.connection()
    inserted = connection.execute(
        insert(WebhookEventRow)
        .values(id=event_id, type=event_type, job_id=job.id, payload=None, created_at=now)
        .on_conflict_do_nothing(index_elements=["job_id"])
        .returning(WebhookEventRow.id)  # (rowcount is -1 here on psycopg)
    ).scalar_one_or_none()
    if inserted is None:
        return None  # this job's event exists already
    connection.execute(insert(WebhookDeliveryRow).values([
        {"event_id": event_id, "endpoint_id": endpoint_id, "target": target, "state": PENDING, "attempts": 0,
         "next_attempt_at": now, "created_at": now}
        for endpoint_id, target in targets
    ]))
    return event_id


def _job_document(session: Session, job: JobRow) -> dict[str, Any]:
    """The job as GET /v1/jobs/{id} returns it (the API's own serialisation)."""
    from worker.api.schemas import job_document
    from worker.store.results import result_in_session

    article = session.get(ArticleRow, job.article_key)
    return job_document(job, article, result_in_session(session, job, article)).model_dump(mode="json")


# --- endpoints ------------------------------------------------------------------------------------


class Outbox:
    """The dispatcher's and the CLI's queries over a store (`worker.store.Store`)."""

    def __init__(self, store: Any):
        self.store = store

    def add_endpoint(self, url: str, events: Sequence[str], secret: str) -> Endpoint:
        now = utcnow()
        with self.store._write() as session:
            row = WebhookEndpointRow(url=url, events=list(events), secret=secret, created_at=now)
            session.add(row)
            session.flush()
            return _endpoint(row)

    def endpoints(self) -> list[Endpoint]:
        with self.store._read() as session:
            return [_endpoint(r) for r in session.execute(select(WebhookEndpointRow).order_by(WebhookEndpointRow.id)).scalars()]

    def remove_endpoint(self, endpoint_id: int) -> int | None:
        """Delete the endpoint; its pending deliveries end dead. None if there was none, else
        how many pending deliveries were ended."""
        now = utcnow()
        with self.store._write() as session:
            row = session.get(WebhookEndpointRow, endpoint_id)
            if row is None:
                return None
            session.delete(row)
            ended = session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.endpoint_id == endpoint_id, WebhookDeliveryRow.state == PENDING)
                .values(state=DEAD, last_error="endpoint removed", next_attempt_at=now)
            ).rowcount
            return int(ended or 0)

    # --- the dispatcher ---------------------------------------------------------------------------

    def claim(self, limit: int, lease_s: float, skip_endpoints: Sequence[int] = ()) -> list[Claimed]:
        """Up to `limit` due deliveries, leased for `lease_s` (see the module doc), none of the
        endpoints in `skip_endpoints` (held: failing, see `hold_endpoint`)."""
        if limit <= 0:
            return []
        now = utcnow()
        due = (WebhookDeliveryRow.state == PENDING) & (WebhookDeliveryRow.next_attempt_at <= now)
        if skip_endpoints:
            due = due & (WebhookDeliveryRow.endpoint_id.is_(None)
                         | WebhookDeliveryRow.endpoint_id.not_in(list(skip_endpoints)))
        with self.store._read() as session:  # an idle poll takes no write lock (SQLite has one)
            if session.execute(select(WebhookDeliveryRow.id).where(due).limit(1)).first() is None:
                return []
        with self.store._write() as session:
            ids = list(session.execute(
                select(WebhookDeliveryRow.id)
                .where(due)
                .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars())
            if not ids:
                return []
            session.execute(
                update(WebhookDeliveryRow).where(WebhookDeliveryRow.id.in_(ids))
                .values(next_attempt_at=now + timedelta(seconds=lease_s), attempts=WebhookDeliveryRow.attempts + 1,
                        last_attempt_at=now)
            )
            rows = session.execute(
                select(WebhookDeliveryRow, WebhookEventRow, WebhookEndpointRow.secret)
                .join(WebhookEventRow, WebhookEventRow.id == WebhookDeliveryRow.event_id)
                .outerjoin(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
                .where(WebhookDeliveryRow.id.in_(ids))
                .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.id)
            ).all()
        missing = [e.id for _, e, _ in rows if e.payload is None]
        bodies = self.render_payloads(missing) if missing else {}
        return [
            Claimed(d.id, e.id, e.type, e.payload or bodies[e.id], d.target, d.endpoint_id, secret, d.attempts,
                    d.created_at)
            for d, e, secret in rows
        ]

    def render_payloads(self, event_ids: Sequence[str]) -> dict[str, str]:
        """The events' bodies: rendered from their (finished, unchanging) jobs where not yet
        stored, then stored, so every attempt sends the same text. Two dispatchers rendering
        one event at once render the same text."""
        ids = list(dict.fromkeys(event_ids))
        with self.store._read() as session:
            events = session.execute(select(WebhookEventRow).where(WebhookEventRow.id.in_(ids))).scalars().all()
            bodies = {e.id: e.payload for e in events if e.payload is not None}
            todo = [e for e in events if e.payload is None]
            jobs = {j.id: j for j in session.execute(
                select(JobRow).where(JobRow.id.in_([e.job_id for e in todo]))).scalars()} if todo else {}
            rendered = {e.id: event_body(e.type, e.created_at, _job_document(session, jobs[e.job_id])) for e in todo}
        if rendered:
            with self.store._write() as session:
                for event_id, body in rendered.items():
                    session.execute(update(WebhookEventRow)
                                    .where(WebhookEventRow.id == event_id, WebhookEventRow.payload.is_(None))
                                    .values(payload=body))
        return {**bodies, **rendered}

    def delivered(self, delivery_id: int, status: int | None) -> None:
        now = utcnow()
        with self.store._write() as session:
            session.execute(
                update(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id)
                .values(state=DELIVERED, delivered_at=now, last_status=status, last_error=None, next_attempt_at=now)
            )

    def failed(self, delivery_id: int, error: str, status: int | None, retry_at: datetime | None) -> None:
        """Record a failed attempt: due again at `retry_at`, or dead when None."""
        now = utcnow()
        values: dict[str, Any] = {"last_status": status, "last_error": error[:MAX_ERROR_CHARS]}
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        else:
            values.update(state=DEAD, next_attempt_at=now)
        with self.store._write() as session:
            session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery_id, WebhookDeliveryRow.state == PENDING)
                .values(**values)
            )

    def hold_endpoint(self, endpoint_id: int, until: datetime, given_up_before: datetime, error: str) -> None:
        """The endpoint is failing: its other pending deliveries wait until `until` too (so a
        dead receiver costs one attempt per backoff interval, not one per event), and those
        created before `given_up_before` (past the retry window) are dead."""
        with self.store._write() as session:
            mine = (WebhookDeliveryRow.endpoint_id == endpoint_id) & (WebhookDeliveryRow.state == PENDING)
            session.execute(
                update(WebhookDeliveryRow).where(mine, WebhookDeliveryRow.created_at < given_up_before)
                .values(state=DEAD, last_error=f"gave up: the endpoint kept failing ({error})"[:MAX_ERROR_CHARS])
            )
            session.execute(
                update(WebhookDeliveryRow).where(mine, WebhookDeliveryRow.next_attempt_at < until)
                .values(next_attempt_at=until)
            )

    def release_endpoint(self, endpoint_id: int, lease_s: float) -> int:
        """The endpoint answers again: its held deliveries are due now. Only those due later
        than a lease from now: a delivery claimed by a dispatcher at this moment is due at most a
        lease ahead, and is left alone (no second copy while it is in flight). Returns how many."""
        now = utcnow()
        held = ((WebhookDeliveryRow.endpoint_id == endpoint_id) & (WebhookDeliveryRow.state == PENDING)
                & (WebhookDeliveryRow.next_attempt_at > now + timedelta(seconds=lease_s)))
        with self.store._read() as session:  # the usual case, nothing held: no write
            if session.execute(select(WebhookDeliveryRow.id).where(held).limit(1)).first() is None:
                return 0
        with self.store._write() as session:
            return int(session.execute(update(WebhookDeliveryRow).where(held).values(next_attempt_at=now)).rowcount or 0)

    # --- views and replays ----------------------------------------------------------------------

    def deliveries(self, *, failed_only: bool = False, job_id: str | None = None, limit: int = 100) -> list[Delivery]:
        """Newest first. `failed_only`: dead ones, and pending ones that failed at least once."""
        stmt = (
            select(WebhookDeliveryRow, WebhookEventRow.type, WebhookEventRow.job_id)
            .join(WebhookEventRow, WebhookEventRow.id == WebhookDeliveryRow.event_id)
            .order_by(WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.id.desc())
            .limit(limit)
        )
        if failed_only:
            stmt = stmt.where((WebhookDeliveryRow.state == DEAD)
                              | ((WebhookDeliveryRow.state == PENDING) & WebhookDeliveryRow.last_error.is_not(None)))
        if job_id is not None:
            stmt = stmt.where(WebhookEventRow.job_id == job_id)
        with self.store._read() as session:
            return [_delivery(d, t, j) for d, t, j in session.execute(stmt).all()]

    def replay(self, *, delivery_ids: Iterable[int] = (), event_ids: Iterable[str] = (),
               since: datetime | None = None) -> int:
        """Send again (same event id, a new retry window): the deliveries named, those of the
        events named, or those of every event created at or after `since`. Returns how many."""
        now = utcnow()
        conditions = []
        delivery_ids, event_ids = list(delivery_ids), list(event_ids)
        if delivery_ids:
            conditions.append(WebhookDeliveryRow.id.in_(delivery_ids))
        if event_ids:
            conditions.append(WebhookDeliveryRow.event_id.in_(event_ids))
        if since is not None:
            conditions.append(WebhookDeliveryRow.event_id.in_(
                select(WebhookEventRow.id).where(WebhookEventRow.created_at >= since)))
        if not conditions:
            return 0
        with self.store._write() as session:
            return int(session.execute(
                update(WebhookDeliveryRow).where(or_(*conditions))
                .values(state=PENDING, attempts=0, next_attempt_at=now, created_at=now, last_error=None,
                        last_status=None, delivered_at=None)
            ).rowcount or 0)

    def prune(self, before: datetime) -> int:
        """Delete the events created before `before` that have nothing left to deliver, with
        their deliveries. Returns how many events went."""
        open_events = select(WebhookDeliveryRow.event_id).where(WebhookDeliveryRow.state == PENDING)
        with self.store._write() as session:
            ids = list(session.execute(
                select(WebhookEventRow.id).where(WebhookEventRow.created_at < before,
                                                 WebhookEventRow.id.not_in(open_events))
            ).scalars())
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                session.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.event_id.in_(chunk)))
                session.execute(delete(WebhookEventRow).where(WebhookEventRow.id.in_(chunk)))
        return len(ids)

    def stats(self) -> DeliveryStats:
        with self.store._read() as session:
            by_state = {s: 0 for s in DELIVERY_STATES}
            by_state.update(session.execute(
                select(WebhookDeliveryRow.state, func.count()).group_by(WebhookDeliveryRow.state)).all())
            oldest = session.scalar(
                select(func.min(WebhookEventRow.created_at))
                .join(WebhookDeliveryRow, WebhookDeliveryRow.event_id == WebhookEventRow.id)
                .where(WebhookDeliveryRow.state == PENDING))
        if oldest is not None and oldest.tzinfo is None:  # SQLite's aggregate skips the column type
            from datetime import timezone

            oldest = oldest.replace(tzinfo=timezone.utc)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        return DeliveryStats(by_state, max(0.0, age))


def _endpoint(row: WebhookEndpointRow) -> Endpoint:
    return Endpoint(row.id, row.url, tuple(row.events or ()), row.created_at)


def _delivery(d: WebhookDeliveryRow, event_type: str, job_id: str) -> Delivery:
    return Delivery(d.id, d.event_id, event_type, job_id, d.target, d.endpoint_id, d.state, d.attempts,
                    d.last_status, d.last_error, d.next_attempt_at, d.last_attempt_at, d.delivered_at, d.created_at)

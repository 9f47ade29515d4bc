"""The write side of the store: submitting articles, claiming and finishing their jobs.

Idempotency lives in unique keys, not in luck:
- `articles.key` is the article's identity (`Article.key`: normalized text plus the options
  that change the output), and `jobs.article_key` is unique, so one article is one job;
- `texts` is UNIQUE(article_key, kind, lang) and written with an upsert, so a message that is
  delivered twice (a worker killed after writing, before acking) rewrites the same rows.

One publish per job: `submit` claims the jobs it will publish with a conditional
`UPDATE … SET sent_at WHERE sent_at IS NULL`, and publishes them inside the same transaction
(a `publish` callback). Concurrent submitters of one article serialize on the row: exactly one
of them sees `sent_at` empty. A publish that fails rolls the transaction back, so the job is
left unsent (and is sent by the next submission of the same article), never half-sent.

One run at a time: a job is processed by the message that carries its id (`task_id == job.id`),
or by any message for its article when no message was ever sent for it. While a job is
`running` and younger than `running_lease_s` (the hard time limit: no run outlives it), only
a delivery that supersedes the running one takes it over — a redelivery (the broker gave the
message back because its worker died or its pool process was killed) or a Celery retry of
the message (the running delivery gave up with a retry). Any other copy of the message (a
duplicate publish) is dropped.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import select, update

from pipeline.article import Article
from pipeline.result import FAILED, Result
from worker.store.engine import Database
from worker.store.schema import (
    FINISHED,
    QUEUED,
    RUNNING,
    SUMMARY,
    TITLE,
    ArticleRow,
    JobRow,
    TextRow,
    utcnow,
)

IN_CHUNK = 500  # ids per IN (...) clause; well under SQLite's variable limit
DEFAULT_RUNNING_LEASE_S = 360.0  # the default hard time limit


@dataclass(frozen=True)
class Submission:
    """What happened to one submitted article."""

    job_id: str
    duplicate: bool  # an earlier submission already made this job
    send: bool  # this submission published (or must publish) its message


@dataclass(frozen=True)
class JobStart:
    """Whether a delivered message should process its job now."""

    job_id: str
    proceed: bool
    status: str
    attempts: int
    reason: str = ""


Publish = Callable[[list[tuple[Article, Submission]]], None]


def job_options(article: Article) -> dict[str, Any]:
    """The output-changing options of a job, as stored (the article key already hashes them)."""
    return {
        "lang": article.lang,
        "targets": list(article.targets or ()),
        "summary": article.summary.model_dump(),
    }


def article_row(key: str, external_id: Any, title: Any, url: Any, created_at: datetime) -> dict[str, Any]:
    return {"key": key, "external_id": external_id, "title": title, "url": url, "created_at": created_at}


def job_row(job_id: str, article_key: str, queue: str, now: datetime, **fields: Any) -> dict[str, Any]:
    """The one builder of a new job row (queued, nothing run yet, unless `fields` say otherwise)."""
    row: dict[str, Any] = {
        "id": job_id, "article_key": article_key, "queue": queue, "status": QUEUED, "attempts": 0,
        "error": None, "errors": {}, "timings": {}, "options": {}, "models": {}, "checks": {},
        "created_at": now, "updated_at": now, "sent_at": None, "started_at": None, "finished_at": None,
        "callback_url": None,
    }
    unknown = set(fields) - set(row)
    if unknown:
        raise TypeError(f"job_row: unknown column(s) {sorted(unknown)}")
    row.update(fields)
    return row


def malformed_key(raw: Any) -> str:
    """A stable identity for a message that failed validation (so a re-delivery is no new job)."""
    blob = json.dumps({"malformed": raw}, sort_keys=True, ensure_ascii=False, default=str)
    # a message's JSON can carry lone surrogates ("\ud800"), which are not UTF-8
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def storable(text: str) -> str:
    """Text from outside as the database can store it: no NUL characters (PostgreSQL refuses
    them), no lone surrogates (not UTF-8)."""
    return text.replace("\0", "").encode("utf-8", "replace").decode("utf-8")


def _text_or_none(value: Any, limit: int) -> str | None:
    return storable(value)[:limit] if isinstance(value, str) else None


def chunks(items: list[str], size: int = IN_CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class JobWrites(Database):
    running_lease_s: float = DEFAULT_RUNNING_LEASE_S

    def submit(self, articles: Sequence[Article], queue: str, publish: Publish | None = None) -> list[Submission]:
        """Create article and job rows (status queued) for a batch, and publish the jobs whose
        message never went out, all in one transaction.

        An article whose key already has a job is a duplicate and keeps that job's id. Returns
        one Submission per article, in order (an article repeated within the batch is a duplicate
        of its first occurrence). `publish` gets the (article, submission) pairs to send; when
        it raises, nothing of the batch is written. Without `publish`, the caller promises to send
        the `send` ones (tests; a job claimed but never sent is found by `start_job` anyway).

        Articles of one batch get created_at stamps one microsecond apart in submission order,
        so "the newest for this external id" follows the order they were sent in.
        """
        if not articles:
            return []
        now = utcnow()
        unique = list({a.key: a for a in reversed(articles)}.values())[::-1]  # first occurrence, in order
        new_ids = {a.key: uuid.uuid4().hex for a in unique}
        stamps = {a.key: now + timedelta(microseconds=i) for i, a in enumerate(unique)}
        with self._write() as session:
            session.execute(
                self._insert(ArticleRow).on_conflict_do_nothing(index_elements=["key"]),
                [article_row(a.key, a.id, a.title, a.url, stamps[a.key]) for a in unique],
            )
            session.execute(
                self._insert(JobRow).on_conflict_do_nothing(index_elements=["article_key"]),
                [job_row(new_ids[a.key], a.key, queue, stamps[a.key], options=job_options(a), callback_url=a.callback_url)
                 for a in unique],
            )
            # The decision to publish: only the submitter whose UPDATE changes the row sends.
            # `status || ''` keeps SQLite's planner on the article_key index: on the status
            # index it walks every queued job (219 ms per chunk at 1M queued, 0.4 ms this way).
            claimed: set[str] = set()
            for chunk in chunks(list(new_ids)):
                claimed.update(session.execute(
                    update(JobRow)
                    .where(JobRow.article_key.in_(chunk), JobRow.sent_at.is_(None), (JobRow.status + "") == QUEUED)
                    .values(sent_at=now)
                    .returning(JobRow.id)
                ).scalars())
            ids: dict[str, str] = {}
            for chunk in chunks(list(new_ids)):
                ids.update(session.execute(
                    select(JobRow.article_key, JobRow.id).where(JobRow.article_key.in_(chunk))
                ).all())
            out: list[Submission] = []
            seen: set[str] = set()
            for a in articles:
                job_id = ids[a.key]
                first = a.key not in seen
                seen.add(a.key)
                ours = job_id == new_ids[a.key] and first
                out.append(Submission(job_id=job_id, duplicate=not ours, send=first and job_id in claimed))
            to_send = [(a, s) for a, s in zip(articles, out) if s.send]
            if publish is not None and to_send:
                publish(to_send)
        return out

    def mark_sent(self, job_ids: Iterable[str]) -> None:
        """Record that the jobs' messages went out (for messages published outside `submit`)."""
        ids = list(job_ids)
        now = utcnow()
        with self._write() as session:
            for chunk in chunks(ids):
                session.execute(
                    update(JobRow).where(JobRow.id.in_(chunk), JobRow.sent_at.is_(None)).values(sent_at=now)
                )

    # --- worker side -----------------------------------------------------------------------

    def start_job(
        self, article: Article, message_id: str, queue: str, max_attempts: int, *,
        retries: int | None = None, redelivered: bool = False,
    ) -> JobStart:
        """Claim the article's job for the message `message_id` (a Celery task id).

        Creates the rows when the message did not come through `submit` (a news site calling
        `send_task`): the job then takes the message's id. Marks the job running and counts the
        attempt; past `max_attempts` (the worker died on it again and again) it fails for good.

        A job already running under a live lease is not run a second time in parallel: the
        delivery is dropped unless it supersedes the running one — `redelivered` (the broker
        restored the message: its holder is gone) or a retry (`retries`, the message's Celery
        retry count: a delivery that gave up with a retry had started the job at most
        `retries` times, so one with `retries >= attempts` comes after every start).
        """
        now = utcnow()
        with self._write() as session:
            job = session.get(JobRow, message_id, with_for_update=True)
            if job is None:
                session.execute(
                    self._insert(ArticleRow).on_conflict_do_nothing(index_elements=["key"]),
                    [article_row(article.key, article.id, article.title, article.url, now)],
                )
                session.execute(
                    self._insert(JobRow).on_conflict_do_nothing(),
                    [job_row(message_id, article.key, queue, now, options=job_options(article), sent_at=now,
                             callback_url=article.callback_url)],
                )
                job = session.execute(
                    select(JobRow).where(JobRow.article_key == article.key).with_for_update()
                ).scalar_one()
            elif job.article_key != article.key:
                return JobStart(job.id, False, job.status, job.attempts,
                                f"message id {message_id} belongs to another article")
            if job.status in FINISHED:
                return JobStart(job.id, False, job.status, job.attempts, f"already {job.status}")
            if job.id != message_id and job.sent_at is not None:
                return JobStart(job.id, False, job.status, job.attempts, f"duplicate of job {job.id}")
            supersedes = redelivered or (retries is not None and retries >= job.attempts)
            if (job.status == RUNNING and not supersedes
                    and job.updated_at > now - timedelta(seconds=self.running_lease_s)):
                return JobStart(job.id, False, job.status, job.attempts,
                                f"running since {job.started_at:%H:%M:%S} (another delivery is at work)")
            if job.attempts >= max_attempts:
                job.status, job.finished_at, job.updated_at = FAILED, now, now
                job.error = f"gave up after {job.attempts} attempts (the worker was lost or timed out each time)"
                record_event(session, job, self._insert)
                return JobStart(job.id, False, FAILED, job.attempts, job.error)
            job.status, job.attempts = RUNNING, job.attempts + 1
            job.started_at = job.updated_at = now
            job.sent_at = job.sent_at or now
            return JobStart(job.id, True, RUNNING, job.attempts)

    def renew_running(self, job_ids: Iterable[str]) -> None:
        """Extend the lease of running jobs (a worker that holds them is alive)."""
        now = utcnow()
        with self._write() as session:
            for chunk in chunks(list(job_ids)):
                session.execute(
                    update(JobRow).where(JobRow.id.in_(chunk), JobRow.status == RUNNING).values(updated_at=now)
                )

    def finish_job(self, job_id: str, result: Result) -> None:
        """Write the result's texts (upsert) and the job's final status in one transaction."""
        now = utcnow()
        with self._write() as session:
            job = session.get(JobRow, job_id, with_for_update=True)
            if job is None:
                raise LookupError(f"no job {job_id}")
            session.execute(
                update(ArticleRow)
                .where(ArticleRow.key == job.article_key)
                .values(source_lang=result.source_lang, source_lang_confidence=result.source_lang_confidence,
                        cleaned_text=result.cleaned_text)
            )
            rows = _text_rows(job.article_key, result)
            if rows:
                stmt = self._insert(TextRow)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["article_key", "kind", "lang"],
                    set_={"text": stmt.excluded.text, "model": stmt.excluded.model},
                )
                session.execute(stmt, rows)
            job.status = result.status
            job.errors = dict(result.errors)
            job.timings = dict(result.timings_ms)
            job.models = dict(result.models)
            job.checks = dict(result.checks)
            job.error = "; ".join(f"{k}: {v}" for k, v in result.errors.items()) if result.status == FAILED else None
            job.finished_at = job.updated_at = now
            record_event(session, job, self._insert)  # the webhook outbox: with the result, or not at all

    def fail_job(self, job_id: str, error: str) -> None:
        """Mark an unfinished job failed (a finished one keeps its result)."""
        now = utcnow()
        with self._write() as session:
            failed = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.not_in(sorted(FINISHED)))
                .values(status=FAILED, error=error, finished_at=now, updated_at=now)
            ).rowcount
            if failed:
                job = session.get(JobRow, job_id)
                if job is not None:
                    record_event(session, job, self._insert)

    def record_malformed(self, message_id: str, raw: dict[str, Any], queue: str, error: str) -> str:
        """Store a failed job for a message whose article does not validate. Returns the job id."""
        key = malformed_key(raw)
        error = storable(error)  # it can quote the message's field names
        now = utcnow()
        with self._write() as session:
            session.execute(
                self._insert(ArticleRow).on_conflict_do_nothing(index_elements=["key"]),
                [article_row(key, _text_or_none(raw.get("id"), 200), _text_or_none(raw.get("title"), 1000),
                             _text_or_none(raw.get("url"), 2000), now)],
            )
            session.execute(
                self._insert(JobRow).on_conflict_do_nothing(),
                [job_row(message_id, key, queue, now, status=FAILED, attempts=1, error=error,
                         errors={"article": error}, sent_at=now, started_at=now, finished_at=now)],
            )
            stored = session.execute(select(JobRow).where(JobRow.article_key == key)).scalar_one_or_none()
            if stored is not None and stored.id == message_id:
                record_event(session, stored, self._insert)  # idempotent per job: a redelivery adds none
            return stored.id if stored is not None else message_id


def record_event(session: Any, job: JobRow, insert: Any) -> None:
    """The webhook outbox's rows for a job that just finished, in the caller's transaction
    (worker/delivery/outbox.py; imported here, late, because it imports this package)."""
    from worker.delivery.outbox import record_event as write_event

    write_event(session, job, insert)


def _text_rows(article_key: str, result: Result) -> list[dict[str, Any]]:
    rows = []
    for kind, texts in ((TITLE, result.title), (SUMMARY, result.summary)):
        for lang, text in texts.items():
            if kind == TITLE and lang == result.source_lang:
                model = None  # the original headline, cleaned
            elif kind == SUMMARY and lang not in result.models:
                model = result.models.get("summary")
            else:
                model = result.models.get(lang)
            rows.append({"article_key": article_key, "kind": kind, "lang": lang, "text": text, "model": model})
    return rows

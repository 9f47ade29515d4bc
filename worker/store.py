"""The durable SQL store: articles, jobs and texts (SQLAlchemy 2, Alembic migrations).

SQLite is the default (WAL, busy timeout, `BEGIN IMMEDIATE` for writes so concurrent
writers queue instead of failing); PostgreSQL (`postgresql+psycopg://`) in production.

Idempotency lives in unique keys, not in luck:
- `articles.key` is the article's identity (SPEC §1.2, `Article.key`: normalized text plus the
  options that change the output), and `jobs.article_key` is unique, so one article is one job;
- `texts` is UNIQUE(article_key, kind, lang) and written with an upsert, so a message that is
  delivered twice (a worker killed after writing, before acking) rewrites the same rows.

A job is processed by the message that carries its id (`task_id == job.id`), or by any message
for its article when no message was ever sent for it (`sent_at` is NULL: the enqueuer died
between committing the row and publishing). Everything else for the same article is a duplicate.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from pipeline.article import Article
from pipeline.result import DONE, FAILED, PARTIAL, Result

log = logging.getLogger(__name__)

QUEUED, RUNNING = "queued", "running"
STATUSES = (QUEUED, RUNNING, DONE, PARTIAL, FAILED)
FINISHED = frozenset({DONE, PARTIAL, FAILED})
TITLE, SUMMARY = "title", "summary"

# Faults that go away by themselves (server restart, failover, lock contention): retried.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # connection pool exhausted
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
IN_CHUNK = 500  # ids per IN (...) clause; well under SQLite's variable limit


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: store UTC-aware datetimes only")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class ArticleRow(Base):
    __tablename__ = "articles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    source_lang: Mapped[str | None] = mapped_column(String(16))
    source_lang_confidence: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cleaned_text: Mapped[str | None] = mapped_column(Text)  # what the pipeline read (review page)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("article_key", name="uq_jobs_article_key"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    article_key: Mapped[str] = mapped_column(ForeignKey("articles.key"))
    queue: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    timings: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    models: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class TextRow(Base):
    __tablename__ = "texts"
    __table_args__ = (UniqueConstraint("article_key", "kind", "lang", name="uq_texts_article_kind_lang"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_key: Mapped[str] = mapped_column(ForeignKey("articles.key"))
    kind: Mapped[str] = mapped_column(String(16))
    lang: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))


# --- results of store operations ------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """What happened to one submitted article."""

    job_id: str
    duplicate: bool  # an earlier submission already made this job
    send: bool  # a message must be published for it (new, or never sent)


@dataclass(frozen=True)
class JobStart:
    """Whether a delivered message should process its job now."""

    job_id: str
    proceed: bool
    status: str
    attempts: int
    reason: str = ""


def job_options(article: Article) -> dict[str, Any]:
    """The output-changing options of a job, as stored (the article key already hashes them)."""
    return {
        "lang": article.lang,
        "targets": list(article.targets or ()),
        "summary": article.summary.model_dump(),
    }


def malformed_key(raw: Any) -> str:
    """A stable identity for a message that failed validation (so a re-delivery is no new job)."""
    blob = json.dumps({"malformed": raw}, sort_keys=True, ensure_ascii=False, default=str)
    # a message's JSON can carry lone surrogates ("\ud800"), which are not UTF-8
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _storable(text: str) -> str:
    """Text from a message that failed validation, as the database can store it: no NUL
    characters (PostgreSQL refuses them), no lone surrogates (not UTF-8)."""
    return text.replace("\0", "").encode("utf-8", "replace").decode("utf-8")


def _text_or_none(value: Any, limit: int) -> str | None:
    return _storable(value)[:limit] if isinstance(value, str) else None


class Store:
    """All SQL the service runs. One per process (after a fork, open a new one)."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        self.engine: Engine = _create_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """`alembic upgrade head`: idempotent, and safe when several processes start at once."""
        from worker.migrations import upgrade_head

        upgrade_head(self)

    @contextmanager
    def migration_lock(self) -> Iterator[Connection]:
        """A connection holding a lock that serializes migrations across processes."""
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT pg_advisory_lock(7340033)")  # arbitrary, constant
                try:
                    yield conn
                finally:
                    conn.rollback()
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(7340033)")
                    conn.commit()
            return
        database = self.engine.url.database
        if self.dialect == "sqlite" and database and database != ":memory:":
            lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
            with lock_path.open("a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    with self.engine.connect() as conn:
                        yield conn
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)
            return
        with self.engine.connect() as conn:
            yield conn

    # --- sessions --------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._sessions() as session:
            session.connection(execution_options={"babelwire_read_only": True})
            yield session

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    # --- enqueue side ----------------------------------------------------------------------

    def submit(self, articles: Sequence[Article], queue: str) -> list[Submission]:
        """Create article and job rows (status queued) for a batch, in one transaction.

        An article whose key already has a job is a duplicate and keeps that job's id; it needs
        sending again only if its message was never sent. Returns one Submission per article,
        in order (an article repeated within the batch is a duplicate of its first occurrence).
        """
        if not articles:
            return []
        now = utcnow()
        new_ids = {a.key: uuid.uuid4().hex for a in articles}
        with self._write() as session:
            session.execute(
                self._insert(ArticleRow).on_conflict_do_nothing(index_elements=["key"]),
                [
                    {"key": a.key, "external_id": a.id, "title": a.title, "url": a.url, "created_at": now}
                    for a in {a.key: a for a in articles}.values()
                ],
            )
            session.execute(
                self._insert(JobRow).on_conflict_do_nothing(index_elements=["article_key"]),
                [
                    {
                        "id": new_ids[a.key],
                        "article_key": a.key,
                        "queue": queue,
                        "status": QUEUED,
                        "attempts": 0,
                        "errors": {},
                        "timings": {},
                        "options": job_options(a),
                        "models": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for a in {a.key: a for a in articles}.values()
                ],
            )
            rows = session.execute(
                select(JobRow.article_key, JobRow.id, JobRow.status, JobRow.sent_at).where(
                    JobRow.article_key.in_(list(new_ids))
                )
            ).all()
        existing = {r.article_key: r for r in rows}
        out: list[Submission] = []
        seen: set[str] = set()
        for a in articles:
            row = existing[a.key]
            first = a.key not in seen
            seen.add(a.key)
            ours = row.id == new_ids[a.key] and first
            never_sent = row.status == QUEUED and row.sent_at is None and first
            out.append(Submission(job_id=row.id, duplicate=not ours, send=never_sent))
        return out

    def mark_sent(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        now = utcnow()
        with self._write() as session:
            for chunk in _chunks(ids, IN_CHUNK):
                session.execute(
                    update(JobRow).where(JobRow.id.in_(chunk), JobRow.sent_at.is_(None)).values(sent_at=now)
                )

    # --- worker side -----------------------------------------------------------------------

    def start_job(self, article: Article, message_id: str, queue: str, max_attempts: int) -> JobStart:
        """Claim the article's job for the message `message_id` (a Celery task id).

        Creates the rows when the message did not come through `submit` (a news site calling
        `send_task`): the job then takes the message's id. Marks the job running and counts the
        attempt; past `max_attempts` (the worker died on it again and again) it fails for good.
        """
        now = utcnow()
        with self._write() as session:
            job = session.get(JobRow, message_id, with_for_update=True)
            if job is None:
                session.execute(
                    self._insert(ArticleRow).on_conflict_do_nothing(index_elements=["key"]),
                    [{"key": article.key, "external_id": article.id, "title": article.title,
                      "url": article.url, "created_at": now}],
                )
                session.execute(
                    self._insert(JobRow).on_conflict_do_nothing(),
                    [{"id": message_id, "article_key": article.key, "queue": queue, "status": QUEUED,
                      "attempts": 0, "errors": {}, "timings": {}, "options": job_options(article),
                      "models": {}, "created_at": now, "updated_at": now, "sent_at": now}],
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
            if job.attempts >= max_attempts:
                job.status, job.finished_at, job.updated_at = FAILED, now, now
                job.error = f"gave up after {job.attempts} attempts (the worker was lost or timed out each time)"
                return JobStart(job.id, False, FAILED, job.attempts, job.error)
            job.status, job.attempts = RUNNING, job.attempts + 1
            job.started_at = job.updated_at = now
            job.sent_at = job.sent_at or now
            return JobStart(job.id, True, RUNNING, job.attempts)

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
            job.error = "; ".join(f"{k}: {v}" for k, v in result.errors.items()) if result.status == FAILED else None
            job.finished_at = job.updated_at = now

    def fail_job(self, job_id: str, error: str) -> None:
        """Mark an unfinished job failed (a finished one keeps its result)."""
        now = utcnow()
        with self._write() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.not_in(sorted(FINISHED)))
                .values(status=FAILED, error=error, finished_at=now, updated_at=now)
            )

    def record_malformed(self, message_id: str, raw: dict[str, Any], queue: str, error: str) -> str:
        """Store a failed job for a message whose article does not validate. Returns the job id."""
        key = malformed_key(raw)
        error = _storable(error)  # it can quote the message's field names
        now = utcnow()
        with self._write() as session:
            session.execute(
                self._insert(ArticleRow).on_conflict_do_nothing(index_elements=["key"]),
                [{"key": key, "external_id": _text_or_none(raw.get("id"), 200),
                  "title": _text_or_none(raw.get("title"), 1000), "url": _text_or_none(raw.get("url"), 2000),
                  "created_at": now}],
            )
            session.execute(
                self._insert(JobRow).on_conflict_do_nothing(),
                [{"id": message_id, "article_key": key, "queue": queue, "status": FAILED, "attempts": 1,
                  "error": error, "errors": {"article": error}, "timings": {}, "options": {}, "models": {},
                  "created_at": now, "updated_at": now, "sent_at": now, "started_at": now,
                  "finished_at": now}],
            )
            stored = session.execute(select(JobRow.id).where(JobRow.article_key == key)).scalar_one_or_none()
            return stored or message_id

    # --- reading -----------------------------------------------------------------------------

    def counts(self, job_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Jobs by status (all jobs, or the given ones). Every status is present."""
        counts: Counter[str] = Counter({s: 0 for s in STATUSES})
        with self._read() as session:
            if job_ids is None:
                for status, n in session.execute(select(JobRow.status, func.count()).group_by(JobRow.status)):
                    counts[status] += n
            else:
                for chunk in _chunks(list(job_ids), IN_CHUNK):
                    for status, n in session.execute(
                        select(JobRow.status, func.count()).where(JobRow.id.in_(chunk)).group_by(JobRow.status)
                    ):
                        counts[status] += n
        return dict(counts)

    def statuses(self, job_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._read() as session:
            for chunk in _chunks(list(job_ids), IN_CHUNK):
                out.update(session.execute(select(JobRow.id, JobRow.status).where(JobRow.id.in_(chunk))).all())
        return out

    def job(self, job_id: str) -> JobRow | None:
        with self._read() as session:
            return session.get(JobRow, job_id)

    def result(self, job_id: str) -> Result | None:
        """The job as SPEC §3.2 (queued/running jobs too, with what is known so far)."""
        with self._read() as session:
            row = session.execute(
                select(JobRow, ArticleRow).join(ArticleRow, ArticleRow.key == JobRow.article_key).where(
                    JobRow.id == job_id
                )
            ).first()
            if row is None:
                return None
            texts = _texts_by_article(session, [row.JobRow.article_key])
        return _to_result(row.JobRow, row.ArticleRow, texts.get(row.JobRow.article_key, []))

    def iter_results(
        self, *, since: datetime | None = None, langs: Sequence[str] = (), page: int = 500
    ) -> Iterator[Result]:
        """Finished jobs as Results, oldest first, streamed page by page (keyset pagination:
        no transaction stays open between pages, so workers keep writing meanwhile).

        `since` keeps jobs finished at or after it; `langs` keeps only those languages' texts.
        """
        after: tuple[datetime, str] | None = None
        while True:
            with self._read() as session:
                stmt = (
                    select(JobRow, ArticleRow)
                    .join(ArticleRow, ArticleRow.key == JobRow.article_key)
                    .where(JobRow.status.in_(sorted(FINISHED)))
                    .order_by(JobRow.finished_at, JobRow.id)
                    .limit(page)
                )
                if since is not None:
                    stmt = stmt.where(JobRow.finished_at >= since)
                if after is not None:
                    stmt = stmt.where(
                        (JobRow.finished_at > after[0]) | ((JobRow.finished_at == after[0]) & (JobRow.id > after[1]))
                    )
                rows = session.execute(stmt).all()
                if not rows:
                    return
                texts = _texts_by_article(session, [r.JobRow.article_key for r in rows], langs)
            for r in rows:
                result = _to_result(r.JobRow, r.ArticleRow, texts.get(r.JobRow.article_key, []))
                if langs:
                    result.title = {k: v for k, v in result.title.items() if k in langs}
                    result.summary = {k: v for k, v in result.summary.items() if k in langs}
                yield result
            last = rows[-1].JobRow
            after = (last.finished_at, last.id)  # type: ignore[assignment]

    def recent_jobs(self, status: str | None = None, limit: int = 50) -> list[tuple[JobRow, ArticleRow]]:
        """The most recently updated jobs (of one status, or all) with their articles."""
        with self._read() as session:
            stmt = (
                select(JobRow, ArticleRow)
                .join(ArticleRow, ArticleRow.key == JobRow.article_key)
                .order_by(JobRow.updated_at.desc(), JobRow.id)
                .limit(limit)
            )
            if status is not None:
                stmt = stmt.where(JobRow.status == status)
            return [(r.JobRow, r.ArticleRow) for r in session.execute(stmt).all()]

    def find_articles(self, article_id: str, limit: int = 20) -> list[tuple[ArticleRow, JobRow]]:
        """Articles whose key, else whose external id, is `article_id`, newest first, with their
        jobs. An external id can name several articles (the same story resubmitted edited)."""
        with self._read() as session:
            base = select(ArticleRow, JobRow).join(JobRow, JobRow.article_key == ArticleRow.key)
            rows = session.execute(base.where(ArticleRow.key == article_id)).all()
            if not rows:
                rows = session.execute(
                    base.where(ArticleRow.external_id == article_id)
                    .order_by(ArticleRow.created_at.desc(), ArticleRow.key)
                    .limit(limit)
                ).all()
            return [(r.ArticleRow, r.JobRow) for r in rows]

    def row_counts(self) -> dict[str, int]:
        """Rows per table (for checks that nothing was duplicated)."""
        with self._read() as session:
            return {
                "articles": session.scalar(select(func.count()).select_from(ArticleRow)) or 0,
                "jobs": session.scalar(select(func.count()).select_from(JobRow)) or 0,
                "texts": session.scalar(select(func.count()).select_from(TextRow)) or 0,
            }


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


def _texts_by_article(session: Session, keys: Sequence[str], langs: Sequence[str] = ()) -> dict[str, list[TextRow]]:
    out: dict[str, list[TextRow]] = {}
    for chunk in _chunks(list(dict.fromkeys(keys)), IN_CHUNK):
        stmt = select(TextRow).where(TextRow.article_key.in_(chunk)).order_by(TextRow.id)
        if langs:
            stmt = stmt.where(TextRow.lang.in_(list(langs)))
        for t in session.execute(stmt).scalars():
            out.setdefault(t.article_key, []).append(t)
    return out


def _to_result(job: JobRow, article: ArticleRow, texts: list[TextRow]) -> Result:
    result = Result(
        article_id=job.article_key,
        external_id=article.external_id,
        status=job.status,
        source_lang=article.source_lang,
        source_lang_confidence=article.source_lang_confidence,
        models=dict(job.models or {}),
        errors=dict(job.errors or {}),
        timings_ms=dict(job.timings or {}),
        job_id=job.id,
    )
    if job.error and not result.errors:
        result.errors["job"] = job.error
    for t in texts:
        (result.title if t.kind == TITLE else result.summary)[t.lang] = t.text
    return result


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _create_engine(url: str, *, echo: bool) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # We issue BEGIN ourselves (below); pysqlite's implicit transactions would
            # start DEFERRED ones that fail with "database is locked" on upgrade to write.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Writers take the write lock up front (and wait for it under busy_timeout);
            # readers stay DEFERRED so an export never blocks the workers.
            read_only = conn.get_execution_options().get("babelwire_read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)

"""The store's tables (SQLAlchemy 2 declarative): articles, jobs and texts.

Alembic's migrations (worker/migrations) are written against these; `env.py` imports this
module only, so the migrations never import the rest of the store.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pipeline.result import DONE, FAILED, PARTIAL

QUEUED, RUNNING = "queued", "running"
STATUSES = (QUEUED, RUNNING, DONE, PARTIAL, FAILED)
FINISHED = frozenset({DONE, PARTIAL, FAILED})
TITLE, SUMMARY = "title", "summary"
MAX_ID_CHARS = 200  # articles.external_id; a longer id names nothing


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
    external_id: Mapped[str | None] = mapped_column(String(MAX_ID_CHARS), index=True)
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
    # Result.checks: the fidelity checks per language (pipeline/checks.py)
    checks: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Result.corrections: editors' corrections by language and part, the machine text beside
    corrections: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    callback_url: Mapped[str | None] = mapped_column(Text)  # the article's (worker/delivery)


class TextRow(Base):
    __tablename__ = "texts"
    __table_args__ = (UniqueConstraint("article_key", "kind", "lang", name="uq_texts_article_kind_lang"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_key: Mapped[str] = mapped_column(ForeignKey("articles.key"))
    kind: Mapped[str] = mapped_column(String(16))
    lang: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))


# --- webhooks (worker/delivery/outbox.py: what these rows mean and who writes them) ---------------


class WebhookEndpointRow(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)  # http(s)://…, or celery://QUEUE
    events: Mapped[list[str]] = mapped_column(JSONType)
    secret: Mapped[str] = mapped_column(Text)  # whsec_…
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEventRow(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("job_id", name="uq_webhook_events_job_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the webhook-id
    type: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str | None] = mapped_column(Text)  # the exact JSON text signed and sent (rendered late)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookDeliveryRow(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    endpoint_id: Mapped[int | None] = mapped_column(Integer)  # None: the job's callback_url
    target: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # pending, delivered, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


MAX_TERM_CHARS = 200  # pipeline.article.Limits.max_term_chars


class GlossaryRow(Base):
    """One direction's glossary: its version goes up with every change to its terms."""

    __tablename__ = "glossaries"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    target: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GlossaryTermRow(Base):
    """(source, target, term) → the rendering translation must use; NULL: keep the term as is."""

    __tablename__ = "glossary_terms"
    __table_args__ = (UniqueConstraint("source", "target", "term", name="uq_glossary_terms_pair_term"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(16))
    term: Mapped[str] = mapped_column(String(MAX_TERM_CHARS))
    rendering: Mapped[str | None] = mapped_column(String(MAX_TERM_CHARS))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SentenceCorrectionRow(Base):
    """An editor's translation of one source sentence: what every later article with that
    sentence gets (the translation memory's editor layer), whichever model would serve it."""

    __tablename__ = "sentence_corrections"
    __table_args__ = (
        UniqueConstraint("source_lang", "target_lang", "source_hash", name="uq_sentence_corrections_sentence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_lang: Mapped[str] = mapped_column(String(16))
    target_lang: Mapped[str] = mapped_column(String(16))
    source_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the normalized sentence
    source_text: Mapped[str] = mapped_column(Text)
    corrected: Mapped[str] = mapped_column(Text)
    machine: Mapped[str | None] = mapped_column(Text)
    corrected_by: Mapped[str] = mapped_column(String(200))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

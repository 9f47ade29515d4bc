"""Initial schema: articles, jobs, texts.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Written by hand with plain SQLAlchemy types so that the migration never changes when the
models in worker/store.py do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("source_lang", sa.String(16), nullable=True),
        sa.Column("source_lang_confidence", sa.Float(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_index("ix_articles_external_id", "articles", ["external_id"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("article_key", sa.String(64), sa.ForeignKey("articles.key"), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("errors", _json(), nullable=False),
        sa.Column("timings", _json(), nullable=False),
        sa.Column("options", _json(), nullable=False),
        sa.Column("models", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("sent_at", _ts(), nullable=True),
        sa.Column("started_at", _ts(), nullable=True),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.UniqueConstraint("article_key", name="uq_jobs_article_key"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_updated_at", "jobs", ["updated_at"])
    op.create_index("ix_jobs_finished_at", "jobs", ["finished_at"])

    op.create_table(
        "texts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("article_key", sa.String(64), sa.ForeignKey("articles.key"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lang", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.UniqueConstraint("article_key", "kind", "lang", name="uq_texts_article_kind_lang"),
    )


def downgrade() -> None:
    op.drop_table("texts")
    op.drop_table("jobs")
    op.drop_table("articles")

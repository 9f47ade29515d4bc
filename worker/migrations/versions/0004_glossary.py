"""Glossaries and the fidelity checks of each job.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

- `glossaries`: one row per direction (source, target) with a version that every change to
  its terms raises (workers reload a direction's terms when its version moves).
- `glossary_terms`: (source, target, term) → rendering; a NULL rendering keeps the term as is.
- `jobs.checks`: `Result.checks` (what the fidelity checks counted and what failed, per
  language); `{}` for jobs stored before this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MAX_TERM_CHARS = 200


def upgrade() -> None:
    op.create_table(
        "glossaries",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("target", sa.String(16), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "glossary_terms",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("term", sa.String(MAX_TERM_CHARS), nullable=False),
        sa.Column("rendering", sa.String(MAX_TERM_CHARS), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "target", "term", name="uq_glossary_terms_pair_term"),
    )
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("checks", json, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("checks")
    op.drop_table("glossary_terms")
    op.drop_table("glossaries")

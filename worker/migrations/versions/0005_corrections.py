"""Editors' corrections.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

- `jobs.corrections`: `Result.corrections` (per language and part: the sentence, the machine
  text, the editor's, who and when); `{}` for jobs stored before this revision.
- `sentence_corrections`: (source language, target language, source sentence) → the editor's
  translation, which every later article with that sentence gets.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("corrections", json, nullable=False, server_default="{}"))
    op.create_table(
        "sentence_corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source_lang", sa.String(16), nullable=False),
        sa.Column("target_lang", sa.String(16), nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("corrected", sa.Text(), nullable=False),
        sa.Column("machine", sa.Text(), nullable=True),
        sa.Column("corrected_by", sa.String(200), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source_lang", "target_lang", "source_hash", name="uq_sentence_corrections_sentence"),
    )
    op.create_index("ix_sentence_corrections_corrected_at", "sentence_corrections", ["corrected_at"])


def downgrade() -> None:
    op.drop_index("ix_sentence_corrections_corrected_at", "sentence_corrections")
    op.drop_table("sentence_corrections")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("corrections")

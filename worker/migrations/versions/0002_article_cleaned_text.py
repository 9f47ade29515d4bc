"""articles.cleaned_text: the article body as the pipeline read it, for the review page.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Nullable: rows written before this revision (and jobs that failed before cleaning) have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("cleaned_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("cleaned_text")

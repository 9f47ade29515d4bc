"""webhook_events.payload may be NULL until the dispatcher renders it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

The transaction that stores a job's result writes only the event's id, type and time (and its
deliveries); the body — the job as GET /v1/jobs/{id} returns it — is rendered from the
committed, final job by the dispatcher before the first attempt, and kept from then on. A
finished job never changes, so the body is the same as if it had been rendered in that
transaction, and the worker's transaction stays short.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=False)

"""A flow carries the email-reset request that started it until the worker takes it.

``recovery_flow.pending_email`` holds the normalised address of that request, and a partial
index (``ix_recovery_flow_pending_email``, on ``created_at`` where the column is set) lets the worker
find such flows oldest first without reading the rest. A reset request that starts a flow then
writes one row, not the flow and an outbox task. The column is empty for every existing flow:
their requests are tasks already. Building the index reads the whole table while new flows wait
(PostgreSQL): on a large database, run it in a quiet hour. Deploy the workers first: an older one
does not take these requests (they wait, nothing is lost).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("pending_email IS NOT NULL")


def upgrade() -> None:
    op.add_column("recovery_flow", sa.Column("pending_email", sa.String(length=320), nullable=True))
    op.create_index(
        "ix_recovery_flow_pending_email",
        "recovery_flow",
        ["created_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    # Dropping the column would lose the requests flows still carry: let the worker take them.
    bind = op.get_bind()
    waiting = bind.execute(
        sa.text("SELECT count(*) FROM recovery_flow WHERE pending_email IS NOT NULL")
    )
    if waiting.scalar_one():
        raise RuntimeError("flows still carry email-reset requests: run `recovery worker --once`")
    op.drop_index("ix_recovery_flow_pending_email", table_name="recovery_flow")
    # ALTER TABLE ... DROP COLUMN on SQLite too (3.35+), not a batch rebuild of the table: with
    # foreign keys on, dropping the old table would delete every secret of every flow (CASCADE).
    op.drop_column("recovery_flow", "pending_email")

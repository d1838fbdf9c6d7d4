"""The worker's claim walks an index in its ORDER BY instead of sorting every pending row.

``ORDER BY next_attempt_at, id LIMIT 1`` over ``(status, next_attempt_at)`` had to fetch and sort
all due rows for each claim: with 10,000 queued reset requests one claim took 14 ms and draining
the queue grew quadratically. With ``id`` in the index the first entry is the answer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 01:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_outbox_message_due", table_name="outbox_message")
    op.create_index("ix_outbox_message_due", "outbox_message", ["status", "next_attempt_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message_due", table_name="outbox_message")
    op.create_index("ix_outbox_message_due", "outbox_message", ["status", "next_attempt_at"])

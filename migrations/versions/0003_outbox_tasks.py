"""Outbox tasks: work a request hands to the worker (an email reset's lookup, secrets and mail).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_outbox_message_outbox_channel"


def _allow(*channels: str) -> None:
    values = ", ".join(f"'{channel}'" for channel in channels)
    # Batch mode: SQLite cannot alter a constraint in place, so the table is copied there.
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch.create_check_constraint("outbox_channel", f"channel IN ({values})")


def upgrade() -> None:
    _allow("mail", "sms", "webhook", "task")


def downgrade() -> None:
    # Tasks not yet run cannot be kept under the old constraint; they are requests nobody will
    # see answered, so they go (their flows stay, and the person can ask again).
    op.execute("DELETE FROM outbox_message WHERE channel = 'task'")
    _allow("mail", "sms", "webhook")

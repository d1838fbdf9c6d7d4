"""Accounts remember which password hash the shop last sent (its SHA-256).

A nightly re-import replays the shop's old hash; compared with the stored hash it looked like a
change and undid every password set by a recovery since. With the digest of the shop's last hash
kept, only a hash the shop itself changed replaces the password.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("account", sa.Column("shop_password_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on SQLite too (3.35+), not a batch rebuild of the table: with
    # foreign keys on, dropping the old table would delete every account's identities and
    # secrets (CASCADE) and unlink its orders and flows (SET NULL).
    op.drop_column("account", "shop_password_digest")

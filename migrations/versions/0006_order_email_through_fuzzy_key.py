"""Orders' emails are looked up through their fuzzy key only: the index on ``email`` goes.

Every order with an email has its ``email_fuzzy_key`` (the same for every spelling of the address),
so resolution finds exact and fuzzy matches with ``ix_shop_order_email_fuzzy_key`` and tells them
apart itself. The second index on nearly every order cost each insert a random B-tree probe: with
1,000,000 orders loaded, dropping it took bench/resolve.py's order lines from 17,900-19,500 to
21,300 rows/s (alternating runs), and exact email lookups stayed as fast (p99 under 2.6 ms).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 09:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_shop_order_email", table_name="shop_order")


def downgrade() -> None:
    predicate = sa.text("email IS NOT NULL")
    op.create_index(
        "ix_shop_order_email",
        "shop_order",
        ["email"],
        unique=False,
        postgresql_where=predicate,
        sqlite_where=predicate,
    )

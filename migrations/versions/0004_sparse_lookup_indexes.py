"""Sparse lookup indexes: skip the rows without a value (faster bulk imports, same lookups).

Every index below serves lookups by a value (``col = x`` or ``col IN (...)``), which imply
``col IS NOT NULL``, so PostgreSQL and SQLite still use the partial index for them; rows without a
value (orders not paid with PayPal, guest orders, unmerged accounts, identities other than e-mails)
no longer cost an index entry on insert.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SPARSE = (
    ("shop_order", "email"),
    ("shop_order", "email_fuzzy_key"),
    ("shop_order", "phone"),
    ("shop_order", "paypal_payer_id"),
    ("shop_order", "paypal_email"),
    ("shop_order", "account_id"),
    ("account", "merged_into_id"),
    ("identity", "fuzzy_key"),
)


def upgrade() -> None:
    for table, column in SPARSE:
        name = f"ix_{table}_{column}"
        predicate = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name=table)
        op.create_index(
            name,
            table,
            [column],
            unique=False,
            postgresql_where=predicate,
            sqlite_where=predicate,
        )


def downgrade() -> None:
    for table, column in reversed(SPARSE):
        name = f"ix_{table}_{column}"
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column], unique=False)

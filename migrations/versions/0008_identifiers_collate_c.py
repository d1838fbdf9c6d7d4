"""Identifier columns compare byte by byte on PostgreSQL (``COLLATE "C"``).

Normalised e-mails, phone numbers, order numbers, payer ids, the shop's account ids and the
fuzzy keys are only ever compared for equality. Under the database's collation every b-tree
comparison in their indexes went through the C library's ``strcoll`` (a tenth of the server's
time on a bulk import); under "C" it is a byte comparison. Equality is the same either way, so
no lookup answers differently. The indexes on these columns are rebuilt, which on a large
database takes a while and locks the tables: run it in a quiet hour. SQLite compares bytes
already and is left alone.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 21:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, length) of every identifier column (``recovery.db.identifier``).
IDENTIFIERS = (
    ("account", "external_id", 64),
    ("account", "name_key", 200),
    ("identity", "value", 255),
    ("identity", "fuzzy_key", 255),
    ("shop_order", "number", 64),
    ("shop_order", "email", 255),
    ("shop_order", "email_fuzzy_key", 255),
    ("shop_order", "phone", 32),
    ("shop_order", "paypal_payer_id", 13),
    ("shop_order", "paypal_email", 255),
)


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, length in IDENTIFIERS:
        op.alter_column(
            table,
            column,
            type_=sa.String(length, collation=collation),
            existing_type=sa.String(length),
        )


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate(None)  # the type's default: the database's collation

"""``one_of``: a batch's key look-up probes the index on a large table never analysed (PostgreSQL)."""

import pytest
from sqlalchemy import select, text

from recovery.accounts.models import Identity
from recovery.db import db, one_of
from recovery.identity.normalise import IdentityKind

pytestmark = pytest.mark.postgres

ROWS = 20_000


def test_a_batch_lookup_probes_the_index_while_the_statistics_lag_behind(app):
    session = db.session
    # A bulk import in progress: many rows the statistics know nothing of (the table was never
    # analysed, or was analysed while empty). A semi-join was then planned as a scan of every
    # identity of the kind, hashed against the batch: once per batch, so imports went quadratic.
    session.execute(
        text(
            "INSERT INTO account (public_id, external_id, status, locale, vip, created_at, "
            "updated_at) SELECT gen_random_uuid(), 'plan' || n, 'active', 'pl', false, now(), "
            "now() FROM generate_series(1, :rows) AS n"
        ),
        {"rows": ROWS},
    )
    session.execute(
        text(
            "INSERT INTO identity (account_id, kind, value, display, source, created_at) "
            "SELECT id, 'email', external_id || '@example.com', '***', 'shop', now() "
            "FROM account WHERE external_id LIKE 'plan%'"
        )
    )
    wanted = [f"plan{n}@example.com" for n in range(1, 1001)]
    statement = select(Identity.id).where(
        Identity.kind == IdentityKind.EMAIL, one_of(session, Identity.value, wanted)
    )
    compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    plan = "\n".join(session.execute(text(f"EXPLAIN {compiled}")).scalars())

    assert "Index" in plan and "uq_identity_kind_value" in plan, plan
    assert "Seq Scan on identity" not in plan and "Hash" not in plan, plan
    assert len(session.execute(statement).all()) == len(wanted)

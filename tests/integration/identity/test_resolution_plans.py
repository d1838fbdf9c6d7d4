"""Every part of the resolution's evidence statement probes an index (partial ones included)."""

from recovery.db import db, is_postgresql
from recovery.identity import services
from recovery.identity.normalise import email_fuzzy_key

PARAMS = {
    "emails": ["ann@example.com"],
    "email_keys": [email_fuzzy_key("ann@example.com")],
    "paypal_emails": ["ann@example.com"],
    "phones": ["+48600100200"],
    "numbers": ["PL1"],
}


def plan(statement):
    session = db.session
    names = {p.key for p in statement._get_embedded_bindparams()}  # the part's hint values
    sql = statement.params({n: PARAMS[n] for n in names if n in PARAMS}).compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    connection = session.connection()
    if is_postgresql(session):
        # Without statistics on empty tables a scan would win on cost; forbid it where an index
        # can serve, so a Seq Scan left in the plan means no index can.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in rows)
    rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
    return "\n".join(row[-1] for row in rows)


def test_each_part_of_the_evidence_statement_is_an_index_lookup(app):
    for part, statement in services._PARTS.items():
        shown = plan(statement)
        if is_postgresql(db.session):
            assert "Seq Scan" not in shown, (part, shown)
            assert "Index" in shown, (part, shown)
        else:
            scans = [line for line in shown.splitlines() if line.startswith("SCAN")]
            assert not [s for s in scans if "json" not in s and "CONSTANT" not in s], (part, shown)
            assert "USING" in shown and "INDEX" in shown, (part, shown)

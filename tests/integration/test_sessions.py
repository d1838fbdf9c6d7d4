"""``db.session``: one per request or command, and a thread's closed session is taken up again."""

import datetime as dt
import threading

from sqlalchemy import text

from recovery.db import db
from recovery.flows.models import RecoveryFlow


def test_a_threads_next_context_takes_up_its_closed_session(app):
    with app.app_context():
        first = db.session
        first.execute(text("SELECT 1"))  # begins
        first.add(RecoveryFlow(id="f-pending", node="start"))
    with app.app_context():
        second = db.session
        # The same object, but closed at the end of the first context: nothing carried over.
        assert second is first
        assert not second.in_transaction() and not second.new and not second.identity_map
    elsewhere = []

    def other_thread():
        with app.app_context():
            elsewhere.append(db.session)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert elsewhere[0] is not first  # sessions are never shared between threads


def test_a_failed_context_rolls_back_before_the_session_is_taken_up(app):
    try:
        with app.app_context():
            expires = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
            db.session.add(RecoveryFlow(id="f-failed", node="start", expires_at=expires))
            db.session.flush()
            raise RuntimeError("the request failed")
    except RuntimeError:
        pass
    with app.app_context():
        assert db.session.get(RecoveryFlow, "f-failed") is None

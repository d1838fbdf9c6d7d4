"""DESIGN §5.1 and §5.2 through the API: uniform answers, and links and codes that work once."""

import re
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select, update

from recovery.accounts.models import Account
from recovery.db import db
from recovery.errors import RecoveryError, TooManyAttempts
from recovery.flows.models import RecoveryFlow
from recovery.outbox.models import Channel, OutboxMessage
from recovery.outbox.settings import DeliverySettings
from recovery.outbox.worker import Worker
from recovery.resets.services import ResetService
from recovery.tokens.models import Secret
from recovery.tokens.services import EMAIL_CODE, SecretService
from recovery.wiring import intakes
from tests import factories
from tests.conftest import TEST_SECRET_KEYS
from tests.integration.conftest import (
    STRONG,
    code_of,
    link_token,
    mails,
    new_password,
    request_reset,
    run_tasks,
)

#: Clock readings and request ids, not knowledge (the limiter's counters are not shown here).
VOLATILE_HEADERS = {"Date", "X-Request-Id"}


def _start(client):
    return client.post("/api/v1/recovery/flows", json={"locale": "en"}).get_json()["id"]


def test_known_and_unknown_addresses_get_identical_answers(client, anna):
    known_flow, unknown_flow = _start(client), _start(client)
    known = request_reset(client, "anna@example.com", known_flow)
    unknown = request_reset(client, "nobody@example.com", unknown_flow)
    assert known.status_code == unknown.status_code == 202
    assert known.get_data(as_text=True).replace(known_flow, "F") == unknown.get_data(
        as_text=True
    ).replace(unknown_flow, "F")
    strip = lambda r: {k: v for k, v in r.headers.items() if k not in VOLATILE_HEADERS}  # noqa: E731
    assert strip(known) == strip(unknown)


@pytest.mark.parametrize("new_flow", [True, False])
def test_a_request_does_the_same_database_work_for_known_and_unknown_addresses(
    client, anna, connection, new_flow
):
    """The request only records itself and hands the rest to the worker (on the new flow it
    starts, or as a task): it never reads an account, so neither its answer nor its timing can
    depend on one (DESIGN §5.1)."""
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(re.sub(r"sa_savepoint_\d+", "sa_savepoint", statement))

    sa.event.listen(connection, "before_cursor_execute", record)  # every session's connection
    try:
        works = []
        for email in ("anna@example.com", "nobody@example.com"):
            flow = _start(client)  # (and the session's first savepoint, taken by the fixtures)
            statements.clear()
            if new_flow:
                flow = None
            assert request_reset(client, email, flow).status_code == 202
            works.append(list(statements))
    finally:
        sa.event.remove(connection, "before_cursor_execute", record)
    known, unknown = works
    assert known == unknown
    touched = " ".join(known).lower()
    tables = set(re.findall(r"\b(?:from|join|into|update)\s+(\w+)", touched))
    assert not tables & {"identity", "account", "secret"}
    if not new_flow:
        assert "outbox_message" in tables  # the flow's changes and a task
        return
    # The new flow, carrying the request: one row (and the test's savepoint around it).
    assert tables == {"recovery_flow"} and "pending_email" in touched
    assert [s for s in known if "SAVEPOINT" not in s] == [known[1]]


@pytest.mark.postgres
def test_a_request_without_a_flow_is_one_round_trip_on_postgresql(committed_app, sent_by_psycopg):
    """Served for real (its own session, committing): the new flow, carrying the request, is one
    statement on a connection in autocommit, so no BEGIN or COMMIT round trip of its own."""
    client = committed_app.test_client()
    assert request_reset(client, "first@example.com").status_code == 202  # connected, warm
    sent_by_psycopg.clear()
    answer = request_reset(client, "nobody@example.com")
    assert answer.status_code == 202
    ((statement, autocommit),) = sent_by_psycopg
    assert autocommit and re.match(r"INSERT INTO recovery_flow", statement)
    flow = client.get(f"/api/v1/recovery/flows/{answer.get_json()['flow_id']}")
    assert flow.status_code == 200 and flow.get_json()["node"]["id"] == "email_code"


def _pending():
    return db.session.scalars(
        select(RecoveryFlow.id).where(RecoveryFlow.pending_email.is_not(None))
    ).all()


def _tasks():
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.channel == Channel.TASK)
    ).all()


def test_a_new_flow_carries_its_request_until_the_worker_answers_it(client, anna):
    flow_id = request_reset(client, "Anna@Example.com").get_json()["flow_id"]
    again = request_reset(client, "anna@example.com", flow_id)  # an existing flow: a task
    assert again.status_code == 202
    assert _pending() == [flow_id] and len(_tasks()) == 1
    flow = db.session.get(RecoveryFlow, flow_id)
    assert flow.pending_email == "anna@example.com"  # normalised, as the task's would be
    assert len(mails("anna@example.com")) == 2  # (runs the worker) one mail per request
    assert _pending() == []
    assert len(mails("anna@example.com")) == 2  # and no request is answered twice


def test_carried_requests_are_answered_in_the_order_people_asked(client, anna, monkeypatch):
    """Each answer supersedes the account's earlier secrets, so answering an older request last
    would kill the newer one's link and code."""
    first = request_reset(client, "anna@example.com").get_json()["flow_id"]  # carried by its flow
    other = _start(client)
    request_reset(client, "anna@example.com", other)  # later, on an existing flow: a task
    answered = []
    real = ResetService.send_email_reset

    def recording(self, flow_id, *args):
        answered.append(flow_id)
        return real(self, flow_id, *args)

    monkeypatch.setattr(ResetService, "send_email_reset", recording)
    (queued,) = [t for t in _tasks() if t.payload["args"]["flow_id"] == other]
    run_tasks()
    assert answered == [first, other]  # not in the order they reached the outbox
    created = db.session.get(RecoveryFlow, first).created_at
    (taken,) = [t for t in _tasks() if t.payload["args"]["flow_id"] == first]
    assert taken.next_attempt_at == created < queued.next_attempt_at
    # The newer request's code is the one alive.
    live = db.session.scalars(
        select(Secret.flow_id).where(
            Secret.purpose == EMAIL_CODE.name, Secret.superseded_at.is_(None)
        )
    ).all()
    assert live == [other]


@pytest.mark.postgres
@pytest.mark.parametrize("app_config", [{"RESET_RATE_LIMIT_PER_IP": "100 per minute"}])
def test_two_workers_take_each_carried_request_once(committed_app):
    client = committed_app.test_client()
    total = 40
    for i in range(total):
        assert request_reset(client, f"nobody{i}@example.com").status_code == 202
    with committed_app.app_context():
        sessions = db.sessions
        intake = intakes()
    taken: list[int] = []
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with committed_app.app_context():  # as `recovery worker` runs
                worker = Worker(sessions, None, None, DeliverySettings(), intakes=intake)
                worker.channels = ()  # taking in only: the tasks it makes stay for the count
                barrier.wait()
                while (n := worker.run_once(limit=3)) > 0:
                    taken.append(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and sum(taken) == total
    with committed_app.app_context():
        assert _pending() == []
        flows = [t.payload["args"]["flow_id"] for t in _tasks()]
        assert len(flows) == len(set(flows)) == total  # one task per request, none twice


def test_an_address_that_is_not_one_is_a_field_error_naming_email(client):
    response = request_reset(client, "nope")
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["email"]


def test_mail_goes_only_to_the_known_address_plus_the_unknown_address_notice(client, anna):
    request_reset(client, "ANNA@example.com ")
    request_reset(client, "nobody@example.com")
    (reset,) = mails("anna@example.com")
    (notice,) = mails("nobody@example.com")
    assert "/recover/reset?token=" in reset["text"] and len(code_of(reset)) == 6
    assert reset["text"].count("https://recovery.example.test/recover/reset?token=") == 1
    assert notice["template"] == "unknown_address" and "token" not in notice["text"]


@pytest.mark.parametrize("app_config", [{"UNKNOWN_ADDRESS_MAIL": False}])
def test_the_unknown_address_notice_can_be_switched_off(client, anna):
    assert request_reset(client, "nobody@example.com").status_code == 202
    assert mails() == []


def test_an_unverified_address_is_treated_as_unknown(client, anna):
    request_reset(client, "anna.old@example.com")
    assert [m["template"] for m in mails()] == ["unknown_address"]


def test_a_link_sets_the_password_once(client, anna):
    request_reset(client, "anna@example.com")
    token = link_token(mails()[0])
    first = new_password(client, token=token)
    assert first.status_code == 200
    assert first.get_json()["redirect_to"].endswith("ticket=" + first.get_json()["ticket"])
    second = new_password(client, token=token)
    assert (second.status_code, second.get_json()["code"]) == (400, "invalid_token")


def test_a_tampered_link_is_invalid(client, anna):
    request_reset(client, "anna@example.com")
    token = link_token(mails()[0])
    for forged in (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "x" + token, "garbage"):
        response = new_password(client, token=forged)
        assert response.get_json()["code"] == "invalid_token"


def test_an_expired_link_and_code_are_refused(client, anna):
    flow = _start(client)
    request_reset(client, "anna@example.com", flow)
    mail = mails()[0]
    db.session.execute(update(Secret).values(expires_at=Secret.created_at))
    db.session.commit()
    assert new_password(client, token=link_token(mail)).get_json()["code"] == "token_expired"
    response = new_password(client, flow_id=flow, code=code_of(mail))
    assert response.get_json()["code"] == "token_expired"


def test_a_newer_request_supersedes_the_older_link_and_code(client, anna):
    flow = _start(client)
    request_reset(client, "anna@example.com", flow)
    request_reset(client, "anna@example.com", flow)
    old, new = mails()
    assert new_password(client, token=link_token(old)).get_json()["code"] == "invalid_token"
    assert new_password(client, token=link_token(new)).status_code == 200


def test_a_password_change_kills_the_other_secrets_of_the_request(client, anna):
    flow = _start(client)
    request_reset(client, "anna@example.com", flow)
    mail = mails()[0]
    assert new_password(client, flow_id=flow, code=code_of(mail)).status_code == 200
    assert new_password(client, token=link_token(mail)).get_json()["code"] == "invalid_token"


def test_a_password_changed_elsewhere_kills_the_link(client, anna):
    request_reset(client, "anna@example.com")
    token = link_token(mails()[0])
    db.session.execute(
        update(Account).where(Account.id == anna.id).values(password_hash="$argon2id$changed")
    )
    db.session.commit()
    assert new_password(client, token=token).get_json()["code"] == "invalid_token"


def test_five_wrong_codes_kill_the_code(client, anna):
    flow = _start(client)
    request_reset(client, "anna@example.com", flow)
    right = code_of(mails()[0])
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    answers = [new_password(client, flow_id=flow, code=wrong).get_json()["code"] for _ in range(5)]
    assert answers == ["invalid_token"] * 4 + ["too_many_attempts"]
    response = new_password(client, flow_id=flow, code=right)
    assert response.get_json()["code"] == "too_many_attempts"


def test_wrong_codes_for_an_unknown_address_end_as_for_a_known_one(client, anna):
    flow = _start(client)
    request_reset(client, "nobody@example.com", flow)
    assert [m["template"] for m in mails()] == ["unknown_address"]
    answers = [
        new_password(client, flow_id=flow, code="123456").get_json()["code"] for _ in range(6)
    ]
    assert answers == ["invalid_token"] * 4 + ["too_many_attempts"] * 2


def _guesses(client, flow, count=6):
    return [
        new_password(client, flow_id=flow, code="123456").get_json()["code"] for _ in range(count)
    ]


@pytest.mark.parametrize("email", ["anna@example.com", "nobody@example.com"])
def test_a_code_superseded_by_another_flow_locks_as_a_stand_in_does(client, anna, email):
    """A newer request kills an account's older code; guessing in the older flow must still look
    like guessing at the stand-in code of an address nobody has (DESIGN §5.1)."""
    older, newer = _start(client), _start(client)
    request_reset(client, email, older)
    mails()
    request_reset(client, email, newer)
    mails()
    assert _guesses(client, older) == ["invalid_token"] * 4 + ["too_many_attempts"] * 2


@pytest.mark.postgres
@pytest.mark.parametrize("app_config", [{"VERIFY_RATE_LIMIT_PER_FLOW": "1000 per minute"}])
def test_a_right_code_after_five_concurrent_misses_is_refused(committed_app):
    """Tries are taken before the code is compared: a request that read the code before other
    requests spent its five tries cannot then succeed with it (DESIGN §5.2)."""
    with committed_app.app_context():
        account = factories.account("racer", ("email", "racer@example.com", True))
        flow = committed_app.test_client().post("/api/v1/recovery/flows", json={})
        flow_id = flow.get_json()["id"]
        right = SecretService(db.session, TEST_SECRET_KEYS).issue_code(
            EMAIL_CODE, account, flow_id, "email"
        )
        db.session.commit()
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        guesser, racer = db.sessions(), db.sessions()
        racing = SecretService(racer, TEST_SECRET_KEYS)
        read = racer.scalar

        def read_then_let_the_guesser_in(statement, *args, **kwargs):
            found = read(statement, *args, **kwargs)
            if racer.scalar is read_then_let_the_guesser_in:  # once: right after the SELECT
                racer.scalar = read
                for _ in range(5):
                    with pytest.raises(RecoveryError):
                        SecretService(guesser, TEST_SECRET_KEYS).verify_code(
                            EMAIL_CODE, flow_id, wrong
                        )
                    guesser.commit()
            return found

        racer.scalar = read_then_let_the_guesser_in
        try:
            with pytest.raises(TooManyAttempts):
                racing.verify_code(EMAIL_CODE, flow_id, right)
        finally:
            racer.close()
            guesser.close()


def test_a_weak_password_costs_nothing(client, anna):
    request_reset(client, "anna@example.com")
    token = link_token(mails()[0])
    weak = client.post("/api/v1/recovery/password", json={"token": token, "password": "short"})
    assert (weak.status_code, weak.get_json()["code"]) == (422, "weak_password")
    assert weak.get_json()["reason"] == "too_short"
    assert "short" not in weak.get_json()["detail"]
    assert new_password(client, token=token).status_code == 200


def test_secrets_are_stored_only_as_digests(client, anna):
    flow = _start(client)
    request_reset(client, "anna@example.com", flow)
    mail = mails()[0]
    token, code = link_token(mail), code_of(mail)
    stored = " ".join(
        f"{s.digest} {s.fingerprint}" for s in db.session.scalars(select(Secret)).all()
    )
    assert code not in stored and token not in stored and token.split(".")[0] not in stored


def test_links_are_built_from_the_public_url_not_the_host_header(client, anna):
    request_reset(client, "anna@example.com", Host="evil.example")
    assert "https://recovery.example.test/recover/reset?token=" in mails()[0]["text"]
    assert "evil.example" not in mails()[0]["text"]


def test_the_whole_walk_through_the_flow_api(client, anna):
    flow = _start(client)
    answer = lambda node, value: client.post(  # noqa: E731
        f"/api/v1/recovery/flows/{flow}/answer", json={"node": node, "value": value}
    )
    assert answer("start", "yes").get_json()["node"]["id"] == "email"
    assert answer("email", "anna@example.com").get_json()["node"]["id"] == "email_code"
    assert answer("email_code", code_of(mails()[0])).get_json()["node"]["id"] == "new_password"
    done = answer("new_password", STRONG).get_json()
    assert done["status"] == "done" and done["node"]["type"] == "done"
    assert "ticket=" in done["redirect_to"]
    row = db.session.get(RecoveryFlow, flow)
    assert [e["event"] for e in row.trail] == [
        "started",
        "answered",
        "email_requested",
        "proved",
        "password_set",
        "done",
    ]


def test_after_a_recovery_every_verified_address_is_told(client, anna):
    request_reset(client, "anna@example.com")
    new_password(client, token=link_token(mails()[0]))
    notices = [m for m in mails() if m["template"] == "password_changed"]
    assert [m["to"] for m in notices] == ["anna@example.com"]  # not the unverified one
    assert "/recover/freeze?token=" in notices[0]["text"]
    assert notices[0]["locale"] == "en"


WEBHOOKS = {
    "WEBHOOK_URL": "https://shop.example/hooks",
    "WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


def _events():
    rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.channel == Channel.WEBHOOK)
    ).all()
    return [(row.payload["type"], row.payload["data"]["account_id"]) for row in rows]


@pytest.mark.parametrize("app_config", [WEBHOOKS])
@pytest.mark.parametrize(
    ("password", "template", "trail"),
    [
        (STRONG, "password_changed", "password_set"),
        ("skip", "account_recovered", "password_skipped"),
    ],
)
def test_every_recovery_is_told_and_ends_the_shops_sessions(
    client, anna, password, template, trail
):
    """With a new password or without one (DESIGN §5.6): the notice with a freeze link, the
    event for the shop, the other half of the request dead, one ticket."""
    flow = _start(client)
    answer = lambda node, value: client.post(  # noqa: E731
        f"/api/v1/recovery/flows/{flow}/answer", json={"node": node, "value": value}
    )
    answer("start", "yes")
    answer("email", "anna@example.com")
    (mail,) = mails()
    answer("email_code", code_of(mail))
    done = answer("new_password", password).get_json()
    assert done["status"] == "done" and "ticket=" in done["redirect_to"]
    assert db.session.get(RecoveryFlow, flow).trail[-2]["event"] == trail
    notices = [m for m in mails() if m["template"] == template]
    assert [m["to"] for m in notices] == ["anna@example.com"]
    assert "/recover/freeze?token=" in notices[0]["text"]
    assert _events() == [("account.recovered", "anna")]
    assert new_password(client, token=link_token(mail)).get_json()["code"] == "invalid_token"


def test_the_new_password_is_an_argon2id_hash(client, anna):
    request_reset(client, "anna@example.com")
    new_password(client, token=link_token(mails()[0]))
    db.session.refresh(anna)
    assert anna.password_hash.startswith("$argon2id$")
    assert STRONG not in anna.password_hash


@pytest.mark.parametrize("app_config", [{"RESET_LINK_MINUTES": 15, "EMAIL_CODE_MINUTES": 30}])
def test_link_and_code_lifetimes_come_from_the_settings(client, anna):
    request_reset(client, "anna@example.com")
    (mail,) = mails()
    assert "for 15 minutes" in mail["text"]  # the shorter of the two
    lives = {
        s.purpose: round((s.expires_at - s.created_at).total_seconds() / 60)
        for s in db.session.scalars(select(Secret)).all()
    }
    assert lives == {"reset_link": 15, "email_code": 30}


@pytest.mark.parametrize(
    "app_config",
    [{"RESET_MAILS_PER_ACCOUNT_PER_HOUR": 2, "RESET_RATE_LIMIT_PER_IDENTIFIER": "50 per minute"}],
)
def test_past_the_per_account_limit_requests_are_answered_alike_and_send_nothing(client, anna):
    known = [request_reset(client, "anna@example.com") for _ in range(3)]
    unknown = [request_reset(client, "nobody@example.com") for _ in range(3)]
    assert [r.status_code for r in known + unknown] == [202] * 6
    bodies = {
        r.get_data(as_text=True).replace(r.get_json()["flow_id"], "F") for r in known + unknown
    }
    assert len(bodies) == 1
    assert len(mails("anna@example.com")) == 2
    assert len(mails("nobody@example.com")) == 3  # no account, no per-account limit
    # The request past the limit got a stand-in code: guessing locks as for the unknown address.
    last_known, last_unknown = (r.get_json()["flow_id"] for r in (known[-1], unknown[-1]))
    expected = ["invalid_token"] * 4 + ["too_many_attempts"] * 2
    assert _guesses(client, last_known) == _guesses(client, last_unknown) == expected


def test_a_flow_the_email_request_starts_begins_at_the_email_form(client, anna):
    flow = request_reset(client, "anna@example.com").get_json()["flow_id"]
    row = db.session.get(RecoveryFlow, flow)
    assert row.node == "email_code"
    assert [(e["node"], e["event"]) for e in row.trail] == [
        ("email", "started"),
        ("email", "email_requested"),
    ]


def test_an_email_request_for_a_flow_elsewhere_moves_it_to_the_email_form(client, anna):
    flow = _start(client)
    client.post(f"/api/v1/recovery/flows/{flow}/answer", json={"node": "start", "value": "no"})
    client.post("/api/v1/recovery/email", json={"email": "anna@example.com", "flow_id": flow})
    row = db.session.get(RecoveryFlow, flow)
    assert row.node == "email_code"
    events = [(e["node"], e["event"]) for e in row.trail]
    assert events[-2:] == [(events[-2][0], "jumped"), ("email", "email_requested")]
    assert events[-2][0] != "email"

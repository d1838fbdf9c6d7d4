"""``POST /api/v1/import``: NDJSON bulk import of accounts and orders.

A bad line is reported by its 1-based number and never keeps the good lines around it out; lines are
written in batches (``IMPORT_BATCH_SIZE``) and each batch stands on its own.
"""

import json

import pytest
from sqlalchemy import select

from recovery.accounts.models import Account, Identity
from recovery.accounts.passwords import context as password_context
from recovery.clients.models import Scope
from recovery.db import db
from recovery.ingest import services
from recovery.ingest.services import MAX_LINE_BYTES
from recovery.orders.models import Order

NDJSON = "application/x-ndjson"
SMALL_BATCH = {"IMPORT_BATCH_SIZE": 2}
BATCH_SIZES = [
    pytest.param({}, id="default-batch"),
    pytest.param({"IMPORT_BATCH_SIZE": 1}, id="batch-1"),
    pytest.param(SMALL_BATCH, id="batch-2"),
]


# -- building uploads ------------------------------------------------------------------------------


def email(value, verified=False):
    return {"kind": "email", "value": value, "verified": verified}


def phone(value, verified=False):
    return {"kind": "phone", "value": value, "verified": verified}


def account(account_id, *identities, **fields):
    return json.dumps(
        {"type": "account", "account_id": account_id, **fields, "identities": [*identities]}
    )


def order(number, account_id=None, **fields):
    body = {
        "type": "order",
        "order_number": number,
        "placed_at": "2026-03-01T12:30:00+01:00",
        "payment_method": "card",
        **fields,
    }
    if account_id is not None:
        body["account_id"] = account_id
    return json.dumps(body)


def ndjson(*lines):
    """The upload: one line per argument (already serialised), each ending in a newline."""
    return "".join(f"{line}\n" for line in lines).encode()


def upload(client, headers, body, content_type=NDJSON):
    return client.post(
        "/api/v1/import", data=body, headers={**headers, "Content-Type": content_type}
    )


def imported(client, headers, *lines):
    """Upload ``lines`` and return the summary, failing unless the upload itself was accepted."""
    response = upload(client, headers, ndjson(*lines))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def counts(summary):
    names = ("lines", "accepted", "created", "updated", "unchanged", "rejected")
    return {name: summary[name] for name in names}


def errors_by_line(summary):
    return {error["line"]: error for error in summary["errors"]}


# -- reading back what was stored ------------------------------------------------------------------


def stored_account_ids():
    return set(db.session.scalars(select(Account.external_id)))


def stored_order_numbers():
    return set(db.session.scalars(select(Order.number)))


def identity_values(account_id):
    return sorted(
        db.session.scalars(
            select(Identity.value).join(Account).where(Account.external_id == account_id)
        )
    )


def snapshot():
    """Every stored account, identity and order as plain rows (fresh from the database)."""
    tables = (Account.__table__, Identity.__table__, Order.__table__)
    return {
        table.name: [
            dict(row) for row in db.session.execute(select(table).order_by(table.c.id)).mappings()
        ]
        for table in tables
    }


MIXED = (
    account(
        "shop-anna",
        email(" Anna.Nowak@Example.com ", verified=True),
        phone("600 100 200"),
        display_name="Anna Nowak",
    ),
    account("shop-jan", email("jan@example.org"), locale="en", vip=True),
    order("pl-2026 0001", "shop-anna", email="anna.nowak@example.com"),
    order("PL20260002", "shop-jan", payment_method="blik", phone="+48 601 000 111"),
    order("GUEST-7", guest=True, email="guest@example.net"),
)


# -- a clean upload ----------------------------------------------------------------------------------


def test_a_mixed_upload_stores_accounts_and_the_orders_naming_them(client, ingest):
    summary = imported(client, ingest, *MIXED)

    assert counts(summary) == {
        "lines": 5,
        "accepted": 5,
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    assert summary["errors"] == []
    assert summary["errors_truncated"] is False

    anna = client.get("/api/v1/accounts/shop-anna", headers=ingest).get_json()
    assert anna["display_name"] == "Anna Nowak"
    assert [(i["kind"], i["verified"]) for i in anna["identities"]] == [
        ("email", True),
        ("phone", False),
    ]
    jan = client.get("/api/v1/accounts/shop-jan", headers=ingest).get_json()
    assert (jan["locale"], jan["vip"]) == ("en", True)
    # Identities and order numbers are stored normalised.
    assert identity_values("shop-anna") == ["+48600100200", "anna.nowak@example.com"]
    orders = {o.number: o for o in db.session.scalars(select(Order))}
    assert set(orders) == {"PL20260001", "PL20260002", "GUEST7"}
    assert orders["PL20260001"].account.external_id == "shop-anna"
    assert orders["PL20260002"].account.external_id == "shop-jan"
    assert orders["PL20260002"].phone == "+48601000111"
    assert orders["GUEST7"].account is None


def test_application_jsonl_is_accepted_too(client, ingest):
    response = upload(client, ingest, ndjson(account("shop-1")), content_type="application/jsonl")

    assert response.status_code == 200
    assert response.get_json()["created"] == 1
    assert "shop-1" in stored_account_ids()


def test_reuploading_the_same_file_leaves_the_same_stored_state(client, ingest):
    imported(client, ingest, *MIXED)
    before = snapshot()
    reads_before = [
        client.get(f"/api/v1/accounts/{account_id}", headers=ingest).get_json()
        for account_id in ("shop-anna", "shop-jan")
    ]

    again = imported(client, ingest, *MIXED)

    assert (again["lines"], again["accepted"], again["created"], again["rejected"]) == (5, 5, 0, 0)
    assert snapshot() == before  # not a row added, removed or rewritten (updated_at included)
    assert [
        client.get(f"/api/v1/accounts/{account_id}", headers=ingest).get_json()
        for account_id in ("shop-anna", "shop-jan")
    ] == reads_before


def test_reuploading_accounts_reports_them_unchanged(client, ingest):
    accounts = MIXED[:2]
    imported(client, ingest, *accounts)

    again = imported(client, ingest, *accounts)

    assert counts(again) == {
        "lines": 2,
        "accepted": 2,
        "created": 0,
        "updated": 0,
        "unchanged": 2,
        "rejected": 0,
    }


def test_reuploading_the_same_file_reports_every_line_unchanged(client, ingest):
    imported(client, ingest, *MIXED)

    again = imported(client, ingest, *MIXED)

    assert counts(again) == {
        "lines": 5,
        "accepted": 5,
        "created": 0,
        "updated": 0,
        "unchanged": 5,
        "rejected": 0,
    }


def test_changed_lines_are_counted_as_updated(client, ingest):
    imported(client, ingest, *MIXED)

    again = imported(
        client,
        ingest,
        account("shop-jan", email("jan@example.org"), locale="pl", vip=True),  # locale changed
        order("PL20260002", "shop-jan", payment_method="card"),  # method changed, phone dropped
        MIXED[0],
    )

    assert counts(again) == {
        "lines": 3,
        "accepted": 3,
        "created": 0,
        "updated": 2,
        "unchanged": 1,
        "rejected": 0,
    }
    changed = db.session.scalar(select(Order).where(Order.number == "PL20260002"))
    db.session.refresh(changed)
    assert (changed.payment_method, changed.phone) == ("card", None)


# -- bad lines -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", BATCH_SIZES)
def test_a_malformed_line_is_reported_by_number_and_its_neighbours_are_stored(client, ingest):
    summary = imported(
        client,
        ingest,
        account("before-1"),
        account("before-2"),
        '{"type": "account", "account_id": "broken", ',  # line 3: not JSON at all
        account("after-1"),
        order("ORDER-1", "before-1"),
    )

    assert counts(summary) == {
        "lines": 5,
        "accepted": 4,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
    }
    assert summary["errors"] == [
        {"line": 3, "code": "malformed_request", "detail": "not valid JSON", "errors": None}
    ]
    assert stored_account_ids() == {"before-1", "before-2", "after-1"}
    assert stored_order_numbers() == {"ORDER1"}


@pytest.mark.parametrize("app_config", [SMALL_BATCH])
def test_a_line_our_code_trips_over_is_refused_by_number_and_the_import_goes_on(
    client, ingest, monkeypatch, caplog
):
    real = services.prepare

    def faulty(data):
        if data.account_id == "trips":
            raise RuntimeError("a fault of ours")
        return real(data)

    monkeypatch.setattr(services, "prepare", faulty)
    summary = imported(
        client,
        ingest,
        account("before"),
        order("EDGE-1", placed_at="0001-01-01T00:00:00+01:00"),  # once a 500 mid-import
        account("trips"),
        account("after"),
    )
    assert counts(summary)["accepted"] == 2
    assert [(e["line"], e["code"]) for e in summary["errors"]] == [
        (2, "validation_failed"),
        (3, "validation_failed"),
    ]
    assert summary["errors"][1]["errors"] == [
        {"field": "line", "message": "could not be read", "code": "unreadable"}
    ]
    assert stored_account_ids() == {"before", "after"}
    assert "a fault of ours" in caplog.text  # logged for us, not shown to the shop


def test_an_unknown_or_missing_type_is_rejected(client, ingest):
    summary = imported(
        client,
        ingest,
        json.dumps({"type": "customer", "account_id": "c-1"}),
        json.dumps({"account_id": "c-2"}),
        json.dumps(["account", "c-3"]),
        account("c-4"),
    )

    assert (summary["accepted"], summary["rejected"]) == (1, 3)
    errors = errors_by_line(summary)
    assert set(errors) == {1, 2, 3}
    assert {error["code"] for error in errors.values()} == {"validation_failed"}
    assert "'type'" in errors[1]["detail"]
    assert "'type'" in errors[2]["detail"]
    assert [e["field"] for e in errors[1]["errors"]] == ["type"]
    assert [e["field"] for e in errors[2]["errors"]] == ["type"]
    assert [e["field"] for e in errors[3]["errors"]] == ["body"]
    assert stored_account_ids() == {"c-4"}


def test_a_field_error_names_the_field_path(client, ingest):
    summary = imported(
        client,
        ingest,
        account("ok-1"),
        account("bad-phone", email("bad@example.com"), phone("12")),
        order("ORDER-9", email="not an email"),
    )

    errors = errors_by_line(summary)
    assert set(errors) == {2, 3}
    assert errors[2]["code"] == "validation_failed"
    assert [(e["field"], e["code"]) for e in errors[2]["errors"]] == [
        ("identities.1.value", "invalid_identifier")
    ]
    assert errors[2]["detail"].startswith("identities.1.value: ")
    assert [e["field"] for e in errors[3]["errors"]] == ["email"]
    # The whole line is refused: not even the valid identity of it is stored.
    assert stored_account_ids() == {"ok-1"}
    assert stored_order_numbers() == set()


def test_a_byte_order_mark_in_front_of_the_file_is_no_error(client, ingest):
    body = b"\xef\xbb\xbf" + ndjson(account("bom-1"), account("bom-2"))
    summary = upload(client, ingest, body).get_json()
    assert (summary["accepted"], summary["rejected"]) == (2, 0)
    assert stored_account_ids() == {"bom-1", "bom-2"}


def test_blank_lines_are_skipped_but_keep_their_numbers(client, ingest):
    body = b"\n" + ndjson(account("b-1")) + b"   \n\r\n" + ndjson("{oops", account("b-2")) + b"\n"

    summary = upload(client, ingest, body).get_json()

    assert counts(summary) == {
        "lines": 7,
        "accepted": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
    }
    assert [error["line"] for error in summary["errors"]] == [5]
    assert stored_account_ids() == {"b-1", "b-2"}


def test_an_order_naming_an_unknown_account_is_rejected(client, ingest):
    summary = imported(
        client,
        ingest,
        account("known"),
        order("ORDER-1", "known"),
        order("ORDER-2", "ghost"),
    )

    assert (summary["accepted"], summary["rejected"]) == (2, 1)
    (error,) = summary["errors"]
    assert (error["line"], error["code"]) == (3, "validation_failed")
    assert [(e["field"], e["code"]) for e in error["errors"]] == [("account_id", "unknown_account")]
    assert stored_order_numbers() == {"ORDER1"}


@pytest.mark.parametrize("app_config", BATCH_SIZES)
def test_an_order_may_name_an_account_of_an_earlier_line_never_a_later_one(client, ingest):
    """The same answer whatever the batch size: lines are applied in their order."""
    summary = imported(
        client,
        ingest,
        account("early"),
        order("ORDER-1", "early"),
        order("ORDER-2", "late"),
        account("late"),
        order("ORDER-3", "late"),
    )
    assert [(e["line"], e["errors"][0]["code"]) for e in summary["errors"]] == [
        (3, "unknown_account")
    ]
    assert stored_order_numbers() == {"ORDER1", "ORDER3"}


def test_an_identity_claimed_twice_in_one_upload_goes_to_the_first_line(client, ingest):
    summary = imported(
        client,
        ingest,
        account("first", email("shared@example.com")),
        account("second", email("SHARED@example.com"), phone("600 200 300")),
        account("third", email("third@example.com")),
    )

    assert (summary["accepted"], summary["rejected"]) == (2, 1)
    (error,) = summary["errors"]
    assert (error["line"], error["code"]) == (2, "identity_conflict")
    assert "'first'" in error["detail"]
    assert "shared@example.com" not in error["detail"]  # masked
    assert stored_account_ids() == {"first", "third"}
    assert identity_values("first") == ["shared@example.com"]
    # Nothing of the refused line is kept, not even its identity that clashed with no one.
    assert db.session.scalar(select(Identity).where(Identity.value == "+48600200300")) is None
    assert client.get("/api/v1/accounts/second", headers=ingest).status_code == 404


def test_an_identity_of_an_account_stored_earlier_is_not_moved(client, ingest):
    put = client.put(
        "/api/v1/accounts/owner",
        json={"identities": [phone("+48 600 100 200", verified=True)]},
        headers=ingest,
    )
    assert put.status_code == 201
    before = client.get("/api/v1/accounts/owner", headers=ingest).get_json()

    summary = imported(
        client,
        ingest,
        account("newcomer", phone("600100200")),
        account("bystander", email("bystander@example.com")),
    )

    (error,) = summary["errors"]
    assert (error["line"], error["code"]) == (1, "identity_conflict")
    assert "'owner'" in error["detail"]
    assert stored_account_ids() == {"owner", "bystander"}
    assert client.get("/api/v1/accounts/owner", headers=ingest).get_json() == before


# -- batches -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [SMALL_BATCH])
def test_batches_stand_on_their_own(client, ingest):
    summary = imported(
        client,
        ingest,
        # batch 1
        account("a1", email("a1@example.com")),
        account("a2", email("a2@example.com")),
        # batch 2: an identity of batch 1 refused; an order naming an account of batch 1
        account("a3", email("a1@example.com")),
        order("O-1", "a1"),
        # batch 3: an unknown account refused; a good account next to it
        order("O-2", "a3"),
        account("a4"),
        # not JSON (never part of a batch), then the last, short batch
        "{",
        order("O-3", "a4"),
    )

    assert counts(summary) == {
        "lines": 8,
        "accepted": 5,
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "rejected": 3,
    }
    assert [(e["line"], e["code"]) for e in summary["errors"]] == [
        (3, "identity_conflict"),
        (5, "validation_failed"),
        (7, "malformed_request"),
    ]
    assert stored_account_ids() == {"a1", "a2", "a4"}
    assert stored_order_numbers() == {"O1", "O3"}
    o1 = db.session.scalar(select(Order).where(Order.number == "O1"))
    assert o1.account.external_id == "a1"


@pytest.mark.parametrize("app_config", [SMALL_BATCH])
def test_a_later_batch_updates_an_account_of_an_earlier_one(client, ingest):
    summary = imported(
        client,
        ingest,
        account("x", email("old@example.com")),
        account("y"),
        account("x", email("new@example.com"), display_name="X"),
    )

    assert counts(summary) == {
        "lines": 3,
        "accepted": 3,
        "created": 2,
        "updated": 1,
        "unchanged": 0,
        "rejected": 0,
    }
    assert identity_values("x") == ["new@example.com"]


# -- secrets -------------------------------------------------------------------------------------------


def test_a_password_hash_is_never_echoed(client, ingest):
    good_hash = password_context.hash("correct horse battery staple")
    summary_response = upload(
        client,
        ingest,
        ndjson(
            account("p-1", password_hash="hunter2-secret"),  # not a hash at all
            '{"type": "account", "account_id": "p-2", "password_hash": "hunter2-secret"',  # not JSON
            account("p-3", password_hash=good_hash, locale="de"),  # a real hash on a bad line
            account("p-4", password_hash=good_hash),
        ),
    )

    text = summary_response.get_data(as_text=True)
    assert "hunter2-secret" not in text
    assert "hunter2" not in text
    assert good_hash not in text
    assert good_hash.rsplit("$", 1)[-1] not in text  # not even the digest part
    errors = errors_by_line(summary_response.get_json())
    assert set(errors) == {1, 2, 3}
    assert [(e["field"], e["code"]) for e in errors[1]["errors"]] == [
        ("password_hash", "unsupported_hash")
    ]
    stored = client.get("/api/v1/accounts/p-4", headers=ingest)
    assert stored.get_json()["has_password"] is True
    assert good_hash not in stored.get_data(as_text=True)


# -- refused uploads -------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data"])
def test_a_wrong_content_type_is_a_415_problem(client, ingest, content_type):
    response = upload(client, ingest, ndjson(account("never")), content_type=content_type)

    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "unsupported_media_type"
    assert stored_account_ids() == set()


def test_without_a_key_the_upload_is_refused(client):
    response = upload(client, {}, ndjson(account("never")))

    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthenticated"
    assert stored_account_ids() == set()


def test_a_key_without_the_ingest_scope_is_refused(client, make_key):
    response = upload(client, make_key(Scope.RESOLVE), ndjson(account("never")))

    assert response.status_code == 403
    assert response.get_json()["code"] == "insufficient_scope"
    assert stored_account_ids() == set()


# -- long lines ------------------------------------------------------------------------------------


def padded_account(account_id, size):
    """An account line of exactly ``size`` bytes (JSON whitespace pads it), without its newline."""
    head = json.dumps({"type": "account", "account_id": account_id})[:-1]
    line = head + " " * (size - len(head) - 1) + "}"
    assert len(line.encode()) == size
    return line


def test_a_line_over_the_limit_is_rejected_by_number_and_the_others_stored(client, ingest):
    summary = imported(
        client,
        ingest,
        account("short-1"),
        padded_account("too-long", MAX_LINE_BYTES + 1),
        account("short-2"),
        account("huge", display_name="x" * (3 * MAX_LINE_BYTES)),
        account("short-3"),
    )

    assert counts(summary) == {
        "lines": 5,
        "accepted": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": 2,
    }
    assert [(e["line"], e["code"]) for e in summary["errors"]] == [
        (2, "validation_failed"),
        (4, "validation_failed"),
    ]
    assert all(str(MAX_LINE_BYTES) in e["detail"] for e in summary["errors"])
    assert stored_account_ids() == {"short-1", "short-2", "short-3"}


def test_a_line_of_exactly_the_limit_is_accepted_as_the_last_line(client, ingest):
    response = upload(client, ingest, padded_account("edge", MAX_LINE_BYTES).encode())

    assert response.get_json()["rejected"] == 0
    assert stored_account_ids() == {"edge"}


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_a_line_of_exactly_the_limit_is_accepted_whatever_its_line_ending(client, ingest, newline):
    body = padded_account("edge", MAX_LINE_BYTES).encode() + newline + account("next").encode()

    summary = upload(client, ingest, body).get_json()

    assert summary["errors"] == []
    assert stored_account_ids() == {"edge", "next"}

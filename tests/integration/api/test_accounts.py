import pytest
from sqlalchemy import func, select

from recovery.accounts.models import Account, Identity, IdentitySource
from recovery.audit.models import AuditEvent
from recovery.clients.models import Scope
from recovery.db import db
from tests import factories

BCRYPT = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"

BODY = {
    "display_name": "Anna Nowak",
    "locale": "pl",
    "vip": False,
    "password_hash": BCRYPT,
    "identities": [
        {"kind": "email", "value": " Anna.Nowak@Example.com ", "verified": True},
        {"kind": "phone", "value": "600 100 200", "verified": False},
        {"kind": "paypal", "value": "annapayer0001", "verified": True},
    ],
}


def put(client, headers, account_id, body):
    return client.put(f"/api/v1/accounts/{account_id}", json=body, headers=headers)


def counts():
    return (
        db.session.scalar(select(func.count()).select_from(Account)),
        db.session.scalar(select(func.count()).select_from(Identity)),
    )


def test_put_creates_the_account_with_normalised_masked_identities(client, ingest):
    response = put(client, ingest, "shop-1", BODY)
    assert response.status_code == 201
    body = response.get_json()
    assert body["account_id"] == "shop-1"
    assert body["has_password"] is True
    assert [(i["kind"], i["display"], i["verified"]) for i in body["identities"]] == [
        ("email", "a***@example.com", True),
        ("phone", "+48 *** *** 200", False),
        ("paypal", "***0001", True),
    ]
    stored = db.session.scalars(select(Identity.value).order_by(Identity.id)).all()
    assert stored == ["anna.nowak@example.com", "+48600100200", "ANNAPAYER0001"]
    assert "password_hash" not in response.get_data(as_text=True)


def test_the_same_body_twice_is_idempotent(client, ingest):
    first = put(client, ingest, "shop-1", BODY)
    state = counts()
    second = put(client, ingest, "shop-1", BODY)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json() == second.get_json()
    assert counts() == state
    account = db.session.scalar(select(Account).where(Account.external_id == "shop-1"))
    assert account.password_hash == BCRYPT  # kept as it is, upgraded on next use


def test_identity_list_replaces_what_the_shop_gave_before(client, ingest):
    put(client, ingest, "shop-1", BODY)
    body = {**BODY, "identities": [{"kind": "email", "value": "new@example.com", "verified": True}]}
    response = put(client, ingest, "shop-1", body)
    assert response.status_code == 200
    assert [i["display"] for i in response.get_json()["identities"]] == ["n***@example.com"]


def test_identities_the_service_attached_survive_a_push(client, ingest):
    put(client, ingest, "shop-1", BODY)
    account = db.session.scalar(select(Account).where(Account.external_id == "shop-1"))
    google = Identity(
        account_id=account.id,
        kind="google",
        value="1234567890",
        display="***7890",
        source=IdentitySource.RECOVERY,
    )
    db.session.add(google)
    db.session.commit()
    response = put(client, ingest, "shop-1", {**BODY, "identities": BODY["identities"][:1]})
    assert {i["kind"] for i in response.get_json()["identities"]} == {"email", "google"}


def test_verification_can_be_withdrawn_by_the_shop(client, ingest):
    put(client, ingest, "shop-1", BODY)
    unverified = {**BODY, "identities": [{**BODY["identities"][0], "verified": False}]}
    response = put(client, ingest, "shop-1", unverified)
    assert response.get_json()["identities"][0]["verified"] is False


def test_an_absent_password_hash_leaves_the_password_alone(client, ingest):
    put(client, ingest, "shop-1", BODY)
    response = put(
        client, ingest, "shop-1", {k: v for k, v in BODY.items() if k != "password_hash"}
    )
    assert response.get_json()["has_password"] is True


def test_a_replay_does_not_undo_a_password_set_by_a_recovery(client, ingest):
    put(client, ingest, "shop-1", BODY)
    account = db.session.scalar(select(Account).where(Account.external_id == "shop-1"))
    recovered = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$set-by-a-recovery"
    account.password_hash = recovered  # what ResetService.set_password stores
    db.session.commit()

    replay = put(client, ingest, "shop-1", BODY)  # the nightly export, unchanged
    assert replay.status_code == 200
    db.session.refresh(account)
    assert account.password_hash == recovered
    events = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert events[-1] == "account.unchanged"

    from recovery.accounts.passwords import context

    changed_in_the_shop = context.hash("changed in the shop itself")
    put(client, ingest, "shop-1", {**BODY, "password_hash": changed_in_the_shop})
    db.session.refresh(account)
    assert account.password_hash == changed_in_the_shop


def test_an_identity_of_another_account_is_a_409_and_nothing_is_stored(client, ingest):
    factories.account("other", ("email", "anna.nowak@example.com", True))
    before = counts()
    response = put(client, ingest, "shop-1", BODY)
    assert response.status_code == 409
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert problem["code"] == "identity_conflict"
    assert problem["account_id"] == "other"
    assert problem["identity"] == {"kind": "email", "display": "a***@example.com"}
    assert "a***@example.com" in problem["detail"]
    assert counts() == before
    assert db.session.scalar(select(Account).where(Account.external_id == "shop-1")) is None


def test_a_conflict_on_update_keeps_the_previous_state(client, ingest):
    put(client, ingest, "shop-1", BODY)
    factories.account("other", ("email", "taken@example.com", True))
    before = client.get("/api/v1/accounts/shop-1", headers=ingest).get_json()
    changed = {
        **BODY,
        "display_name": "Changed",
        "identities": [*BODY["identities"], {"kind": "email", "value": "taken@example.com"}],
    }
    assert put(client, ingest, "shop-1", changed).status_code == 409
    assert client.get("/api/v1/accounts/shop-1", headers=ingest).get_json() == before


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        ({"kind": "email", "value": "not an email"}, "identities.0.value"),
        ({"kind": "phone", "value": "12"}, "identities.0.value"),
        ({"kind": "paypal", "value": "short"}, "identities.0.value"),
        ({"kind": "myspace", "value": "x"}, "identities.0.kind"),
        ({"kind": "email"}, "identities.0.value"),
    ],
)
def test_invalid_identities_name_the_field(client, ingest, identity, field):
    response = put(client, ingest, "shop-1", {"identities": [identity]})
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert [e["field"] for e in problem["errors"]] == [field]


def test_a_bad_password_hash_is_refused_without_echoing_it(client, ingest):
    secret = "plaintext-hunter2-not-a-hash"
    response = put(client, ingest, "shop-1", {"password_hash": secret})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "password_hash"
    assert secret not in response.get_data(as_text=True)


def test_an_argon2_hash_is_accepted(client, ingest):
    from recovery.accounts.passwords import context

    response = put(client, ingest, "shop-1", {"password_hash": context.hash("correct horse")})
    assert response.status_code == 201


@pytest.mark.parametrize("account_id", ["has space", "x" * 65, "semi;colon"])
def test_a_bad_account_id_is_a_validation_error(client, ingest, account_id):
    response = put(client, ingest, account_id, {})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "account_id"


def test_unknown_fields_are_refused(client, ingest):
    response = put(client, ingest, "shop-1", {"nickname": "x"})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "nickname"


def test_get_unknown_account_is_a_404_problem(client, ingest):
    response = client.get("/api/v1/accounts/nobody", headers=ingest)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_writes_are_audited_with_the_client(client, ingest):
    put(client, ingest, "shop-1", BODY)
    put(client, ingest, "shop-1", BODY)
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.actor_type, e.action, e.subject_id) for e in events] == [
        ("api_client", "account.created", "shop-1"),
        ("api_client", "account.unchanged", "shop-1"),
    ]


# -- authentication ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Basic abc", "Bearer rk_short_key", "Bearer rk_AAAAAAAAAAAA_" + "x" * 43],
)
def test_without_a_valid_key_the_answer_is_401(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = put(client, headers, "shop-1", BODY)
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthenticated"


def test_a_tampered_secret_is_refused(client, ingest):
    key = ingest["Authorization"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert put(client, {"Authorization": tampered}, "shop-1", BODY).status_code == 401


def test_a_key_without_the_scope_is_403(client, make_key):
    response = put(client, make_key(Scope.RESOLVE), "shop-1", BODY)
    assert response.status_code == 403
    assert response.get_json()["code"] == "insufficient_scope"


def test_a_revoked_key_stops_working(client, ingest):
    from recovery.clients.models import ApiClient
    from recovery.clients.services import ApiClientService

    name = db.session.scalars(select(ApiClient.name)).one()
    ApiClientService(db.session).revoke(name)
    db.session.commit()
    assert put(client, ingest, "shop-1", BODY).status_code == 401

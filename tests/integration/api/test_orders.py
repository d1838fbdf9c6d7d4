import pytest
from sqlalchemy import func, select

from recovery.db import db
from recovery.orders.models import Order
from tests import factories

ORDER = {
    "placed_at": "2026-03-01T10:30:00+01:00",
    "email": "Guest.Buyer@Example.com",
    "phone": "+48 600-100-300",
    "payment_method": "paypal",
    "paypal_payer_id": "guestpayer001",
    "paypal_email": "Guest.Buyer@Example.com",
    "guest": True,
}


def test_put_order_normalises_and_is_idempotent(client, ingest):
    first = client.put("/api/v1/orders/pl-2026 0001", json=ORDER, headers=ingest)
    second = client.put("/api/v1/orders/PL20260001", json=ORDER, headers=ingest)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json() == second.get_json()
    body = first.get_json()
    assert body["order_number"] == "PL20260001"
    assert body["email"] == "guest.buyer@example.com"
    assert body["phone"] == "+48600100300"
    assert body["paypal_payer_id"] == "GUESTPAYER001"
    assert body["placed_at"] == "2026-03-01T09:30:00Z"
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1


def test_order_links_to_the_account_by_the_shops_id(client, ingest):
    factories.account("buyer-1")
    response = client.put(
        "/api/v1/orders/A-1", json={**ORDER, "account_id": "buyer-1"}, headers=ingest
    )
    assert response.get_json()["account_id"] == "buyer-1"


def test_an_unknown_account_is_a_field_error_and_nothing_is_stored(client, ingest):
    response = client.put(
        "/api/v1/orders/A-1", json={**ORDER, "account_id": "ghost"}, headers=ingest
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"field": "account_id", "message": "no account with this id", "code": "unknown_account"}
    ]
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_a_naive_timestamp_is_refused(client, ingest):
    response = client.put(
        "/api/v1/orders/A-1", json={**ORDER, "placed_at": "2026-03-01T10:30:00"}, headers=ingest
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "placed_at"


@pytest.mark.parametrize("placed_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
def test_a_moment_outside_the_calendar_in_utc_is_a_field_error(client, ingest, placed_at):
    response = client.put(
        "/api/v1/orders/A-1", json={**ORDER, "placed_at": placed_at}, headers=ingest
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0] == {
        "field": "placed_at",
        "message": "is out of the range of dates",
        "code": "out_of_range",
    }


def test_a_changed_order_is_updated(client, ingest):
    client.put("/api/v1/orders/A-1", json=ORDER, headers=ingest)
    response = client.put("/api/v1/orders/A-1", json={**ORDER, "phone": None}, headers=ingest)
    assert response.status_code == 200
    assert response.get_json()["phone"] is None


def test_a_bad_order_number_is_a_validation_error(client, ingest):
    response = client.put("/api/v1/orders/nr%23123", json=ORDER, headers=ingest)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "order_number"

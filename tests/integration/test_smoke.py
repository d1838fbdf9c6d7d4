def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_put_account(client, ingest):
    response = client.put(
        "/api/v1/accounts/c1",
        json={"identities": [{"kind": "email", "value": "A@example.com", "verified": True}]},
        headers=ingest,
    )
    assert response.status_code == 201, response.get_json()

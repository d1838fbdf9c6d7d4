"""Bad input gets a structured problem, never a 500 page or an echo; operators get health checks."""

import io
import json

import pytest
from openapi_spec_validator import validate
from werkzeug.test import EnvironBuilder, run_wsgi_app

from recovery.clients.models import Scope
from tests.conftest import make_app


def test_the_served_document_is_valid_openapi_3_1(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    operations = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert operations == {
        ("/accounts/{account_id}", "put"),
        ("/accounts/{account_id}", "get"),
        ("/orders/{order_number}", "put"),
        ("/import", "post"),
        ("/resolve", "post"),
        ("/recovery/flows", "post"),
        ("/recovery/flows/{flow_id}", "get"),
        ("/recovery/flows/{flow_id}/answer", "post"),
        ("/recovery/email", "post"),
        ("/recovery/password", "post"),
        ("/tickets/redeem", "post"),
    }
    assert "application/x-ndjson" in spec["paths"]["/import"]["post"]["requestBody"]["content"]
    # Any write may lose a race to a concurrent one: every operation documents the 409 it gives.
    assert all("409" in op["responses"] for item in spec["paths"].values() for op in item.values())


def test_malformed_json_is_a_400_problem(client, ingest):
    response = client.put(
        "/api/v1/accounts/a", data=b"{nope", headers={**ingest, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "malformed_request"


def test_a_json_body_that_is_not_an_object_is_a_validation_error(client, ingest):
    response = client.put("/api/v1/accounts/a", json=[1, 2], headers=ingest)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "body"


def test_a_non_json_body_is_a_415_problem(client, ingest):
    response = client.put(
        "/api/v1/accounts/a", data="x=1", headers={**ingest, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize("app_config", [{"MAX_JSON_BYTES": 64}])
def test_an_oversized_body_is_a_413_problem(client, ingest):
    response = client.put("/api/v1/accounts/a", json={"display_name": "x" * 100}, headers=ingest)
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def _chunked_post(app, path, body):
    """A POST sent as a chunked body (no Content-Length), as a proxy may forward it; the test
    client always sets a length, so this goes to the WSGI app itself."""
    builder = EnvironBuilder(path=path, method="POST", headers={"Content-Type": "application/json"})
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update(
        {
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
        }
    )
    chunks, status, _headers = run_wsgi_app(app, environ)
    return int(status.split()[0]), json.loads(b"".join(chunks))


@pytest.mark.parametrize("app_config", [{"MAX_JSON_BYTES": 64}])
def test_an_oversized_chunked_body_is_refused_not_cut_short(app):
    fits = b"{}" + b" " * 62
    assert _chunked_post(app, "/api/v1/recovery/flows", fits)[0] == 201
    # Cut at the limit, this one would be valid JSON: it must be refused whole.
    status, problem = _chunked_post(app, "/api/v1/recovery/flows", fits + b"GARBAGE")
    assert (status, problem["code"]) == (413, "payload_too_large")
    status, problem = _chunked_post(app, "/api/v1/recovery/email", b'{"email": "' + b"a" * 5000)
    assert (status, problem["code"]) == (413, "payload_too_large")


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("get", "/api/v1/accounts/a%00b", None, "account_id"),
        ("get", "/api/v1/recovery/flows/%00", None, "flow_id"),
        ("post", "/api/v1/recovery/flows/%00/answer", {"node": "start", "value": "y"}, "flow_id"),
        ("post", "/api/v1/recovery/email", {"email": "a@example.com", "flow_id": "\0"}, "flow_id"),
        ("put", "/api/v1/accounts/a1", {"display_name": "a\0", "identities": []}, "display_name"),
        (
            "put",
            "/api/v1/accounts/a1",
            {"identities": [{"kind": "email", "value": "a@example.com", "verified": True}, "\0"]},
            "identities.1",
        ),
        ("post", "/api/v1/resolve", {"names": ["Anna", "a\0"]}, "names.1"),
        ("post", "/api/v1/recovery/flows", {"return_to": "https://x\0y"}, "return_to"),
        ("post", "/api/v1/recovery/flows", {"\0": 1}, "body"),
    ],
)
def test_a_nul_character_is_a_field_error_on_every_database(
    client, make_key, method, path, body, field
):
    """PostgreSQL cannot store or even compare text holding NUL: such input is named, not a 500."""
    headers = make_key(Scope.INGEST, Scope.RESOLVE)
    kwargs = {"headers": headers} | ({"json": body} if body is not None else {})
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"field": field, "message": "must not contain NUL characters", "code": "nul_character"}
    ]


def test_a_literal_backslash_u0000_is_just_text(client, make_key):
    response = client.post(
        "/api/v1/resolve", json={"names": ["\\u0000"]}, headers=make_key(Scope.RESOLVE)
    )
    assert response.status_code == 200


def test_unknown_routes_and_methods_are_problems(client):
    missing = client.get("/api/v1/nothing-here", validate=False)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "not_found")
    wrong = client.delete("/api/v1/resolve", validate=False)
    assert (wrong.status_code, wrong.get_json()["code"]) == (405, "method_not_allowed")
    assert "POST" in wrong.headers["Allow"]


def test_a_crash_is_a_500_problem_without_details(app, client, ingest, monkeypatch):
    from recovery.accounts import services

    def explode(self, records):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services.AccountService, "upsert_many", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.put("/api/v1/accounts/a", json={}, headers=ingest)
    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"API_RATE_LIMIT": "3 per minute"}])
def test_api_calls_are_rate_limited_per_key(client, make_key):
    first, second = make_key(Scope.RESOLVE), make_key(Scope.RESOLVE)
    body = {"emails": ["a@example.com"]}
    statuses = [
        client.post("/api/v1/resolve", json=body, headers=first).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = client.post("/api/v1/resolve", json=body, headers=first)
    assert limited.get_json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # Another client has its own budget.
    assert client.post("/api/v1/resolve", json=body, headers=second).status_code == 200


def test_healthz_and_readyz(client):
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "rate_limit_storage": "ok"}


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/missing-dir/nope.db")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"

"""Login tickets (single use, 2 minutes), key rotation, rate limits, and redemption races."""

import threading

import pytest
from limits import parse
from sqlalchemy import update

from recovery.api.recovery import EmailReset
from recovery.clients.models import Scope
from recovery.db import db
from recovery.extensions import limiter, skipped_on
from recovery.flows.models import RecoveryFlow
from recovery.ratelimits import PUBLIC_PREFIXES, Asked, _setup, client_key, identifier_key
from recovery.tokens.models import Secret
from recovery.tokens.services import RESET_LINK, SecretService
from tests import factories
from tests.conftest import TEST_SECRET_KEYS
from tests.integration.conftest import (
    STRONG,
    link_token,
    mails,
    new_password,
    request_reset,
)


@pytest.fixture
def ticket(client, anna):
    request_reset(client, "anna@example.com")
    return new_password(client, token=link_token(mails()[0])).get_json()["ticket"]


def redeem(client, headers, ticket):
    return client.post("/api/v1/tickets/redeem", json={"ticket": ticket}, headers=headers)


def test_a_ticket_is_redeemed_once(client, make_key, ticket, anna):
    shop = make_key(Scope.TICKETS)
    first = redeem(client, shop, ticket)
    assert first.status_code == 200
    assert first.get_json()["account_id"] == "anna"
    assert first.get_json()["method"] == "email_link"
    second = redeem(client, shop, ticket)
    assert (second.status_code, second.get_json()["code"]) == (410, "gone")


def test_redeeming_needs_the_tickets_scope(client, make_key, ticket):
    assert redeem(client, make_key(Scope.INGEST), ticket).status_code == 403
    assert redeem(client, {}, ticket).status_code == 401


def test_an_expired_or_forged_ticket_is_refused(client, make_key, ticket):
    shop = make_key(Scope.TICKETS)
    assert redeem(client, shop, ticket + "x").get_json()["code"] == "invalid_token"
    db.session.execute(update(Secret).values(expires_at=Secret.created_at))
    db.session.commit()
    assert redeem(client, shop, ticket).get_json()["code"] == "token_expired"


def test_a_reset_link_is_not_a_ticket(client, make_key, anna):
    request_reset(client, "anna@example.com")
    response = redeem(client, make_key(Scope.TICKETS), link_token(mails()[0]))
    assert response.get_json()["code"] == "invalid_token"


@pytest.mark.parametrize("app_config", [{"RETURN_TO_ORIGINS": "https://shop.example"}])
def test_the_ticket_goes_back_only_to_an_allowed_origin(client, anna):
    for return_to, expected in [
        (
            "https://shop.example/account?from=help",
            "https://shop.example/account?from=help&ticket=",
        ),
        ("https://evil.example/steal", "https://recovery.example.test/recover/done?ticket="),
    ]:
        flow = client.post("/api/v1/recovery/flows", json={"return_to": return_to}).get_json()
        request_reset(client, "anna@example.com", flow["id"])
        done = new_password(client, token=link_token(mails()[-1])).get_json()
        assert done["redirect_to"].startswith(expected)


@pytest.mark.parametrize("app_config", [{"RETURN_TO_ORIGINS": "https://shop.example"}])
def test_a_ticket_planted_in_return_to_is_dropped(client, anna):
    planted = "https://shop.example/account?ticket=ATTACKERS&from=mail&ticketing=1"
    flow = client.post("/api/v1/recovery/flows", json={"return_to": planted}).get_json()
    request_reset(client, "anna@example.com", flow["id"])
    done = new_password(client, token=link_token(mails()[-1])).get_json()
    query = done["redirect_to"].split("?", 1)[1].split("&")
    assert query[:2] == ["from=mail", "ticketing=1"]
    assert query[2] == f"ticket={done['ticket']}" and len(query) == 3


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RETURN_TO_ORIGINS": "https://shop.example",
            "DEFAULT_RETURN_TO": "https://login.shop.test/in",
        }
    ],
)
def test_the_pages_let_a_form_post_end_at_the_shop(client):
    policy = client.get("/recover/done").headers["Content-Security-Policy"]
    assert "form-action 'self' https://login.shop.test https://shop.example;" in policy


@pytest.mark.parametrize("app_config", [{"RETURN_TO_ORIGINS": "https://shop.example"}])
@pytest.mark.parametrize(
    "return_to",
    [
        "https://shop.example:abc/",
        "https://shop.example:99999/",
        "https://[shop.example]/x",
        "http://[::1",
    ],
)
def test_a_return_to_that_will_not_parse_falls_back_to_the_default(client, return_to):
    started = client.post("/api/v1/recovery/flows", json={"return_to": return_to})
    assert started.status_code == 201
    flow = db.session.get(RecoveryFlow, started.get_json()["id"])
    assert flow.return_to == "https://recovery.example.test/recover/done"
    page = client.get("/recover", query_string={"return_to": return_to, "restart": "1"})
    assert page.status_code == 303


@pytest.mark.parametrize("app_config", [{"RETURN_TO_ORIGINS": "https://shop.example"}])
def test_a_return_to_longer_than_its_column_gets_the_default_on_the_wizard(client):
    page = client.get("/recover", query_string={"return_to": "https://shop.example/" + "x" * 2100})
    assert page.status_code == 303
    with client.session_transaction() as session:
        flow = db.session.get(RecoveryFlow, session["flow"])
    assert flow.return_to == "https://recovery.example.test/recover/done"


def test_links_signed_with_an_older_key_still_work_after_rotation(app, anna):
    old = SecretService(db.session, TEST_SECRET_KEYS[1:])
    token = old.issue_link(RESET_LINK, anna, None, "email")
    rotated = SecretService(db.session, TEST_SECRET_KEYS)  # a new key in front
    assert rotated.peek_link(RESET_LINK, token).account_id == anna.id
    retired = SecretService(db.session, ["a-completely-new-key-" + "z" * 20])
    with pytest.raises(Exception, match="not valid"):
        retired.peek_link(RESET_LINK, token)


def test_opening_a_link_consumes_nothing(app, anna):
    service = SecretService(db.session, TEST_SECRET_KEYS)
    token = service.issue_link(RESET_LINK, anna, None, "email")
    service.peek_link(RESET_LINK, token)
    service.peek_link(RESET_LINK, token)
    assert service.consume_link(RESET_LINK, token).used_at is not None


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IDENTIFIER": "2 per minute",
            "RESET_RATE_LIMIT_PER_IP": "100 per minute",
        }
    ],
)
def test_the_identifier_limit_looks_the_same_for_known_and_unknown(client, anna):
    known = [request_reset(client, "anna@example.com") for _ in range(3)]
    unknown = [request_reset(client, "nobody@example.com") for _ in range(3)]
    assert [r.status_code for r in known] == [202, 202, 429]
    assert [r.status_code for r in unknown] == [202, 202, 429]
    assert known[2].get_data() == unknown[2].get_data()
    # Whole seconds to the window's end: the two may straddle a second boundary.
    retry = [int(known[2].headers["Retry-After"]), int(unknown[2].headers["Retry-After"])]
    assert abs(retry[0] - retry[1]) <= 1
    # The limit is per identifier: spelling it differently does not get around it.
    assert request_reset(client, " ANNA@Example.com").status_code == 429
    assert len(mails("anna@example.com")) == 2


@pytest.mark.parametrize(
    "app_config",
    [{"RESET_RATE_LIMIT_PER_IP": "7 per minute", "RESET_RATE_LIMIT_PER_IDENTIFIER": "4 per hour"}],
)
def test_budgets_are_flask_limiters_own_fixed_window_counters(client, app):
    # The budgets name their counters themselves (for speed): Flask-Limiter's strategy, reading
    # the same storage under its own names, must see every request they counted.
    for _ in range(2):
        assert request_reset(client, "anna@example.com").status_code == 202
    with app.test_request_context():
        setup, strategy = _setup(app), limiter.limiter
        ip, identifier = parse("7 per minute"), parse("4 per hour")
        asked = Asked(EmailReset(email="anna@example.com"))
        by_ip = strategy.get_window_stats(ip, setup.prefix, client_key(asked), "code-requests")
        by_address = strategy.get_window_stats(
            identifier, setup.prefix, identifier_key(asked) or "", "identifiers"
        )
    assert (by_ip.remaining, by_address.remaining) == (5, 2)


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IP": "3 per minute",
            "RESET_RATE_LIMIT_PER_IDENTIFIER": "50 per minute",
        }
    ],
)
def test_the_address_limit_covers_every_recovery_endpoint(client):
    statuses = [request_reset(client, f"p{i}@example.com").status_code for i in range(4)]
    assert statuses == [202, 202, 202, 429]
    assert client.post("/api/v1/recovery/flows", json={}).status_code == 201  # its own budget


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IDENTIFIER": "2 per minute",
            "RESET_RATE_LIMIT_PER_IP": "100 per minute",
        }
    ],
)
def test_public_answers_do_not_show_how_often_an_address_was_asked_for(client, ingest):
    answers = [request_reset(client, "someone@example.com") for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    for answer in answers:
        assert not [name for name in dict(answer.headers) if name.startswith("X-RateLimit")]
    assert "Retry-After" not in answers[0].headers and int(answers[2].headers["Retry-After"]) > 0
    page = client.get("/recover")
    assert not [name for name in dict(page.headers) if name.startswith("X-RateLimit")]
    # The shop's own API keeps them: its key's budget is its own business.
    shop = client.get("/api/v1/accounts/nobody", headers=ingest)
    assert "X-RateLimit-Remaining" in shop.headers


@pytest.mark.parametrize(
    "app_config", [{"API_RATE_LIMIT": "2 per minute", "RESET_RATE_LIMIT_PER_IP": "100 per minute"}]
)
def test_public_endpoints_spend_their_own_budgets_not_the_api_keys(client, ingest):
    flow = client.post("/api/v1/recovery/flows", json={}).get_json()["id"]
    reads = [client.get(f"/api/v1/recovery/flows/{flow}").status_code for _ in range(3)]
    assert reads == [200, 200, 200]
    # The per-key limit of the shop's API is Flask-Limiter's, and holds as before.
    shop = [client.get("/api/v1/accounts/nobody", headers=ingest).status_code for _ in range(3)]
    assert shop == [404, 404, 429]


def test_flask_limiters_hooks_skip_the_public_paths(app):
    calls = []
    hook = skipped_on(PUBLIC_PREFIXES, lambda *args: calls.append(args) or "ran")
    for path in ("/api/v1/recovery/email", "/recover/reset"):
        with app.test_request_context(path):
            assert hook("response") == "response"  # an after-request hook: handed on
            assert hook() is None
    with app.test_request_context("/api/v1/accounts/anna"):
        assert hook("response") == "ran"
    assert calls == [("response",)]


def _flow_at_email(client):
    flow = client.post("/api/v1/recovery/flows", json={}).get_json()["id"]
    client.post(f"/api/v1/recovery/flows/{flow}/answer", json={"node": "start", "value": "yes"})
    return flow


def _answer_email(client, flow, email):
    return client.post(
        f"/api/v1/recovery/flows/{flow}/answer", json={"node": "email", "value": email}
    )


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IDENTIFIER": "2 per minute",
            "RESET_RATE_LIMIT_PER_IP": "100 per minute",
        }
    ],
)
def test_an_address_answered_in_a_flow_counts_as_a_request_for_it(client, anna):
    first = _answer_email(client, _flow_at_email(client), "anna@example.com")
    second = request_reset(client, " Anna@Example.com")
    known = _answer_email(client, _flow_at_email(client), "anna@example.com")
    assert [first.status_code, second.status_code, known.status_code] == [200, 202, 429]
    for _ in range(2):
        _answer_email(client, _flow_at_email(client), "nobody@example.com")
    unknown = _answer_email(client, _flow_at_email(client), "nobody@example.com")
    assert unknown.status_code == 429
    # Alike but for "instance", the path, which names each request's own flow.
    drop_instance = lambda response: {  # noqa: E731
        k: v for k, v in response.get_json().items() if k != "instance"
    }
    assert drop_instance(unknown) == drop_instance(known)
    assert len(mails("anna@example.com")) == 2


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IP": "3 per minute",
            "RESET_RATE_LIMIT_PER_IDENTIFIER": "50 per minute",
        }
    ],
)
def test_the_requests_for_a_code_share_one_budget_per_client_address(client, app):
    flows = [_flow_at_email(client) for _ in range(2)]  # answers to questions do not count
    assert request_reset(client, "p1@example.com").status_code == 202
    assert _answer_email(client, flows[0], "p2@example.com").status_code == 200
    assert request_reset(client, "p3@example.com").status_code == 202
    assert _answer_email(client, flows[1], "p4@example.com").status_code == 429
    assert request_reset(client, "p5@example.com").status_code == 429
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"  # another client has its own
    assert request_reset(other, "p6@example.com").status_code == 202


@pytest.mark.postgres
@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IP": "1000 per minute",
            "VERIFY_RATE_LIMIT_PER_FLOW": "1000 per minute",
        }
    ],
)
def test_fifty_concurrent_redemptions_of_one_link_give_one_success(committed_app):
    with committed_app.app_context():
        account = factories.account("racer", ("email", "racer@example.com", True))
        token = SecretService(db.session, TEST_SECRET_KEYS).issue_link(
            RESET_LINK, account, None, "email"
        )
        db.session.commit()

    barrier = threading.Barrier(50)
    results: list[str] = []

    def attempt() -> None:
        client = committed_app.test_client()
        barrier.wait()
        response = client.post(
            "/api/v1/recovery/password", json={"token": token, "password": STRONG}
        )
        results.append(response.get_json().get("code") or "ok")

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results.count("ok") == 1, results
    assert sorted(set(results)) == ["invalid_token", "ok"]


def test_purging_removes_only_long_expired_secrets(app, anna):
    import datetime as dt

    from sqlalchemy import func, select

    service = SecretService(db.session, TEST_SECRET_KEYS)
    live = service.issue_link(RESET_LINK, anna, None, "email")
    service.issue_link(RESET_LINK, None, None, "email")  # a decoy
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    db.session.execute(
        update(Secret).where(Secret.account_id.is_(None)).values(expires_at=long_ago)
    )
    result = app.test_cli_runner().invoke(args=["purge-secrets"])
    assert result.output.strip() == "purged 1 expired secrets"
    assert db.session.scalar(select(func.count()).select_from(Secret)) == 1
    assert service.peek_link(RESET_LINK, live).account_id == anna.id

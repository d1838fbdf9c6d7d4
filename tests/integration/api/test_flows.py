"""The recovery flow API (DESIGN §4): starting a flow, walking DEFAULT_TREE, and the refusals.

Sending mail, codes and passwords are covered in tests/integration/recovery; here an email form is
only answered to see where the walk goes next.
"""

from __future__ import annotations

import datetime as dt

import pytest

from recovery.db import db
from recovery.flows.models import FlowStatus, RecoveryFlow
from recovery.flows.services import Step
from recovery.flows.tree import DEFAULT_TREE, DIDNT_WORK, NodeType
from recovery.resets.services import Completion

FLOWS = "/api/v1/recovery/flows"
DEFAULT_RETURN_TO = "https://recovery.example.test/recover/done"
#: What an email form is answered with: the walk moves on whether or not an account uses it.
ADDRESS = "nobody@example.com"
#: Rate limits out of the way (they are tested elsewhere): the walks here make many requests, and
#: the limiter is one object per process whose counters (on Redis) outlive a test unless reset.
#: A limit's text is part of its key, so these counters are this module's own.
LIMITS = {
    "RESET_RATE_LIMIT_PER_IP": "1000 per minute",
    "VERIFY_RATE_LIMIT_PER_FLOW": "1000 per minute",
}


@pytest.fixture
def app_config():
    return dict(LIMITS)


def start(client, **body):
    response = client.post(FLOWS, json={"locale": "en", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def answer(client, flow_id, node, value):
    return client.post(f"{FLOWS}/{flow_id}/answer", json={"node": node, "value": value})


def walk(client, flow_id, *steps):
    """Answer ``(node, value)`` pairs in order, each of which must succeed; the last response body."""
    body = None
    for node, value in steps:
        response = answer(client, flow_id, node, value)
        assert response.status_code == 200, (node, value, response.get_json())
        body = response.get_json()
    return body


def current(client, flow_id):
    response = client.get(f"{FLOWS}/{flow_id}")
    assert response.status_code == 200
    return response.get_json()["node"]["id"]


def row(flow_id):
    flow = db.session.get(RecoveryFlow, flow_id)
    db.session.refresh(flow)
    return flow


def values(node):
    return [option["value"] for option in node["options"]]


def problem(response, status, code):
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code
    return body


# -- starting ----------------------------------------------------------------------------------------


def test_a_flow_starts_at_the_order_emails_question(client):
    response = client.post(FLOWS, json={"locale": "en"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "active"
    assert body["locale"] == "en"
    assert body["redirect_to"] is None
    assert body["node"] == {
        "id": "start",
        "type": "question",
        "prompt": "Do you receive emails from us about your orders?",
        "options": [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}],
        "providers": [],
    }
    expires_at = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(minutes=59) < expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
    assert current(client, body["id"]) == "start"


def test_a_polish_flow_speaks_polish(client):
    body = start(client, locale="pl")
    assert body["locale"] == "pl"
    assert body["node"]["prompt"] == "Czy dostajesz od nas e-maile o swoich zamówieniach?"
    assert body["node"]["options"] == [
        {"value": "yes", "label": "Tak"},
        {"value": "no", "label": "Nie"},
    ]
    node = walk(client, body["id"], ("start", "yes"))["node"]
    assert node["prompt"] == "Podaj adres e-mail, na który dostajesz wiadomości o zamówieniach."
    assert node["options"] == [{"value": DIDNT_WORK, "label": "To nie zadziałało"}]
    # GET answers in the flow's language too.
    assert client.get(f"{FLOWS}/{body['id']}").get_json()["node"] == node


def test_polish_is_the_default_locale(client):
    response = client.post(FLOWS, json={})
    assert response.status_code == 201
    assert response.get_json()["locale"] == "pl"
    assert response.get_json()["node"]["options"][0]["label"] == "Tak"


@pytest.mark.parametrize(
    "body",
    [{"locale": "de"}, {"locale": "en", "surprise": 1}, {"return_to": "https://x/" + "a" * 2048}],
)
def test_a_bad_start_is_refused(client, body):
    problem(client.post(FLOWS, json=body), 422, "validation_failed")


# -- walking every routing of DEFAULT_TREE ----------------------------------------------------------


def api_edges(node_id):
    """The ways on from ``node_id`` that the API can take here: options, ``didnt_work`` and an email
    form's address. (Codes, OAuth, SMS and help cases are covered elsewhere or come later.)"""
    node = DEFAULT_TREE[node_id]
    for option in node.options:
        yield option.value, option.next
    if node.type is NodeType.EMAIL_FORM and node.next:
        yield ADDRESS, node.next
    if node.fallback:
        yield DIDNT_WORK, node.fallback


def api_routes():
    """Every walk from the start through the API-walkable edges, as ``[(node, value, next), ...]``."""
    routes = []

    def extend(route, node_id):
        edges = list(api_edges(node_id))
        if not edges:
            routes.append(route)
        for value, target in edges:
            extend([*route, (node_id, value, target)], target)

    extend([], DEFAULT_TREE.start)
    return routes


def route_id(route):
    return ">".join(
        [route[0][0]] + [f"{'@' if v == ADDRESS else v}>{target}" for _, v, target in route]
    )


ROUTES = api_routes()


def test_the_routes_cover_every_api_walkable_edge():
    walked = {(node, value) for route in ROUTES for node, value, _ in route}
    reachable = {node for route in ROUTES for step in route for node in (step[0], step[2])}
    expected = {(node, value) for node in reachable for value, _ in api_edges(node)}
    assert walked == expected
    # Everything but the steps that need a code, an OAuth login or an SMS is reachable here.
    assert set(DEFAULT_TREE.nodes) - reachable == {
        "new_password",
        "phone_code",
        "help_sent",
        "done",
    }


@pytest.mark.parametrize("route", ROUTES, ids=[route_id(r) for r in ROUTES])
def test_every_routing_of_the_default_tree(client, route):
    flow_id = start(client)["id"]
    for node_id, value, target in route:
        response = answer(client, flow_id, node_id, value)
        assert response.status_code == 200, response.get_json()
        node = response.get_json()["node"]
        expected = DEFAULT_TREE[target]
        assert (node["id"], node["type"]) == (target, expected.type.value)
        assert values(node) == [o.value for o in expected.options] + (
            [DIDNT_WORK] if expected.fallback else []
        )
        assert response.get_json()["status"] == "active"
    assert current(client, flow_id) == route[-1][2]
    assert row(flow_id).node == route[-1][2]


def test_no_no_none_leads_to_the_help_form(client):
    flow_id = start(client)["id"]
    assert walk(client, flow_id, ("start", "no"))["node"]["id"] == "paypal"
    assert walk(client, flow_id, ("paypal", "no"))["node"]["id"] == "social"
    node = walk(client, flow_id, ("social", "none"))["node"]
    assert node == {
        "id": "help",
        "type": "help_form",
        "prompt": "Tell us what happened and we will answer within 24 hours.",
        "options": [],
        "providers": [],
    }


def test_the_social_question_offers_google_facebook_phone_and_none(client):
    flow_id = start(client)["id"]
    node = walk(client, flow_id, ("start", "no"), ("paypal", "no"))["node"]
    assert node["prompt"] == "Did you sign in with Facebook, Google or your mobile phone?"
    assert node["options"] == [
        {"value": "google", "label": "Google"},
        {"value": "facebook", "label": "Facebook"},
        {"value": "phone", "label": "My mobile phone"},
        {"value": "none", "label": "None of these"},
    ]


def test_the_email_form_fails_forward_to_the_paypal_question(client):
    flow_id = start(client)["id"]
    email = walk(client, flow_id, ("start", "yes"))["node"]
    assert (email["id"], email["type"]) == ("email", "email_form")
    assert email["options"] == [{"value": DIDNT_WORK, "label": "That didn't work"}]
    paypal = walk(client, flow_id, ("email", DIDNT_WORK))["node"]
    assert paypal["id"] == "paypal"
    assert paypal["prompt"] == "Did you pay with PayPal without creating an account?"
    assert DIDNT_WORK not in values(paypal)


def test_paypal_login_offers_the_paypal_email_form(client):
    flow_id = start(client)["id"]
    login = walk(client, flow_id, ("start", "no"), ("paypal", "yes"))["node"]
    assert (login["id"], login["type"]) == ("paypal_login", "oauth_choice")
    assert login["providers"] == ["paypal"]
    assert login["options"] == [
        {"value": "paypal_email", "label": "Use my PayPal email address"},
        {"value": DIDNT_WORK, "label": "That didn't work"},
    ]
    form = walk(client, flow_id, ("paypal_login", "paypal_email"))["node"]
    assert (form["id"], form["type"]) == ("paypal_email", "email_form")
    assert form["prompt"] == "Enter the email address of your PayPal account."
    assert values(form) == [DIDNT_WORK]


@pytest.mark.parametrize("provider", ["google", "facebook"])
def test_a_social_login_fails_forward_to_a_person(client, provider):
    flow_id = start(client)["id"]
    login = walk(client, flow_id, ("start", "no"), ("paypal", "no"), ("social", provider))["node"]
    assert (login["id"], login["type"]) == (f"{provider}_login", "oauth_choice")
    assert login["providers"] == [provider]
    assert values(login) == [DIDNT_WORK]
    assert walk(client, flow_id, (f"{provider}_login", DIDNT_WORK))["node"]["id"] == "help"


# -- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("node", ["paypal", "email", "done", "nowhere"])
def test_answering_a_node_that_is_not_current_is_a_conflict(client, node):
    flow_id = start(client)["id"]
    body = problem(answer(client, flow_id, node, "no"), 409, "node_not_current")
    assert body["current"] == "start"
    assert current(client, flow_id) == "start"
    assert [e["event"] for e in row(flow_id).trail] == ["started"]


def test_answering_an_earlier_node_again_does_not_move_the_flow(client):
    flow_id = start(client)["id"]
    walk(client, flow_id, ("start", "yes"))
    body = problem(answer(client, flow_id, "start", "no"), 409, "node_not_current")
    assert body["current"] == "email"
    assert current(client, flow_id) == "email"
    assert row(flow_id).answers == {"start": "yes"}


@pytest.mark.parametrize(
    ("steps", "node", "value"),
    [
        pytest.param([], "start", "maybe", id="question"),
        pytest.param([], "start", "YES", id="question-case"),
        pytest.param([], "start", DIDNT_WORK, id="didnt-work-without-fallback"),
        pytest.param([("start", "no")], "paypal", "", id="empty"),
        pytest.param([("start", "no"), ("paypal", "yes")], "paypal_login", "twitter", id="oauth"),
    ],
)
def test_an_unknown_option_is_a_field_error(client, steps, node, value):
    flow_id = start(client)["id"]
    walk(client, flow_id, *steps)
    body = problem(answer(client, flow_id, node, value), 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["value"]
    assert current(client, flow_id) == node


@pytest.mark.parametrize(
    ("steps", "node", "value"),
    [
        pytest.param([("start", "no"), ("paypal", "yes")], "paypal_login", "paypal", id="paypal"),
        pytest.param(
            [("start", "no"), ("paypal", "no"), ("social", "google")],
            "google_login",
            "google",
            id="google",
        ),
        pytest.param(
            [("start", "no"), ("paypal", "no"), ("social", "facebook")],
            "facebook_login",
            "facebook",
            id="facebook",
        ),
        pytest.param(
            [("start", "no"), ("paypal", "no"), ("social", "phone")],
            "phone",
            "+48 600 100 200",
            id="phone",
        ),
        pytest.param(
            [("start", "no"), ("paypal", "no"), ("social", "none")],
            "help",
            "I lost my phone and my mailbox",
            id="help",
        ),
    ],
)
def test_ways_in_that_come_later_are_unavailable(client, steps, node, value):
    flow_id = start(client)["id"]
    walk(client, flow_id, *steps)
    problem(answer(client, flow_id, node, value), 503, "method_unavailable")
    assert current(client, flow_id) == node
    assert len(row(flow_id).trail) == 1 + len(steps)


def test_an_invalid_address_keeps_the_flow_on_the_email_form(client):
    flow_id = start(client)["id"]
    walk(client, flow_id, ("start", "yes"))
    body = problem(answer(client, flow_id, "email", "not an address"), 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["value"]
    assert current(client, flow_id) == "email"
    flow = row(flow_id)
    assert flow.node == "email"
    assert "email" not in flow.answers
    assert [e["event"] for e in flow.trail] == ["started", "answered"]


@pytest.mark.parametrize("flow_id", ["no-such-flow", "x" * 32, "x" * 33])
def test_an_unknown_flow_is_not_found(client, flow_id):
    problem(client.get(f"{FLOWS}/{flow_id}"), 404, "not_found")
    problem(answer(client, flow_id, "start", "yes"), 404, "not_found")


def test_an_expired_flow_is_gone(client):
    flow_id = start(client)["id"]
    flow = row(flow_id)
    flow.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.session.commit()
    problem(client.get(f"{FLOWS}/{flow_id}"), 410, "flow_expired")
    problem(answer(client, flow_id, "start", "yes"), 410, "flow_expired")
    assert row(flow_id).node == "start"


def test_a_finished_flow_takes_no_more_answers(client):
    flow_id = start(client)["id"]
    flow = row(flow_id)
    flow.status = FlowStatus.HELP
    db.session.commit()
    problem(answer(client, flow_id, "start", "yes"), 409, "flow_finished")
    reset = client.post(
        "/api/v1/recovery/email", json={"email": "a@example.com", "flow_id": flow_id}
    )
    problem(reset, 409, "flow_finished")  # a documented answer of this operation too
    assert client.get(f"{FLOWS}/{flow_id}").get_json()["status"] == "help"


# -- return_to ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{**LIMITS, "RETURN_TO_ORIGINS": "https://shop.example"}])
@pytest.mark.parametrize(
    ("return_to", "kept"),
    [
        ("https://shop.example/account?tab=orders", True),
        ("https://shop.example", True),
        ("HTTPS://Shop.Example/back", True),
        (None, False),
        ("https://evil.example/account", False),
        ("http://shop.example/account", False),
        ("https://shop.example.evil.example/", False),
        ("https://shop.example@evil.example/", False),
        ("//shop.example/account", False),
        ("/account", False),
        ("javascript:alert(1)//https://shop.example", False),
        # Regression: browsers read "\\" as "/", urlsplit does not (open redirect, DESIGN §5.7).
        pytest.param("https://evil.example\\@shop.example/", False, id="backslash-userinfo"),
        pytest.param("https://shop.example/\tx", False, id="control-character"),
    ],
)
def test_return_to_is_kept_only_on_an_allowed_origin(client, return_to, kept):
    flow_id = start(client, return_to=return_to)["id"]
    assert row(flow_id).return_to == (return_to if kept else DEFAULT_RETURN_TO)


def test_without_allowed_origins_return_to_is_always_the_default(client):
    flow_id = start(client, return_to="https://shop.example/account")["id"]
    assert row(flow_id).return_to == DEFAULT_RETURN_TO


def test_the_ticket_goes_into_the_query_even_when_return_to_has_a_fragment():
    flow = RecoveryFlow(return_to="https://shop.example/back?tab=1#top")
    step = Step(flow, DEFAULT_TREE["done"], Completion(None, "email_code", "T"))
    assert step.redirect_to == "https://shop.example/back?tab=1&ticket=T#top"


# -- the trail ---------------------------------------------------------------------------------------


def test_the_trail_records_answers_and_didnt_work_in_order(client):
    flow_id = start(client)["id"]
    walk(
        client,
        flow_id,
        ("start", "yes"),
        ("email", DIDNT_WORK),
        ("paypal", "yes"),
        ("paypal_login", "paypal_email"),
        ("paypal_email", DIDNT_WORK),
        ("social", "google"),
    )
    answer(client, flow_id, "social", "none")  # refused: not current; leaves no trace
    answer(client, flow_id, "google_login", "google")  # refused: unavailable; leaves no trace
    walk(client, flow_id, ("google_login", DIDNT_WORK))
    flow = row(flow_id)
    assert [(e["node"], e["event"], e.get("value")) for e in flow.trail] == [
        ("start", "started", None),
        ("start", "answered", "yes"),
        ("email", "didnt_work", None),
        ("paypal", "answered", "yes"),
        ("paypal_login", "answered", "paypal_email"),
        ("paypal_email", "didnt_work", None),
        ("social", "answered", "google"),
        ("google_login", "didnt_work", None),
    ]
    times = [dt.datetime.fromisoformat(e["at"]) for e in flow.trail]
    assert times == sorted(times)
    assert flow.answers == {"start": "yes", "paypal": "yes", "social": "google"}
    assert flow.node == "help"

"""The hosted wizard through a test client: same flows, translated, CSRF-protected, no oracle."""

import datetime as dt
import re

import pytest

from recovery.accounts.models import AccountStatus
from recovery.db import db
from recovery.flows.models import FlowStatus, RecoveryFlow
from tests.integration.conftest import STRONG, code_of, link_token, mails


def csrf(page):
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def start(client, lang="en"):
    response = client.get(f"/recover?lang={lang}")
    assert response.status_code == 303
    return client.get("/recover")


def post(client, page, **fields):
    node = re.search(r'name="node" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return client.post("/recover", data={"csrf_token": csrf(page), "node": node, **fields})


def follow(client, response):
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return client.get(response.headers["Location"])


@pytest.mark.parametrize(
    ("lang", "question", "sent"),
    [
        ("en", "Do you receive emails from us about your orders?", "we have sent it a link"),
        ("pl", "Czy dostajesz od nas e-maile o swoich zamówieniach?", "wysłaliśmy na niego link"),
    ],
)
def test_a_customer_walks_from_the_question_to_a_new_password(client, anna, lang, question, sent):
    page = start(client, lang)
    assert question in page.get_data(as_text=True)
    page = follow(client, post(client, page, choice="yes"))
    page = follow(client, post(client, page, email="anna@example.com"))
    assert sent in page.get_data(as_text=True)
    page = follow(client, post(client, page, code=code_of(mails()[0])))
    assert 'autocomplete="new-password"' in page.get_data(as_text=True)
    done = post(client, page, password=STRONG)
    assert done.status_code == 303
    assert done.headers["Location"].startswith("https://recovery.example.test/recover/done?ticket=")


def test_known_and_unknown_addresses_look_the_same_on_the_pages(client, anna, app):
    def submit(email):
        other = app.test_client()
        page = start(other)
        page = follow(other, post(other, page, choice="yes"))
        answered = post(other, page, email=email)
        return answered, other.get(answered.headers["Location"])

    known, known_page = submit("anna@example.com")
    unknown, unknown_page = submit("nobody@example.com")
    assert (known.status_code, known.headers["Location"]) == (
        unknown.status_code,
        unknown.headers["Location"],
    )
    strip = lambda page: re.sub(r'value="[^"]{20,}"', "", page.get_data(as_text=True))  # noqa: E731
    assert strip(known_page) == strip(unknown_page)


def test_a_wrong_code_is_a_translated_message_and_the_step_stays(client, anna):
    page = start(client, "pl")
    page = follow(client, post(client, page, choice="yes"))
    page = follow(client, post(client, page, email="anna@example.com"))
    wrong = f"{(int(code_of(mails()[0])) + 1) % 1_000_000:06d}"
    response = post(client, page, code=wrong)
    assert response.status_code == 400
    assert "Ten link lub kod jest nieprawidłowy" in response.get_data(as_text=True) or (
        "nie jest" in response.get_data(as_text=True)
    )
    assert 'name="code"' in response.get_data(as_text=True)


def test_a_form_without_its_csrf_token_is_refused(client):
    page = start(client)
    response = client.post("/recover", data={"node": "start", "choice": "yes"})
    assert response.status_code == 400
    assert "Do you receive" not in response.get_data(as_text=True)
    assert csrf(page)  # the real form carries one


def test_the_link_opens_a_form_and_uses_nothing(client, anna):
    client.post("/api/v1/recovery/email", json={"email": "anna@example.com"})
    token = link_token(mails()[0])
    for _ in range(2):  # mail scanners open links too
        page = client.get(f"/recover/reset?token={token}&lang=en")
        assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    weak = client.post(
        "/recover/reset?lang=en",
        data={"csrf_token": csrf(page), "token": token, "password": "short"},
    )
    assert weak.status_code == 422 and "at least 12 characters" in weak.get_data(as_text=True)
    assert "short" not in re.sub(r"<[^>]+>", "", weak.get_data(as_text=True)).replace(
        "at least", ""
    )
    done = client.post(
        "/recover/reset", data={"csrf_token": csrf(page), "token": token, "password": STRONG}
    )
    assert done.status_code == 303 and "ticket=" in done.headers["Location"]
    again = client.get(f"/recover/reset?token={token}&lang=en")
    assert again.status_code == 400 and "not valid" in again.get_data(as_text=True)


def test_this_wasnt_me_freezes_the_account(client, anna):
    client.post("/api/v1/recovery/email", json={"email": "anna@example.com"})
    token = link_token(mails()[0])
    page = client.get(f"/recover/reset?token={token}")
    client.post(
        "/recover/reset", data={"csrf_token": csrf(page), "token": token, "password": STRONG}
    )
    notice = next(m for m in mails() if m["template"] == "password_changed")
    freeze = re.search(r"/recover/freeze\?token=([\w.\-]+)", notice["text"]).group(1)
    confirm = client.get(f"/recover/freeze?token={freeze}&lang=en")
    assert (
        confirm.status_code == 200 and anna.status is AccountStatus.ACTIVE
    )  # a GET changes nothing
    frozen = client.post(
        "/recover/freeze?lang=en", data={"csrf_token": csrf(confirm), "token": freeze}
    )
    assert frozen.status_code == 200 and "frozen" in frozen.get_data(as_text=True)
    db.session.refresh(anna)
    assert anna.status is AccountStatus.LOCKED
    # A locked account gets no more reset mail.
    client.post("/api/v1/recovery/email", json={"email": "anna@example.com"})
    assert [m["template"] for m in mails()][-1] == "unknown_address"


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IDENTIFIER": "2 per minute",
            "RESET_RATE_LIMIT_PER_IP": "100 per minute",
        }
    ],
)
def test_the_wizard_limits_each_address_on_its_own(client, app):
    def submit(email):
        other = app.test_client()
        page = start(other)
        page = follow(other, post(other, page, choice="yes"))
        return post(other, page, email=email).status_code

    assert [submit("a@example.com") for _ in range(3)] == [303, 303, 429]
    assert submit("b@example.com") == 303  # another address has its own budget


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IDENTIFIER": "2 per minute",
            "RESET_RATE_LIMIT_PER_IP": "100 per minute",
        }
    ],
)
def test_the_address_limit_keys_on_the_field_the_wizard_reads(client, app, anna):
    """A hand-made form may carry the address in another field than the page's: the limit reads
    the answer as the wizard does, so no field gets around it."""

    def submit(**fields):
        other = app.test_client()
        page = follow(other, post(other, start(other), choice="yes"))
        return post(other, page, **fields).status_code

    statuses = [
        submit(choice="anna@example.com"),
        submit(email="anna@example.com"),
        submit(choice="ANNA@example.com ", email="decoy@example.com"),
    ]
    assert statuses == [303, 303, 429]
    assert len(mails("anna@example.com")) == 2


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "RESET_RATE_LIMIT_PER_IDENTIFIER": "1 per minute",
            "RESET_RATE_LIMIT_PER_IP": "100 per minute",
        }
    ],
)
def test_a_limited_page_says_so_in_the_persons_language(client, app, anna):
    def submit(email):
        other = app.test_client()
        page = follow(other, post(other, start(other, "pl"), choice="yes"))
        return post(other, page, email=email)

    assert submit("anna@example.com").status_code == submit("nobody@example.com").status_code
    known, unknown = submit("anna@example.com"), submit("nobody@example.com")
    assert known.status_code == 429 and known.mimetype == "text/html"
    assert "Za dużo prób. Odczekaj kilka minut i spróbuj ponownie." in known.get_data(as_text=True)
    assert int(known.headers["Retry-After"]) > 0
    assert known.get_data() == unknown.get_data()


def test_pages_that_are_not_there_are_pages_too(client):
    missing = client.get("/recover/nope?lang=pl")
    assert (missing.status_code, missing.mimetype) == (404, "text/html")
    assert "Nie udało się tego znaleźć. Zacznij od nowa." in missing.get_data(as_text=True)
    wrong_method = client.put("/recover", headers={"Accept-Language": "en"})
    assert (wrong_method.status_code, wrong_method.mimetype) == (405, "text/html")
    assert "GET" in wrong_method.headers["Allow"]
    assert "Something went wrong. Please try again." in wrong_method.get_data(as_text=True)


def test_a_crash_on_a_page_is_a_page_without_details(client, monkeypatch):
    from recovery.web import recover

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(recover, "flow_service", broken)
    crashed = client.get("/recover?lang=pl")
    assert (crashed.status_code, crashed.mimetype) == (500, "text/html")
    text = crashed.get_data(as_text=True)
    assert "Coś poszło nie tak. Spróbuj ponownie." in text and "secret internals" not in text


#: The heading of each error page, in each language.
ERROR_TITLES = {
    "en": {
        400: "Something went wrong",
        404: "Page not found",
        405: "This action is not available here",
        429: "Too many attempts",
        500: "Something went wrong on our side",
    },
    "pl": {
        400: "Coś poszło nie tak",
        404: "Nie znaleziono strony",
        405: "Ta czynność nie jest tu dostępna",
        429: "Za dużo prób",
        500: "Coś poszło nie tak po naszej stronie",
    },
}


def _provoke(client, monkeypatch, case, lang):
    """A request that ends on the error page of ``case``, asked for in ``lang``."""
    query = {"lang": lang}
    if case == "404":
        return client.get("/recover/nope", query_string=query)
    if case == "404 /dev":
        return client.get("/dev/mailbox/999999", query_string=query)
    if case == "405":
        return client.put("/recover", query_string=query)
    if case == "400":  # a form without its CSRF token
        return client.post("/recover", query_string=query, data={"node": "start"})
    if case == "429":
        client.get("/recover", query_string=query)
        return client.get("/recover", query_string=query)
    from recovery.web import recover

    assert case == "500"  # a crash
    monkeypatch.setattr(recover, "flow_service", lambda: 1 / 0)
    return client.get("/recover", query_string=query)


@pytest.mark.parametrize("app_config", [{"RESET_RATE_LIMIT_PER_IP": "1 per minute"}])
@pytest.mark.parametrize("lang", ["pl", "en"])
@pytest.mark.parametrize("case", ["400", "404", "404 /dev", "405", "429", "500"])
def test_every_error_page_is_headed_by_its_translated_title(client, monkeypatch, case, lang):
    page = _provoke(client, monkeypatch, case, lang)

    status = int(case.split()[0])
    assert (page.status_code, page.mimetype) == (status, "text/html")
    text = page.get_data(as_text=True)
    assert f'<html lang="{lang}"' in text
    assert re.findall(r"<h1>(.*?)</h1>", text) == [ERROR_TITLES[lang][status]]
    assert re.search(r"<title>(.*?)</title>", text).group(1) == ERROR_TITLES[lang][status]
    assert text.index("</h1>") < text.index('class="error"')  # the heading, then the sentence


def _walk_to_code(client, lang="en", **query):
    response = client.get("/recover", query_string={"lang": lang, **query})
    page = follow(client, post(client, follow(client, response), choice="yes"))
    return follow(client, post(client, page, email="anna@example.com"))


def test_a_walk_finished_by_the_mailed_link_shows_its_end_in_the_wizard(client, anna):
    _walk_to_code(client)
    token = link_token(mails()[0])
    form = client.get(f"/recover/reset?token={token}&lang=en")
    finished = client.post(
        "/recover/reset", data={"csrf_token": csrf(form), "token": token, "password": STRONG}
    )
    assert finished.status_code == 303
    page = client.get("/recover").get_data(as_text=True)
    assert 'name="code"' not in page  # not the code form of a walk that is over
    assert client.get("/api/v1/recovery/flows/" + _flow_id(client)).get_json()["node"]["type"] == (
        "done"
    )


def _flow_id(client):
    with client.session_transaction() as session:
        return session["flow"]


@pytest.mark.parametrize("app_config", [{"RETURN_TO_ORIGINS": "https://shop.example"}])
def test_the_shop_sending_the_person_again_starts_a_new_walk(client, anna):
    _walk_to_code(client, return_to="https://shop.example/one")
    first = _flow_id(client)
    client.get("/recover", query_string={"return_to": "https://shop.example/two"})
    second = _flow_id(client)
    assert second != first
    flow = db.session.get(RecoveryFlow, second)
    assert flow.return_to == "https://shop.example/two"


@pytest.mark.parametrize("app_config", [{"RETURN_TO_ORIGINS": "https://shop.example"}])
def test_start_again_keeps_the_language_and_the_shops_return_to(client):
    client.get("/recover", query_string={"lang": "en", "return_to": "https://shop.example/back"})
    first = _flow_id(client)
    restarted = follow(client, client.get("/recover?restart=1"))
    assert '<html lang="en"' in restarted.get_data(as_text=True)
    flow = db.session.get(RecoveryFlow, _flow_id(client))
    assert flow.id != first and flow.return_to == "https://shop.example/back"


def test_a_finished_walk_is_shown_until_its_time_is_up_then_a_new_one_starts(client, anna):
    _walk_to_code(client)
    flow = db.session.get(RecoveryFlow, _flow_id(client))
    flow.status = FlowStatus.DONE
    flow.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    db.session.commit()
    old = flow.id
    client.get("/recover")
    assert _flow_id(client) != old


def test_an_error_page_of_the_wizard_speaks_the_walks_language(client):
    client.get("/recover", query_string={"lang": "en"})
    refused = client.post("/recover", data={"node": "start", "choice": "yes"})  # no CSRF token
    assert refused.status_code == 400
    assert '<html lang="en"' in refused.get_data(as_text=True)


def test_the_mailed_links_pages_keep_the_mails_language_after_a_post(client, anna):
    client.post("/api/v1/recovery/email", json={"email": "anna@example.com"})
    token = link_token(mails()[0])
    headers = {"Accept-Language": "pl"}
    form = client.get(f"/recover/reset?token={token}&lang=en", headers=headers)
    weak = client.post(
        re.search(r'<form method="post" action="([^"]+)"', form.get_data(as_text=True))
        .group(1)
        .replace("&amp;", "&"),
        data={"csrf_token": csrf(form), "token": token, "password": "short"},
        headers=headers,
    )
    assert weak.status_code == 422
    assert "Use at least 12 characters." in weak.get_data(as_text=True)


def test_providers_are_named_as_they_spell_themselves(client):
    page = follow(client, post(client, start(client), choice="no"))
    page = follow(client, post(client, page, choice="yes"))  # paid with PayPal as a guest
    assert "Continue with PayPal" in page.get_data(as_text=True)


def test_a_password_that_reads_skip_is_a_password_not_the_skip_button(client, anna):
    page = _walk_to_code(client)
    page = follow(client, post(client, page, code=code_of(mails()[0])))
    typed = post(client, page, password="skip")
    assert typed.status_code == 422
    assert "Use at least 12 characters." in typed.get_data(as_text=True)
    assert db.session.get(RecoveryFlow, _flow_id(client)).status is FlowStatus.ACTIVE
    assert [m["template"] for m in mails()] == ["reset"]  # nobody was told of a recovery

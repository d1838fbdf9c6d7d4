"""``/dev/mailbox``: the outbox's mail as a newcomer's inbox, in development only."""

import html
import re

from recovery.db import db
from tests.conftest import make_app
from tests.integration.outbox.conftest import enqueue, outbox

LINK = "https://recovery.example.test/recover/reset?token=t0"


def test_mail_shows_up_at_once_without_a_worker(client):
    enqueue(1)
    page = client.get("/dev/mailbox")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Development mailbox" in body
    assert "no worker running" in body
    assert "Mail transport: <strong>mailbox</strong>" in body
    assert "anna@example.com" in body
    assert "Test message for Anna 0" in body
    assert "pending" in body


def test_a_message_shows_its_text_with_clickable_links_and_its_html_sandboxed(client):
    enqueue(1)
    listing = client.get("/dev/mailbox").get_data(as_text=True)
    (href,) = re.findall(r'href="(/dev/mailbox/\d+)"', listing)
    page = client.get(href)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f'<a href="{LINK}" target="_blank" rel="noopener">{LINK}</a>' in body
    (srcdoc,) = re.findall(
        r'<iframe [^>]*sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="([^"]*)"', body
    )
    inner = html.unescape(srcdoc)
    assert '<base target="_blank">' in inner
    assert f'<a href="{LINK}">Open the link</a>' in inner


def test_the_mailbox_lists_newest_first_with_their_status(client, make_worker):
    enqueue(2)
    make_worker().run_once(limit=1)  # the oldest goes through the mailbox transport
    body = client.get("/dev/mailbox").get_data(as_text=True)
    assert body.index("Anna 1") < body.index("Anna 0")
    assert body.count('<td><span class="status status-sent">') == 1
    assert body.count('<td><span class="status status-pending">') == 1


def test_text_in_a_mail_cannot_inject_markup_into_the_page(client):
    outbox().enqueue_mail(
        "anna@example.com",
        "test_message",
        "en",
        {"name": "<script>alert(1)</script>", "link": 'https://x.test/"><script>'},
        "evil",
    )
    db.session.commit()
    listing = client.get("/dev/mailbox").get_data(as_text=True)
    assert "<script>" not in listing
    (href,) = re.findall(r'href="(/dev/mailbox/\d+)"', listing)
    assert "<script>" not in client.get(href).get_data(as_text=True)


def test_an_unknown_message_is_404(client):
    assert client.get("/dev/mailbox/999999").status_code == 404
    assert client.get("/dev/mailbox/99999999999999999999").status_code == 404  # beyond 64 bits


def test_there_is_no_mailbox_in_production(database_url):
    app = make_app(database_url, ENV="production", SMTP_URL="smtp://127.0.0.1:2525")
    assert app.config["MAIL_TRANSPORT"] == "smtp"
    client = app.test_client()
    assert client.get("/dev/mailbox").status_code == 404
    assert client.get("/dev/mailbox/1").status_code == 404
    with app.app_context():
        db.dispose()

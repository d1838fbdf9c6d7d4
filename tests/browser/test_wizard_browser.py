"""A customer in Chromium, from "I can't sign in" to a new password, with the mail a real SMTP server
received, in Polish and in English; by the link in the mail and by the code in it."""

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, MAIL_FROM, PHONE

pytestmark = pytest.mark.browser

PASSPHRASE = "copper kettles hum at dawn 2026"


@dataclass(frozen=True)
class Words:
    """What the customer reads and clicks, in one language."""

    question: str
    yes: str
    email_prompt: str
    email_label: str
    send: str
    sent: str
    code_label: str
    go_on: str
    wizard_password: str
    reset_title: str
    password_label: str
    save: str
    done: str
    subject: str
    code_line: str


WORDS = {
    "en": Words(
        question="Do you receive emails from us about your orders?",
        yes="Yes",
        email_prompt="Enter the email address where you receive our order emails.",
        email_label="Email address",
        send="Send me a code",
        sent="we have sent it a link and a 6-digit code",
        code_label="6-digit code",
        go_on="Continue",
        wizard_password="Choose a new password.",
        reset_title="Choose a new password",
        password_label="New password",
        save="Save the new password",
        done="You are back in",
        subject="Your code to get back into your account",
        code_line="Your code:",
    ),
    "pl": Words(
        question="Czy dostajesz od nas e-maile o swoich zamówieniach?",
        yes="Tak",
        email_prompt="Podaj adres e-mail, na który dostajesz wiadomości o zamówieniach.",
        email_label="Adres e-mail",
        send="Wyślij mi kod",
        sent="wysłaliśmy na niego link i 6-cyfrowy kod",
        code_label="Kod (6 cyfr)",
        go_on="Dalej",
        wizard_password="Ustaw nowe hasło.",
        reset_title="Ustaw nowe hasło",
        password_label="Nowe hasło",
        save="Zapisz nowe hasło",
        done="Gotowe, masz dostęp",
        subject="Twój kod do odzyskania konta",
        code_line="Twój kod:",
    ),
}


def speaks(page: Page, lang: str, heading: str) -> None:
    """The page is in ``lang``: its ``<html lang>``, its heading, and the language switch."""
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    current = {"pl": "Polski", "en": "English"}[lang]
    expect(page.locator(".lang [aria-current]")).to_have_text(current)


def fits(page: Page) -> None:
    """Nothing sticks out sideways (no horizontal scrolling on a phone)."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the window"


def screenshots(page: Page, tmp_path, name: str) -> None:
    """Phone and desktop screenshots of the page as it is now (for a person to look at)."""
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        fits(page)
        page.screenshot(path=tmp_path / f"{name}-{size_name}.png", full_page=True)
    page.set_viewport_size(PHONE)


def ask_for_mail(server, tab, lang: str, tmp_path, return_to: str | None = None):
    """From the first question to "we have sent you a code"; returns the mail and the address."""
    words = WORDS[lang]
    address = server.customer(lang)
    page = tab.page
    query = f"?lang={lang}" + (f"&return_to={return_to}" if return_to else "")
    page.goto(f"/recover{query}")
    speaks(page, lang, words.question)
    # The stylesheet arrived and applies (a page without it would still "work").
    expect(page.get_by_role("button", name=words.yes, exact=True)).to_have_css("display", "block")
    screenshots(page, tmp_path, f"question-{lang}")

    page.get_by_role("button", name=words.yes, exact=True).click()
    speaks(page, lang, words.email_prompt)
    page.get_by_label(words.email_label, exact=True).fill(address)
    page.get_by_role("button", name=words.send, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(words.sent)
    expect(page.locator("html")).to_have_attribute("lang", lang)

    server.deliver_mail()
    mail = server.mail_to(address)
    assert mail["From"] == MAIL_FROM
    assert mail["Subject"] == words.subject
    assert mail["Content-Language"] == lang
    return mail, mail.get_body(("plain",)).get_content()


def lands_done(page: Page, server, lang: str, expected_prefix: str) -> str:
    """The browser is at ``expected_prefix`` + a ticket, on the done page in ``lang``."""
    expect(page).to_have_url(re.compile("^" + re.escape(expected_prefix) + r"ticket=[\w.\-]+$"))
    speaks(page, lang, WORDS[lang].done)
    return page.url.rsplit("ticket=", 1)[1]


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_a_customer_gets_back_in_with_the_link_from_the_mail(server, open_tab, lang, tmp_path):
    words = WORDS[lang]
    tab = open_tab(lang)
    _mail, text = ask_for_mail(server, tab, lang, tmp_path)
    # The link is built from the public URL, never from what the browser sent.
    link = re.search(r"https?://\S+/recover/reset\?token=[\w.\-]+", text).group(0)
    assert link.startswith(f"{server.url}/recover/reset?token=")

    # The customer clicks the link in their mail program: it opens in a new tab.
    page = tab.new_page()
    page.goto(link)
    speaks(page, lang, words.reset_title)
    expect(page.get_by_text(words.password_label, exact=True)).to_be_visible()
    screenshots(page, tmp_path, f"reset-password-{lang}")
    # Someone else's language in the browser: the switch keeps the link working (and uses nothing).
    other = "en" if lang == "pl" else "pl"
    page.get_by_role("link", name={"pl": "Polski", "en": "English"}[other]).click()
    speaks(page, other, WORDS[other].reset_title)
    expect(page.get_by_label(WORDS[other].password_label, exact=True)).to_be_visible()
    page.get_by_role("link", name={"pl": "Polski", "en": "English"}[lang]).click()
    speaks(page, lang, words.reset_title)
    page.get_by_label(words.password_label, exact=True).fill(PASSPHRASE)
    page.get_by_role("button", name=words.save, exact=True).click()

    lands_done(page, server, lang, f"{server.url}/recover/done?")
    assert tab.blocked == [], "the pages tried to load something from outside"
    assert tab.errors == [], "the browser reported errors (CSP violations show up here)"


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_a_customer_gets_back_in_with_the_code_from_the_mail(server, open_tab, lang, tmp_path):
    words = WORDS[lang]
    tab = open_tab(lang)
    # The shop sent the customer here and wants them back (same origin in this test).
    return_to = f"{server.url}/recover/done?from=shop"
    _mail, text = ask_for_mail(server, tab, lang, tmp_path, return_to=return_to)
    code = re.search(re.escape(words.code_line) + r"\s*(\d{6})\b", text).group(1)

    page = tab.page
    page.get_by_label(words.code_label, exact=True).fill(code)
    page.get_by_role("button", name=words.go_on, exact=True).click()
    speaks(page, lang, words.wizard_password)
    screenshots(page, tmp_path, f"wizard-password-{lang}")
    page.get_by_label(words.password_label, exact=True).fill(PASSPHRASE)
    page.get_by_role("button", name=words.save, exact=True).click()

    lands_done(page, server, lang, f"{return_to}&")
    assert tab.blocked == [], "the pages tried to load something from outside"
    assert tab.errors == [], "the browser reported errors (CSP violations show up here)"

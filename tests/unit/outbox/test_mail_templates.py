"""Every mail the service sends exists in Polish and English, text and HTML, with a subject."""

import datetime as dt

import pytest

from recovery.outbox.mail import LOCALES, TEMPLATE_DIR, MailRenderer

CONTEXT = {
    "link": "https://recovery.example/recover/reset?token=t",
    "code": "123456",
    "minutes": 60,
    "recover": "https://recovery.example/recover",
    "freeze": "https://recovery.example/recover/freeze?token=f",
    "at": dt.datetime(2026, 12, 2, 16, 30, tzinfo=dt.UTC),
}
TEMPLATES = sorted({path.name.split(".")[0] for path in TEMPLATE_DIR.glob("*.*.txt")} - {"base"})


def test_the_templates_are_found():
    assert {"reset", "unknown_address", "password_changed", "account_recovered"} <= set(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_renders_in_every_language(template):
    renderer = MailRenderer()
    rendered = {locale: renderer.render(template, locale, CONTEXT) for locale in LOCALES}
    assert rendered["pl"].subject != rendered["en"].subject  # translated, not copied
    for mail in rendered.values():
        assert mail.text.strip() and "<p>" in mail.html
        if template in ("password_changed", "account_recovered"):
            assert CONTEXT["freeze"] in mail.text and CONTEXT["freeze"] in mail.html

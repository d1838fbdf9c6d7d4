"""``RECOVERY_SMTP_URL``: what each form means, and malformed ones refused without echoing them."""

import pytest

from providers.mail import SmtpSettings, parse_smtp_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:1025", SmtpSettings("127.0.0.1", 1025, False, False, None, None)),
        ("smtp://mail.example.com", SmtpSettings("mail.example.com", 25, False, False, None, None)),
        (
            "smtp://user:p%40ss%3Aword@mail.example.com:587?starttls=true",
            SmtpSettings("mail.example.com", 587, False, True, "user", "p@ss:word"),
        ),
        (
            "smtps://u:p@mail.example.com",
            SmtpSettings("mail.example.com", 465, True, False, "u", "p"),
        ),
        ("smtp://h:2525/?starttls=false", SmtpSettings("h", 2525, False, False, None, None)),
        ("smtp://u@h", SmtpSettings("h", 25, False, False, "u", None)),
    ],
)
def test_forms(url, expected):
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.com", "must start with smtp:// or smtps://"),
        ("smtp://", "has no host"),
        ("smtp://h:notaport", "invalid port"),
        ("smtp://h/path", "must not have a path"),
        ("smtp://h?tls=yes", "unknown parameters: tls"),
        ("smtp://h?starttls=maybe", "starttls must be true or false"),
        ("smtps://h?starttls=true", "already TLS"),
    ],
)
def test_malformed_urls(url, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse_smtp_url(url)
    assert url not in str(caught.value)

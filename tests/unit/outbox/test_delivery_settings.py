"""The delivery settings: defaults, transport selection, and refusals that name the variable."""

import pytest

from recovery import create_app
from recovery.config import ConfigError
from recovery.outbox.settings import DeliverySettings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PASSWORD_URL = "smtp://mailer:hunter2-secret@mail.example.com:587?starttls=true"


@pytest.fixture
def production(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_ENV", "production")
    monkeypatch.setenv("RECOVERY_SECRET_KEYS", "k" * 40)
    monkeypatch.setenv("RECOVERY_PUBLIC_URL", "https://help.example.com")


def test_defaults(instance):
    config = create_app().config
    assert config["MAIL_TRANSPORT"] == "mailbox"
    assert config["SMTP_URL"] is None
    assert config["MAIL_FROM"] == "Account help <no-reply@localhost>"
    assert config["WEBHOOK_URL"] is None
    assert config["WEBHOOK_SECRET"] is None
    settings = DeliverySettings.from_config(config)
    assert (settings.max_attempts, settings.backoff_base, settings.backoff_cap) == (8, 30, 3600)
    assert settings.poll_interval == 1


def test_an_smtp_url_selects_smtp(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_SMTP_URL", "smtp://127.0.0.1:1025")
    assert create_app().config["MAIL_TRANSPORT"] == "smtp"


def test_the_mailbox_can_be_chosen_in_development_even_with_smtp(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_SMTP_URL", "smtp://127.0.0.1:1025")
    monkeypatch.setenv("RECOVERY_MAIL_TRANSPORT", "mailbox")
    assert create_app().config["MAIL_TRANSPORT"] == "mailbox"


def test_production_without_smtp_refuses_to_start(production):
    with pytest.raises(ConfigError, match="RECOVERY_SMTP_URL: is required in production"):
        create_app()


def test_production_refuses_the_mailbox_even_when_asked(production, monkeypatch):
    monkeypatch.setenv("RECOVERY_SMTP_URL", "smtp://mail.example.com")
    monkeypatch.setenv("RECOVERY_MAIL_TRANSPORT", "mailbox")
    with pytest.raises(ConfigError, match="RECOVERY_SMTP_URL"):
        create_app()


def test_production_with_smtp_starts(production, monkeypatch):
    monkeypatch.setenv("RECOVERY_SMTP_URL", PASSWORD_URL)
    assert create_app().config["MAIL_TRANSPORT"] == "smtp"


def test_the_settings_never_print_secrets(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_SMTP_URL", PASSWORD_URL)
    monkeypatch.setenv("RECOVERY_WEBHOOK_URL", "https://shop.example/hooks")
    monkeypatch.setenv("RECOVERY_WEBHOOK_SECRET", SECRET)
    settings = DeliverySettings.from_config(create_app().config)
    assert "hunter2" not in repr(settings)
    assert SECRET not in repr(settings)


def test_webhooks_need_a_secret(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_WEBHOOK_URL", "https://shop.example/hooks")
    with pytest.raises(ConfigError, match="RECOVERY_WEBHOOK_SECRET: is required when"):
        create_app()
    monkeypatch.setenv("RECOVERY_WEBHOOK_SECRET", SECRET)
    config = create_app().config
    assert (config["WEBHOOK_URL"], config["WEBHOOK_SECRET"]) == (
        "https://shop.example/hooks",
        SECRET,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "RECOVERY_SMTP_URL",
            "http://mail.example.com",
            "RECOVERY_SMTP_URL: must start with smtp://",
        ),
        (
            "RECOVERY_SMTP_URL",
            "smtps://u:hunter2-secret@h?starttls=true",
            "RECOVERY_SMTP_URL: smtps://",
        ),
        (
            "RECOVERY_MAIL_TRANSPORT",
            "pigeon",
            "RECOVERY_MAIL_TRANSPORT: must be one of smtp, mailbox",
        ),
        ("RECOVERY_MAIL_TRANSPORT", "smtp", "RECOVERY_SMTP_URL: is required when"),
        ("RECOVERY_MAIL_FROM", "nobody", "RECOVERY_MAIL_FROM: must be one address"),
        (
            "RECOVERY_MAIL_FROM",
            "a@x.example, b@x.example",
            "RECOVERY_MAIL_FROM: must be one address",
        ),
        (
            "RECOVERY_WEBHOOK_URL",
            "shop.example/hooks?token=t0ps3cret",
            "RECOVERY_WEBHOOK_URL: must be",
        ),
        (
            "RECOVERY_WEBHOOK_SECRET",
            "s3cret-not-whsec",
            "RECOVERY_WEBHOOK_SECRET: must start with whsec_",
        ),
        (
            "RECOVERY_WEBHOOK_SECRET",
            "whsec_QUJDRA==",
            "RECOVERY_WEBHOOK_SECRET: must hold at least 24",
        ),
        ("RECOVERY_OUTBOX_MAX_ATTEMPTS", "0", "RECOVERY_OUTBOX_MAX_ATTEMPTS: must be from 1 to"),
        ("RECOVERY_OUTBOX_BACKOFF_BASE", "soon", "RECOVERY_OUTBOX_BACKOFF_BASE: must be a whole"),
        ("RECOVERY_OUTBOX_BACKOFF_CAP", "-1", "RECOVERY_OUTBOX_BACKOFF_CAP: must be from 1 to"),
        (
            "RECOVERY_OUTBOX_POLL_INTERVAL",
            "0",
            "RECOVERY_OUTBOX_POLL_INTERVAL: must be more than 0",
        ),
    ],
)
def test_bad_delivery_settings_stop_start_up(instance, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        create_app()
    assert str(caught.value).startswith(message)
    for secret in ("hunter2-secret", "t0ps3cret", "s3cret-not-whsec"):
        assert secret not in str(caught.value)

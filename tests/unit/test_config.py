from pathlib import Path

import pytest

from recovery import create_app
from recovery.config import ConfigError
from recovery.counters import MemoryCounters
from recovery.extensions import limiter


def test_defaults_are_embedded(instance):
    app = create_app()
    assert app.config["DATABASE_URL"] == f"sqlite:///{instance / 'recovery.db'}"
    # memory:// is this process's counters (recovery.counters), not the limits library's.
    assert app.config["RATELIMIT_STORAGE_URI"] == "recovery-memory://"
    assert app.config["PUBLIC_URL"] == "http://127.0.0.1:8000"
    assert app.config["ENV"] == "development"
    assert isinstance(limiter.storage, MemoryCounters)


def test_development_key_is_generated_once_and_kept(instance, caplog):
    first = create_app().config["SECRET_KEYS"]
    second = create_app().config["SECRET_KEYS"]
    assert first == second
    assert len(first[0]) >= 32
    assert (instance / "secret_keys").stat().st_mode & 0o077 == 0
    assert "development secret key" in caplog.text


def test_environment_variables_override_defaults(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_PUBLIC_URL", "https://help.example.com/")
    monkeypatch.setenv("RECOVERY_SECRET_KEYS", "k" * 32 + ", " + "o" * 32)
    monkeypatch.setenv("RECOVERY_DATABASE_URL", "postgresql://u@db.example/recovery")
    monkeypatch.setenv("RECOVERY_IMPORT_BATCH_SIZE", "250")
    app = create_app()
    assert app.config["PUBLIC_URL"] == "https://help.example.com"
    assert app.config["SECRET_KEYS"] == ["k" * 32, "o" * 32]
    assert app.config["SECRET_KEY"] == "k" * 32  # signing uses the newest key
    assert app.config["DATABASE_URL"] == "postgresql+psycopg://u@db.example/recovery"
    assert app.config["IMPORT_BATCH_SIZE"] == 250


def test_import_workers_default_to_the_cpus_at_most_four(instance, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert create_app().config["IMPORT_WORKERS"] == 4
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert create_app().config["IMPORT_WORKERS"] == 1
    monkeypatch.setenv("RECOVERY_IMPORT_WORKERS", "0")
    assert create_app().config["IMPORT_WORKERS"] == 0


def test_a_test_mapping_wins_over_the_environment(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_API_RATE_LIMIT", "10 per minute")
    assert create_app({"API_RATE_LIMIT": "5 per second"}).config["API_RATE_LIMIT"] == "5 per second"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RECOVERY_ENV", "staging", "RECOVERY_ENV: must be one of development, production"),
        ("RECOVERY_DATABASE_URL", "mysql://x/y", "RECOVERY_DATABASE_URL: must be a sqlite"),
        ("RECOVERY_RATELIMIT_STORAGE_URI", "memcached://x", "RECOVERY_RATELIMIT_STORAGE_URI"),
        ("RECOVERY_RATELIMIT_KEY_PREFIX", "a b", "RECOVERY_RATELIMIT_KEY_PREFIX: must be 1 to"),
        ("RECOVERY_RATELIMIT_KEY_PREFIX", " ", "RECOVERY_RATELIMIT_KEY_PREFIX: must be 1 to"),
        ("RECOVERY_PUBLIC_URL", "example.com", "RECOVERY_PUBLIC_URL: must be an absolute"),
        ("RECOVERY_SECRET_KEYS", "short", "RECOVERY_SECRET_KEYS: key number 1 is shorter"),
        ("RECOVERY_SECRET_KEYS", "k" * 32 + ",", "RECOVERY_SECRET_KEYS: has an empty key"),
        ("RECOVERY_IMPORT_BATCH_SIZE", "0", "RECOVERY_IMPORT_BATCH_SIZE: must be from 1 to"),
        ("RECOVERY_IMPORT_BATCH_SIZE", "1.9", "RECOVERY_IMPORT_BATCH_SIZE: must be a whole"),
        ("RECOVERY_IMPORT_BATCH_SIZE", "true", "RECOVERY_IMPORT_BATCH_SIZE: must be a whole"),
        ("RECOVERY_MAX_JSON_BYTES", "Infinity", "RECOVERY_MAX_JSON_BYTES: must be a whole"),
        ("RECOVERY_FLOW_TTL_MINUTES", "99999999999", "RECOVERY_FLOW_TTL_MINUTES: must be from 1"),
        ("RECOVERY_OUTBOX_POLL_INTERVAL", "1e300", "RECOVERY_OUTBOX_POLL_INTERVAL: must be more"),
        ("RECOVERY_OUTBOX_BACKOFF_BASE", "7200", "RECOVERY_OUTBOX_BACKOFF_CAP: must not be less"),
        ("RECOVERY_TRUSTED_PROXIES", "-1", "RECOVERY_TRUSTED_PROXIES: must be from 0 to 10"),
        (
            "RECOVERY_RESET_RATE_LIMIT_PER_IP",
            "0/minute",
            "RECOVERY_RESET_RATE_LIMIT_PER_IP: allows",
        ),
        ("RECOVERY_IMPORT_BATCH_SIZE", "lots", "RECOVERY_IMPORT_BATCH_SIZE: must be a whole"),
        ("RECOVERY_IMPORT_WORKERS", "-1", "RECOVERY_IMPORT_WORKERS: must be from 0 to 64"),
        ("RECOVERY_IMPORT_WORKERS", "all", "RECOVERY_IMPORT_WORKERS: must be a whole"),
        ("RECOVERY_API_RATE_LIMIT", "fast", "RECOVERY_API_RATE_LIMIT: is not a rate limit"),
        ("RECOVERY_DATABASE_ECHO", "maybe", "RECOVERY_DATABASE_ECHO: must be true or false"),
        ("RECOVERY_RESET_LINK_MINUTES", "0", "RECOVERY_RESET_LINK_MINUTES: must be from 1 to"),
        (
            "RECOVERY_EMAIL_CODE_MINUTES",
            "1441",
            "RECOVERY_EMAIL_CODE_MINUTES: must be from 1 to 1440",
        ),
        ("RECOVERY_RESET_MAILS_PER_ACCOUNT_PER_HOUR", "0", "RECOVERY_RESET_MAILS_PER_ACCOUNT"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_variable(
    instance, monkeypatch, variable, value, message
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        create_app()
    assert str(caught.value).startswith(message)


def test_production_refuses_development_secrets(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_ENV", "production")
    monkeypatch.setenv("RECOVERY_PUBLIC_URL", "https://help.example.com")
    with pytest.raises(ConfigError, match="RECOVERY_SECRET_KEYS: is required in production"):
        create_app()
    assert not (instance / "secret_keys").exists()


def test_production_needs_https(instance, monkeypatch):
    monkeypatch.setenv("RECOVERY_ENV", "production")
    monkeypatch.setenv("RECOVERY_SMTP_URL", "smtp://mail.example.com:587?starttls=true")
    monkeypatch.setenv("RECOVERY_SECRET_KEYS", "k" * 40)
    with pytest.raises(ConfigError, match="RECOVERY_PUBLIC_URL: must be https in production"):
        create_app()
    monkeypatch.setenv("RECOVERY_PUBLIC_URL", "https://help.example.com")
    monkeypatch.setenv("RECOVERY_SMTP_URL", "smtp://mail.example.com:587?starttls=true")
    assert create_app().config["ENV"] == "production"


def _production(monkeypatch):
    monkeypatch.setenv("RECOVERY_ENV", "production")
    monkeypatch.setenv("RECOVERY_PUBLIC_URL", "https://help.example.com")
    monkeypatch.setenv("RECOVERY_SMTP_URL", "smtp://mail.example.com:587?starttls=true")
    monkeypatch.setenv("RECOVERY_SECRET_KEYS", "k" * 40)


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("RECOVERY_RESET_RATE_LIMIT_PER_IDENTIFIER", "5 per minute", "20 per 1 day"),
        ("RECOVERY_RESET_RATE_LIMIT_PER_IDENTIFIER", "1 per second;20 per day", "5 per 1 minute"),
        ("RECOVERY_RESET_RATE_LIMIT_PER_IDENTIFIER", "6/minute;20/day", "5 per 1 minute"),
        ("RECOVERY_RESET_RATE_LIMIT_PER_IP", "21 per minute", "20 per 1 minute"),
        ("RECOVERY_RESET_RATE_LIMIT_PER_IP", "11 per 30 seconds", "20 per 1 minute"),
    ],
)
def test_production_refuses_rate_limits_looser_than_the_design(
    instance, monkeypatch, caplog, variable, value, allowed
):
    _production(monkeypatch)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        create_app()
    assert str(caught.value).startswith(f"{variable}: {value!r} allows more than {allowed}")
    monkeypatch.setenv("RECOVERY_ENV", "development")
    assert create_app().config[variable.removeprefix("RECOVERY_")] == value
    assert "allows more than" in caplog.text  # development starts, with a warning


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RECOVERY_RESET_RATE_LIMIT_PER_IDENTIFIER", "3 per minute;10 per day"),
        ("RECOVERY_RESET_RATE_LIMIT_PER_IDENTIFIER", "2 per 30 seconds;1 per 2 hours"),
        ("RECOVERY_RESET_RATE_LIMIT_PER_IP", "10 per 30 seconds"),
    ],
)
def test_production_accepts_stricter_rate_limits(instance, monkeypatch, variable, value):
    _production(monkeypatch)
    monkeypatch.setenv(variable, value)
    assert create_app().config[variable.removeprefix("RECOVERY_")] == value


def test_the_defaults_meet_the_design_in_production(instance, monkeypatch):
    _production(monkeypatch)
    config = create_app().config
    assert config["RESET_RATE_LIMIT_PER_IDENTIFIER"] == "5 per minute;20 per day"
    assert config["RESET_RATE_LIMIT_PER_IP"] == "20 per minute"
    assert (config["RESET_LINK_MINUTES"], config["EMAIL_CODE_MINUTES"]) == (60, 60)
    assert config["SMS_CODE_MINUTES"] == 10


def test_only_the_services_own_settings_come_from_the_environment(instance, monkeypatch, caplog):
    """RECOVERY_RATELIMIT_ENABLED=false must not switch Flask-Limiter off, and a typo is told."""
    monkeypatch.setenv("RECOVERY_RATELIMIT_ENABLED", "false")
    monkeypatch.setenv("RECOVERY_WTF_CSRF_ENABLED", "false")
    monkeypatch.setenv("RECOVERY_RETURN_TO_ORIGIN", "https://shop.example")  # the S is missing
    app = create_app()
    assert app.config.get("RATELIMIT_ENABLED", True) is True
    assert app.config.get("WTF_CSRF_ENABLED", True) is True
    assert "RECOVERY_RETURN_TO_ORIGIN is not a setting of this service; ignored" in caplog.text


@pytest.mark.parametrize(("proxies", "seen"), [("0", "10.0.0.1"), ("1", "203.0.113.9")])
def test_the_clients_address_comes_from_trusted_proxies_only(instance, monkeypatch, proxies, seen):
    monkeypatch.setenv("RECOVERY_TRUSTED_PROXIES", proxies)
    app = create_app()
    addresses = []

    @app.get("/where")
    def where():
        from flask import request

        addresses.append(request.remote_addr)
        return ""

    app.test_client().get(
        "/where",
        headers={"X-Forwarded-For": "203.0.113.9"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert addresses == [seen]


def test_the_command_names_a_bad_setting_without_a_traceback(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    command = Path(sys.executable).parent / "recovery"
    environment = {
        **os.environ,
        "RECOVERY_PUBLIC_URL": "ftp://x",
        "RECOVERY_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "RECOVERY_SECRET_KEYS": "k" * 40,
    }
    done = subprocess.run(
        [str(command), "api-client", "list"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Error: RECOVERY_PUBLIC_URL: must be an absolute http(s) URL, got 'ftp://x'"
    )


def _example_secret_keys():
    """The ``RECOVERY_SECRET_KEYS`` value .env.example shows: published, so anyone has it."""
    example = Path(__file__).resolve().parents[2] / ".env.example"
    (line,) = [line for line in example.read_text().splitlines() if "RECOVERY_SECRET_KEYS=" in line]
    return line.split("=", 1)[1].strip()


def test_production_refuses_the_example_secret_keys(instance, monkeypatch, caplog):
    _production(monkeypatch)
    example = _example_secret_keys()
    monkeypatch.setenv("RECOVERY_SECRET_KEYS", example)
    with pytest.raises(ConfigError) as caught:
        create_app()
    message = str(caught.value)
    assert message.startswith("RECOVERY_SECRET_KEYS: key number 1 is an example")
    assert "\n" not in message
    assert not any(key in message for key in example.split(","))  # a key is never echoed
    monkeypatch.setenv("RECOVERY_ENV", "development")
    assert create_app().config["SECRET_KEYS"] == example.split(",")
    assert "RECOVERY_SECRET_KEYS: key number 1 is an example" in caplog.text


@pytest.mark.parametrize("index", [0, 1])
def test_production_refuses_an_example_key_behind_a_real_one(instance, monkeypatch, index):
    _production(monkeypatch)
    example = _example_secret_keys().split(",")[index]
    monkeypatch.setenv("RECOVERY_SECRET_KEYS", "k" * 40 + "," + example)
    with pytest.raises(ConfigError, match="RECOVERY_SECRET_KEYS: key number 2 is an example"):
        create_app()

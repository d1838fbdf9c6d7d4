"""Configuration: embedded defaults, then ``RECOVERY_*`` environment variables, then a test mapping.

Everything is validated once, at start-up, into typed values on ``app.config``. A bad value stops the
service with a message that names the environment variable, so an operator never has to guess.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Config, Flask
from limits import RateLimitItem, parse_many

from recovery import counters

log = logging.getLogger(__name__)

PREFIX = "RECOVERY"
ENVIRONMENTS = ("development", "production")
DEV_SECRET_FILE = "secret_keys"  # noqa: S105 - a file name, not a secret
MIN_SECRET_LENGTH = 32
#: The signing keys .env.example shows. They are published, so whoever has read it could sign
#: reset links and tickets: production refuses them as it refuses running without keys.
EXAMPLE_SECRET_KEYS = frozenset(
    ("new-key-at-least-32-characters-long", "older-key-at-least-32-characters-long")
)

#: Defaults for every setting. ``None`` means "derived at start-up" (see ``_derive_defaults``).
DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "DATABASE_URL": None,  # sqlite file under the instance folder
    "DATABASE_ECHO": False,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_KEY_PREFIX": "recovery",  # before every counter's key: deployments sharing one Redis
    "SECRET_KEYS": None,  # generated and kept under the instance folder in development
    "PUBLIC_URL": "http://127.0.0.1:8000",
    "API_RATE_LIMIT": "1200 per minute",
    "IMPORT_BATCH_SIZE": 5000,  # per-batch statements and commits amortised; bench: 2000 was 4-8% slower
    "IMPORT_WORKERS": None,  # processes validating import lines; min(CPUs, 4), 0 = in-process
    "MAX_JSON_BYTES": 1024 * 1024,
    "TRUSTED_PROXIES": 0,  # proxies in front that set X-Forwarded-For (the client's address)
    # delivery (outbox)
    "SMTP_URL": None,  # smtp://user:password@host:port[?starttls=true] or smtps://...
    "MAIL_TRANSPORT": None,  # smtp when SMTP_URL is set, else the development mailbox
    "MAIL_FROM": "Account help <no-reply@localhost>",
    "WEBHOOK_URL": None,  # unset: no webhook rows are written at all
    "WEBHOOK_SECRET": None,  # whsec_ + base64; required when WEBHOOK_URL is set
    "OUTBOX_MAX_ATTEMPTS": 8,
    "OUTBOX_BACKOFF_BASE": 30,  # seconds; after n failures the next try waits base * 2**n, capped
    "OUTBOX_BACKOFF_CAP": 3600,  # seconds
    "OUTBOX_POLL_INTERVAL": 1,  # seconds the worker waits when nothing is due (a reset waits on it)
    # recovery flows
    "FLOW_TTL_MINUTES": 60,
    "RETURN_TO_ORIGINS": "",  # comma separated origins a flow may send the browser back to
    "DEFAULT_RETURN_TO": None,  # where a finished flow goes otherwise; default PUBLIC_URL + /recover/done
    "UNKNOWN_ADDRESS_MAIL": True,  # tell an address without an account how else to get in
    "RESET_RATE_LIMIT_PER_IDENTIFIER": "5 per minute;20 per day",
    "RESET_RATE_LIMIT_PER_IP": "20 per minute",
    "VERIFY_RATE_LIMIT_PER_FLOW": "10 per minute",
    "RESET_MAILS_PER_ACCOUNT_PER_HOUR": 10,  # more requests for one account send nothing more
    # lifetimes of the secrets (DESIGN §5.2 defaults)
    "RESET_LINK_MINUTES": 60,
    "EMAIL_CODE_MINUTES": 60,
    "SMS_CODE_MINUTES": 10,
}

#: DESIGN §5.3: production refuses limits looser than these (development only warns).
RATE_LIMIT_FLOORS = {
    "RESET_RATE_LIMIT_PER_IDENTIFIER": "5 per minute;20 per day",
    "RESET_RATE_LIMIT_PER_IP": "20 per minute",
}
#: The longest a reset link or code may live: a secret in a mailbox must not outlive the day.
MAX_SECRET_MINUTES = 24 * 60


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the environment variable."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{PREFIX}_{key}: {problem}")
        self.key = key


def load(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``overrides``; then validate it."""
    app.config.update(DEFAULTS)
    # Only our settings come from the environment: a RECOVERY_ variable must not reach Flask's or
    # an extension's own (RECOVERY_RATELIMIT_ENABLED=false, RECOVERY_WTF_CSRF_ENABLED=false).
    found = Config(app.root_path)
    found.from_prefixed_env(PREFIX)
    for key, value in found.items():
        if key in DEFAULTS:
            app.config[key] = value
        elif not key.startswith("TEST_"):  # the test suite's own (RECOVERY_TEST_DATABASE_URL)
            log.warning("%s_%s is not a setting of this service; ignored", PREFIX, key)
    if overrides:
        app.config.update(overrides)
    for key, check in _CHECKS.items():
        app.config[key] = check(app, app.config.get(key))
    app.config["SECRET_KEY"] = app.config["SECRET_KEYS"][0]


def _env(app: Flask, value: Any) -> str:
    if value not in ENVIRONMENTS:
        raise ConfigError("ENV", f"must be one of {', '.join(ENVIRONMENTS)}, got {value!r}")
    return str(value)


def _database_url(app: Flask, value: Any) -> str:
    if value is None:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(app.instance_path) / 'recovery.db'}"
    url = str(value).strip()
    scheme = urlsplit(url).scheme
    # SQLAlchemy's "postgresql://" means psycopg2; we ship psycopg 3, so accept both spellings.
    if scheme in ("postgres", "postgresql"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    elif not (scheme.startswith("sqlite") or scheme.startswith("postgresql+")):
        raise ConfigError("DATABASE_URL", "must be a sqlite:/// or postgresql:// URL")
    return url


def _flag(key: str) -> Callable[[Flask, Any], bool]:
    def check(app: Flask, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(key, f"must be true or false, got {value!r}")

    return check


def _whole_number(key: str, minimum: int, maximum: int) -> Callable[[Flask, Any], int]:
    """A whole number from ``minimum`` to ``maximum``: ``8`` or ``"8"``, not ``1.9``, ``true`` or
    ``Infinity`` (the environment's values arrive parsed as JSON)."""

    def check(app: Flask, value: Any) -> int:
        number = _whole(key, value)
        if not minimum <= number <= maximum:
            raise ConfigError(key, f"must be from {minimum} to {maximum}, got {number}")
        return number

    return check


def _positive_int(key: str, maximum: int) -> Callable[[Flask, Any], int]:
    return _whole_number(key, 1, maximum)


def _whole(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ConfigError(key, f"must be a whole number, got {value!r}")


#: The most processes an import validates lines in by default.
MAX_IMPORT_WORKERS = 4


def _import_workers(app: Flask, value: Any) -> int:
    if _unset(value):
        return min(os.cpu_count() or 1, MAX_IMPORT_WORKERS)
    return _whole_number("IMPORT_WORKERS", 0, 64)(app, value)


def _rate_limit(key: str) -> Callable[[Flask, Any], str]:
    def check(app: Flask, value: Any) -> str:
        try:
            items = parse_many(str(value))
        except ValueError:
            raise ConfigError(
                key, f"is not a rate limit such as '5 per minute': {value!r}"
            ) from None
        if any(item.amount < 1 for item in items):
            raise ConfigError(key, f"allows nothing at all: {value!r}")
        floor = RATE_LIMIT_FLOORS.get(key)
        looser = [f for f in parse_many(floor) if not _holds(items, f)] if floor else []
        if looser:
            problem = f"{value!r} allows more than {looser[0]} (DESIGN §5.3 floor: {floor})"
            if app.config["ENV"] == "production":
                raise ConfigError(key, problem)
            log.warning("%s_%s: %s", PREFIX, key, problem)
        return str(value)

    return check


def _holds(items: list[RateLimitItem], floor: RateLimitItem) -> bool:
    """Some item of ``items`` admits no more requests than ``floor`` in any of its windows: a
    shorter window repeats, so ``a per w`` admits ``a * ceil(W / w)`` in a window ``W``."""
    window = floor.get_expiry()
    return any(item.amount * -(-window // item.get_expiry()) <= floor.amount for item in items)


def _minutes(key: str) -> Callable[[Flask, Any], int]:
    """A secret's lifetime: at most a day (``MAX_SECRET_MINUTES``)."""
    return _positive_int(key, MAX_SECRET_MINUTES)


#: The longest an outbox retry waits: a week.
MAX_BACKOFF_SECONDS = 7 * 24 * 3600


def _backoff_cap(app: Flask, value: Any) -> int:
    cap = _positive_int("OUTBOX_BACKOFF_CAP", MAX_BACKOFF_SECONDS)(app, value)
    if cap < app.config["OUTBOX_BACKOFF_BASE"]:
        raise ConfigError(
            "OUTBOX_BACKOFF_CAP", "must not be less than RECOVERY_OUTBOX_BACKOFF_BASE"
        )
    return cap


def _storage_uri(app: Flask, value: Any) -> str:
    scheme = urlsplit(str(value)).scheme
    if scheme not in ("memory", "redis", "rediss", "redis+unix"):
        raise ConfigError("RATELIMIT_STORAGE_URI", "must be memory:// or a redis:// URL")
    if scheme == "memory" and app.config["ENV"] == "production":
        # Limits kept in one process are per process: with several workers they multiply.
        log.warning("%s_RATELIMIT_STORAGE_URI is memory:// in production", PREFIX)
    if scheme == "memory":
        # Not the limits library's memory storage: ours expires without scanning every key.
        return counters.URI
    return str(value)


def _key_prefix(app: Flask, value: Any) -> str:
    prefix = str(value or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", prefix):
        raise ConfigError("RATELIMIT_KEY_PREFIX", "must be 1 to 64 letters, digits, '.', '_', '-'")
    return prefix


def _public_url(app: Flask, value: Any) -> str:
    parts = urlsplit(str(value or ""))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("PUBLIC_URL", f"must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ConfigError("PUBLIC_URL", "must not have a query or fragment")
    if app.config["ENV"] == "production" and parts.scheme != "https":
        raise ConfigError("PUBLIC_URL", "must be https in production")
    return str(value).rstrip("/")


def _secret_keys(app: Flask, value: Any) -> list[str]:
    if value is None or value == "":
        if app.config["ENV"] == "production":
            raise ConfigError(
                "SECRET_KEYS", "is required in production (comma separated, newest first)"
            )
        return _development_keys(app)
    keys = [key.strip() for key in (value if isinstance(value, list) else str(value).split(","))]
    if not all(keys):
        raise ConfigError("SECRET_KEYS", "has an empty key (check for a stray comma)")
    short = [i for i, key in enumerate(keys, 1) if len(key) < MIN_SECRET_LENGTH]
    if short:
        raise ConfigError(
            "SECRET_KEYS",
            f"key number {short[0]} is shorter than {MIN_SECRET_LENGTH} characters",
        )
    examples = [i for i, key in enumerate(keys, 1) if key in EXAMPLE_SECRET_KEYS]
    if examples:
        problem = (
            f"key number {examples[0]} is an example from .env.example; make a key with "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
        if app.config["ENV"] == "production":
            raise ConfigError("SECRET_KEYS", problem)
        log.warning("%s_SECRET_KEYS: %s", PREFIX, problem)
    return keys


def _development_keys(app: Flask) -> list[str]:
    """A key generated once and kept in the instance folder, so links survive a restart."""
    path = Path(app.instance_path) / DEV_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48) + "\n")
        os.chmod(path, 0o600)
    log.warning(
        "Using the development secret key from %s; set %s_SECRET_KEYS outside development",
        path,
        PREFIX,
    )
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower-cased; ``None`` otherwise."""
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number or out of range, a bracketed non-address
        return None
    if parts.scheme not in ("http", "https") or not hostname:
        return None
    return f"{parts.scheme}://{hostname.lower()}{f':{port}' if port else ''}"


def _origins(app: Flask, value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    origins = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        origin = origin_of(item)
        if origin is None or origin != item.rstrip("/").lower():
            raise ConfigError(
                "RETURN_TO_ORIGINS", f"{item!r} is not an origin like https://shop.example"
            )
        origins.append(origin)
    return origins


def _default_return_to(app: Flask, value: Any) -> str:
    if value in (None, ""):
        return f"{app.config['PUBLIC_URL']}/recover/done"
    if origin_of(str(value)) is None:
        raise ConfigError("DEFAULT_RETURN_TO", f"must be an absolute http(s) URL, got {value!r}")
    return str(value)


# delivery (outbox)

MAIL_TRANSPORTS = ("smtp", "mailbox")
#: The Standard Webhooks specification asks for secrets of 24 to 64 random bytes.
MIN_WEBHOOK_SECRET_BYTES = 24


def _unset(value: Any) -> bool:
    return value is None or str(value).strip() == ""


def _positive_number(key: str, maximum: float) -> Callable[[Flask, Any], float]:
    def check(app: Flask, value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a number, got {value!r}") from None
        if isinstance(value, bool) or not 0 < number <= maximum:
            raise ConfigError(key, f"must be more than 0 and at most {maximum}, got {value!r}")
        return number

    return check


def _smtp_url(app: Flask, value: Any) -> str | None:
    from providers.mail import parse_smtp_url

    if _unset(value):
        return None
    try:
        parse_smtp_url(str(value))
    except ValueError as exc:
        # The URL may hold the SMTP password: describe the problem, never echo the value.
        raise ConfigError(
            "SMTP_URL", f"{exc} (example: smtp://user:password@mail.example.com:587?starttls=true)"
        ) from None
    return str(value).strip()


def _mail_transport(app: Flask, value: Any) -> str:
    smtp_url = app.config["SMTP_URL"]
    transport = ("smtp" if smtp_url else "mailbox") if _unset(value) else str(value).strip().lower()
    if transport not in MAIL_TRANSPORTS:
        raise ConfigError("MAIL_TRANSPORT", f"must be one of {', '.join(MAIL_TRANSPORTS)}")
    if transport == "smtp" and not smtp_url:
        raise ConfigError("SMTP_URL", "is required when RECOVERY_MAIL_TRANSPORT is smtp")
    if transport == "mailbox" and app.config["ENV"] == "production":
        # The development mailbox shows reset links to whoever opens it; in production mail must
        # leave the machine.
        raise ConfigError("SMTP_URL", "is required in production (the mailbox is for development)")
    return transport


def _mail_from(app: Flask, value: Any) -> str:
    from email.errors import HeaderParseError
    from email.policy import default as policy

    text = str(value or "").strip()
    addresses: tuple[Any, ...]
    try:
        header = policy.header_factory("From", text)
        addresses = getattr(header, "addresses", ())
    except (HeaderParseError, IndexError, ValueError):
        addresses = ()
    if "\r" in text or "\n" in text or len(addresses) != 1 or not addresses[0].domain:
        raise ConfigError(
            "MAIL_FROM", f"must be one address such as 'Shop <help@shop.example>', got {value!r}"
        )
    return text


def _webhook_url(app: Flask, value: Any) -> str | None:
    if _unset(value):
        return None
    url = str(value).strip()
    parts = urlsplit(url)
    # Never echo the URL: endpoints often carry a token in it.
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("WEBHOOK_URL", "must be an absolute http(s) URL")
    if parts.scheme == "http" and app.config["ENV"] == "production":
        log.warning("%s_WEBHOOK_URL is plain http in production", PREFIX)
    return url


def _webhook_secret(app: Flask, value: Any) -> str | None:
    from providers.webhooks import decode_secret

    if _unset(value):
        if app.config["WEBHOOK_URL"]:
            raise ConfigError("WEBHOOK_SECRET", "is required when RECOVERY_WEBHOOK_URL is set")
        return None
    secret = str(value).strip()
    try:
        key = decode_secret(secret)
    except ValueError as exc:
        raise ConfigError("WEBHOOK_SECRET", str(exc)) from None
    if len(key) < MIN_WEBHOOK_SECRET_BYTES:
        raise ConfigError(
            "WEBHOOK_SECRET", f"must hold at least {MIN_WEBHOOK_SECRET_BYTES} random bytes"
        )
    return secret


#: Validation order matters: ENV first, because other checks depend on it.
_CHECKS: dict[str, Callable[[Flask, Any], Any]] = {
    "ENV": _env,
    "DATABASE_URL": _database_url,
    "DATABASE_ECHO": _flag("DATABASE_ECHO"),
    "RATELIMIT_STORAGE_URI": _storage_uri,
    "RATELIMIT_KEY_PREFIX": _key_prefix,
    "SECRET_KEYS": _secret_keys,
    "PUBLIC_URL": _public_url,
    "API_RATE_LIMIT": _rate_limit("API_RATE_LIMIT"),
    "IMPORT_BATCH_SIZE": _positive_int("IMPORT_BATCH_SIZE", 100_000),
    "IMPORT_WORKERS": _import_workers,
    "MAX_JSON_BYTES": _positive_int("MAX_JSON_BYTES", 64 * 1024 * 1024),
    "TRUSTED_PROXIES": _whole_number("TRUSTED_PROXIES", 0, 10),
    # delivery (outbox); SMTP_URL before MAIL_TRANSPORT, WEBHOOK_URL before WEBHOOK_SECRET
    "SMTP_URL": _smtp_url,
    "MAIL_TRANSPORT": _mail_transport,
    "MAIL_FROM": _mail_from,
    "WEBHOOK_URL": _webhook_url,
    "WEBHOOK_SECRET": _webhook_secret,
    "OUTBOX_MAX_ATTEMPTS": _positive_int("OUTBOX_MAX_ATTEMPTS", 100),
    "OUTBOX_BACKOFF_BASE": _positive_int("OUTBOX_BACKOFF_BASE", MAX_BACKOFF_SECONDS),
    "OUTBOX_BACKOFF_CAP": _backoff_cap,
    "OUTBOX_POLL_INTERVAL": _positive_number("OUTBOX_POLL_INTERVAL", 3600),
    # recovery flows
    "FLOW_TTL_MINUTES": _positive_int("FLOW_TTL_MINUTES", MAX_SECRET_MINUTES),
    "RETURN_TO_ORIGINS": _origins,
    "DEFAULT_RETURN_TO": _default_return_to,
    "UNKNOWN_ADDRESS_MAIL": _flag("UNKNOWN_ADDRESS_MAIL"),
    "RESET_RATE_LIMIT_PER_IDENTIFIER": _rate_limit("RESET_RATE_LIMIT_PER_IDENTIFIER"),
    "RESET_RATE_LIMIT_PER_IP": _rate_limit("RESET_RATE_LIMIT_PER_IP"),
    "VERIFY_RATE_LIMIT_PER_FLOW": _rate_limit("VERIFY_RATE_LIMIT_PER_FLOW"),
    "RESET_MAILS_PER_ACCOUNT_PER_HOUR": _positive_int("RESET_MAILS_PER_ACCOUNT_PER_HOUR", 1000),
    "RESET_LINK_MINUTES": _minutes("RESET_LINK_MINUTES"),
    "EMAIL_CODE_MINUTES": _minutes("EMAIL_CODE_MINUTES"),
    "SMS_CODE_MINUTES": _minutes("SMS_CODE_MINUTES"),
}

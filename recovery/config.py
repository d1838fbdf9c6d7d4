"""Configuration: embedded defaults, then ``RECOVERY_*`` environment variables, then a test mapping.

Everything is validated once, at start-up, into typed values on ``app.config``. A bad value stops the
service with a message that names the environment variable, so an operator never has to guess.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from limits import parse_many

log = logging.getLogger(__name__)

PREFIX = "RECOVERY"
ENVIRONMENTS = ("development", "production")
DEV_SECRET_FILE = "secret_keys"  # noqa: S105 - a file name, not a secret
MIN_SECRET_LENGTH = 32

#: Defaults for every setting. ``None`` means "derived at start-up" (see ``_derive_defaults``).
DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "DATABASE_URL": None,  # sqlite file under the instance folder
    "DATABASE_ECHO": False,
    "RATELIMIT_STORAGE_URI": "memory://",
    "SECRET_KEYS": None,  # generated and kept under the instance folder in development
    "PUBLIC_URL": "http://127.0.0.1:8000",
    "API_RATE_LIMIT": "1200 per minute",
    "IMPORT_BATCH_SIZE": 1000,
    "MAX_JSON_BYTES": 1024 * 1024,
}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the environment variable."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{PREFIX}_{key}: {problem}")
        self.key = key


def load(app: Flask, overrides: Mapping[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``overrides``; then validate it."""
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env(PREFIX)
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


def _positive_int(key: str) -> Callable[[Flask, Any], int]:
    def check(app: Flask, value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a whole number, got {value!r}") from None
        if number <= 0:
            raise ConfigError(key, f"must be positive, got {number}")
        return number

    return check


def _rate_limit(key: str) -> Callable[[Flask, Any], str]:
    def check(app: Flask, value: Any) -> str:
        try:
            parse_many(str(value))
        except ValueError:
            raise ConfigError(
                key, f"is not a rate limit such as '5 per minute': {value!r}"
            ) from None
        return str(value)

    return check


def _storage_uri(app: Flask, value: Any) -> str:
    scheme = urlsplit(str(value)).scheme
    if scheme not in ("memory", "redis", "rediss", "redis+unix"):
        raise ConfigError("RATELIMIT_STORAGE_URI", "must be memory:// or a redis:// URL")
    if scheme == "memory" and app.config["ENV"] == "production":
        # Limits kept in one process are per process: with several workers they multiply.
        log.warning("%s_RATELIMIT_STORAGE_URI is memory:// in production", PREFIX)
    return str(value)


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


#: Validation order matters: ENV first, because other checks depend on it.
_CHECKS: dict[str, Callable[[Flask, Any], Any]] = {
    "ENV": _env,
    "DATABASE_URL": _database_url,
    "DATABASE_ECHO": _flag("DATABASE_ECHO"),
    "RATELIMIT_STORAGE_URI": _storage_uri,
    "SECRET_KEYS": _secret_keys,
    "PUBLIC_URL": _public_url,
    "API_RATE_LIMIT": _rate_limit("API_RATE_LIMIT"),
    "IMPORT_BATCH_SIZE": _positive_int("IMPORT_BATCH_SIZE"),
    "MAX_JSON_BYTES": _positive_int("MAX_JSON_BYTES"),
}

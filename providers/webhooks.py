"""Webhooks to the shop, signed the Standard Webhooks way (https://www.standardwebhooks.com).

Each request carries ``webhook-id`` (the same on every retry, so the receiver can drop duplicates),
``webhook-timestamp`` (seconds since the epoch at this attempt; receivers refuse old ones, which stops
replays) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` with the
shared secret). The secret is written ``whsec_`` + base64 of its bytes, as the specification says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Protocol

import httpx

from providers.errors import DeliveryError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the specification's marker, not a secret
#: Seconds for connecting and for the answer.
WEBHOOK_TIMEOUT = 10.0
#: 4xx answers that mean "later", not "never".
_RETRYABLE_4XX = frozenset({408, 429})


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """POST ``body`` with ``headers`` to ``url``; return when the receiver answered 2xx.

        Raises ``DeliveryError``: retryable for timeouts, connection errors, 5xx, 408 and 429 (and
        redirects, which we do not follow: a configuration fix makes the retry succeed); not retryable
        for other 4xx answers, which will not change by themselves.
        """
        ...


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret; ``ValueError`` (never echoing it) when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {SECRET_PREFIX} followed by base64") from None
    if not key:
        raise ValueError("is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,`` + base64(HMAC-SHA256(key, id.timestamp.body))."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header a Standard Webhooks request needs, for a JSON ``body``."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


class HttpWebhookSender:
    """Sends webhooks with httpx: no redirects followed, 10 s timeouts, one pooled client."""

    def __init__(
        self, *, timeout: float = WEBHOOK_TIMEOUT, transport: httpx.BaseTransport | None = None
    ):
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            headers={"user-agent": "recovery-webhooks/1"},
            transport=transport,
        )

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """See ``WebhookSender.post``. Errors name the status or the failure, never the URL."""
        try:
            response = self._client.post(url, content=body, headers=dict(headers))
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"webhook timed out ({type(exc).__name__})", retryable=True, unreachable=True
            ) from exc
        except httpx.HTTPError as exc:
            # Connection refused, reset, TLS failures: the endpoint may come back.
            raise DeliveryError(
                f"webhook failed ({type(exc).__name__})", retryable=True, unreachable=True
            ) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        retryable = not (400 <= status < 500) or status in _RETRYABLE_4XX
        raise DeliveryError(f"webhook answered HTTP {status}", retryable=retryable)

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

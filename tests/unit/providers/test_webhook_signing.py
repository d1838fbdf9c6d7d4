"""Standard Webhooks signing, checked against the specification's published example and its library."""

import base64
import datetime as dt
import hashlib
import hmac

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from providers.errors import DeliveryError
from providers.webhooks import HttpWebhookSender, decode_secret, sign, signed_headers

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'


def test_the_specifications_example_signature():
    assert (
        sign(SECRET, MSG_ID, TIMESTAMP, BODY) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_the_signature_is_hmac_sha256_of_id_timestamp_body_from_scratch():
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, f"{MSG_ID}.{TIMESTAMP}.".encode() + BODY, hashlib.sha256).digest()
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == "v1," + base64.b64encode(expected).decode()


def test_the_reference_library_signs_the_same():
    moment = dt.datetime.fromtimestamp(TIMESTAMP, dt.UTC)
    assert Webhook(SECRET).sign(MSG_ID, moment, BODY.decode()) == sign(
        SECRET, MSG_ID, TIMESTAMP, BODY
    )


def test_signed_headers_verify_with_the_reference_library():
    now = int(dt.datetime.now(dt.UTC).timestamp())
    headers = signed_headers(SECRET, "evt-1", now, BODY)
    assert headers["webhook-id"] == "evt-1"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(BODY, headers) == {"test": 2432232314}


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with whsec_"),
        ("whsec_not*base64!", "followed by base64"),
        ("whsec_", "is empty"),
    ],
)
def test_malformed_secrets_are_refused_without_being_echoed(secret, message):
    with pytest.raises(ValueError, match=message) as caught:
        decode_secret(secret)
    assert "MfKQ9r8" not in str(caught.value)
    assert "not*base64" not in str(caught.value)


def test_unpadded_base64_secrets_are_accepted():
    assert decode_secret("whsec_QUJDRA") == b"ABCD"


def _sender(handler):
    return HttpWebhookSender(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (301, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (409, False),
        (410, False),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_answers_map_to_retry_advice(status, retryable):
    sender = _sender(lambda request: httpx.Response(status))
    with pytest.raises(DeliveryError) as caught:
        sender.post("https://shop.example/hooks?token=secret-token", BODY, {})
    assert caught.value.retryable is retryable
    assert str(caught.value) == f"webhook answered HTTP {status}"


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(status):
    seen = []

    def handler(request):
        seen.append((request.method, request.headers["webhook-id"], request.content))
        return httpx.Response(status)

    _sender(handler).post("https://shop.example/hooks", BODY, {"webhook-id": "evt"})
    assert seen == [("POST", "evt", BODY)]


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectTimeout("slow"), httpx.ReadTimeout("slow"), httpx.ConnectError("refused")],
)
def test_timeouts_and_connection_errors_are_retryable_and_never_name_the_url(error):
    def handler(request):
        raise error

    with pytest.raises(DeliveryError) as caught:
        _sender(handler).post("https://shop.example/hooks?token=secret-token", BODY, {})
    assert caught.value.retryable
    assert "secret-token" not in str(caught.value)

"""Real local servers for delivery tests: an aiosmtpd SMTP server and a werkzeug HTTP receiver.

Everything listens on 127.0.0.1 only. The worker's clock is a ``Clock`` the test moves forward, so
backoff is tested without sleeping.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from providers.mail import MailboxTransport, SmtpTransport
from providers.webhooks import HttpWebhookSender
from recovery.db import db, utcnow
from recovery.outbox.mail import TEMPLATE_DIR, MailRenderer
from recovery.outbox.models import OutboxMessage
from recovery.outbox.services import OutboxService
from recovery.outbox.settings import DeliverySettings
from recovery.outbox.worker import Intake, TaskHandler, Worker

TEST_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "mail"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def free_port() -> int:
    # aiosmtpd's Controller(port=0) fails its own self-check, so pick a port first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def renderer() -> MailRenderer:
    """The package's layouts plus the tests' sample templates (``test_message``)."""
    return MailRenderer([TEST_TEMPLATES, TEMPLATE_DIR])


class Clock:
    """The real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


# -- SMTP -------------------------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps every message and refuses the recipients it is told to."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.refuse: dict[str, str] = {}
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        # A method, not a property: aiosmtpd calls inspect.getmembers() on the handler for every
        # connection, which would parse every stored message each time.
        return [
            email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[misc]
            for e in self.envelopes
        ]

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(
            success=(auth_data.login, auth_data.password) == (b"mailer", b"p@ss:w/rd")
        )


class SmtpServer:
    """An aiosmtpd server on a port chosen up front, so it can be stopped and started again."""

    def __init__(self, port: int | None = None, **options: Any) -> None:
        self.port = port or free_port()
        self.inbox = Inbox()
        self.options = options
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        if "authenticator" in self.options:
            self.options["authenticator"] = self.inbox.authenticate
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            # Else every connection asks socket.getfqdn(), which can take seconds without DNS.
            server_hostname="smtp.test",
            **self.options,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem), made with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """Trusts exactly the test certificate (and verifies the host name, as in production)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


# -- HTTP receiver ----------------------------------------------------------------------------------


class Receiver:
    """A werkzeug HTTP server in a thread that records each request and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 204
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/hooks/recovery"

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append((request.path, dict(request.headers), request.get_data()))
        return Response(status=self.status)(environ, start_response)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


# -- the service and the worker ---------------------------------------------------------------------


def settings(**changes: Any) -> DeliverySettings:
    base: dict[str, Any] = {
        "mail_from": "Shop help <help@shop.example>",
        "max_attempts": 4,
        "backoff_base": 10,
        "backoff_cap": 600,
    }
    return DeliverySettings(**(base | changes))


def outbox(delivery: DeliverySettings | None = None) -> OutboxService:
    return OutboxService(db.session, delivery or settings(), renderer())


def enqueue(count: int = 1, *, to: str = "anna@example.com", prefix: str = "test") -> None:
    """``count`` test messages, committed (the request boundary), keys ``prefix-0``, ``prefix-1``..."""
    service = outbox()
    for i in range(count):
        service.enqueue_mail(
            to,
            "test_message",
            "en",
            {
                "name": f"Anna {i}",
                "link": f"https://recovery.example.test/recover/reset?token=t{i}",
            },
            f"{prefix}-{i}",
        )
    db.session.commit()


def rows() -> list[OutboxMessage]:
    """Every outbox row as now stored (not as the test session remembers it)."""
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


class Workers:
    """Builds workers that share the test's database transaction and a test clock."""

    def __init__(self) -> None:
        self.clock = Clock()
        self._senders: list[HttpWebhookSender] = []

    def __call__(
        self,
        mail: Any = None,
        *,
        smtp: SmtpServer | None = None,
        webhooks: Any = None,
        intakes: Sequence[Intake] = (),
        tasks: Mapping[str, TaskHandler] | None = None,
        **changes: Any,
    ) -> Worker:
        if smtp is not None:
            mail = SmtpTransport(smtp.url, timeout=5, local_hostname="worker.test")
        if webhooks is None:
            webhooks = HttpWebhookSender(timeout=5)
            self._senders.append(webhooks)
        return Worker(
            db.sessions,
            mail or MailboxTransport(),
            webhooks,
            settings(**changes),
            intakes=intakes,
            tasks=tasks,
            clock=self.clock,
            jitter=lambda: 0.0,
        )

    def close(self) -> None:
        for sender in self._senders:
            sender.close()


@pytest.fixture
def make_worker(app: Any) -> Iterator[Workers]:
    workers = Workers()
    yield workers
    workers.close()

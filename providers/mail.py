"""Mail transports: SMTP for real delivery, the development mailbox for a laptop.

The outbox worker builds an ``email.message.EmailMessage`` and hands it to a ``MailTransport``; which
one is chosen by ``RECOVERY_MAIL_TRANSPORT`` (``smtp`` when ``RECOVERY_SMTP_URL`` is set, else
``mailbox`` in development; production refuses to start without SMTP).
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from providers.errors import DeliveryError

log = logging.getLogger(__name__)

#: Seconds for connecting and for each SMTP command; a slow server delays mail, never the worker.
SMTP_TIMEOUT = 10.0
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class MailTransport(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` over for delivery to its ``To`` address.

        Returns once the next hop accepted it. Raises ``DeliveryError`` otherwise, with
        ``retryable=False`` only when trying again cannot help (e.g. the recipient does not exist).
        """
        ...


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """What an SMTP URL says: ``smtp://user:pass@host:port?starttls=true`` or ``smtps://...``."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpSettings:
    """Parse an SMTP URL; ``ValueError`` (whose message never contains the URL) when it is malformed.

    ``smtp://`` is plain SMTP (port 25 unless given), upgraded with STARTTLS when ``?starttls=true``;
    ``smtps://`` is TLS from the first byte (port 465 unless given). User and password are
    percent-decoded, so a password may contain ``@`` or ``:`` written as ``%40`` and ``%3A``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must start with smtp:// or smtps://")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if not host:
        raise ValueError("has no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("must not have a path or fragment")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls"})
    if unknown:
        raise ValueError(f"has unknown parameters: {', '.join(unknown)}")
    starttls_value = query.get("starttls", ["false"])[-1].lower()
    if starttls_value not in _TRUE + _FALSE:
        raise ValueError("starttls must be true or false")
    starttls = starttls_value in _TRUE
    implicit_tls = parts.scheme == "smtps"
    if implicit_tls and starttls:
        raise ValueError("smtps:// is already TLS; starttls applies to smtp:// only")
    return SmtpSettings(
        host=host,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class SmtpTransport:
    """Delivery through an SMTP server, one connection per message.

    With ``smtps://`` or ``?starttls=true`` the server's certificate is verified against the system's
    trust store (``SSL_CERT_FILE`` points OpenSSL at a private CA) or against ``ssl_context``; a
    server that does not offer STARTTLS when it is required gets nothing, rather than mail in clear.
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = SMTP_TIMEOUT,
        local_hostname: str | None = None,
    ) -> None:
        self.settings = parse_smtp_url(url)
        self.timeout = timeout
        self._ssl_context = ssl_context
        # smtplib would look the name up (a reverse DNS query) on every connection.
        self._local_hostname = local_hostname or socket.getfqdn()

    def send(self, message: EmailMessage) -> None:
        """Send ``message`` over a new connection; see ``MailTransport.send``."""
        try:
            smtp = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP connection failed: {_describe(exc)}", retryable=True, unreachable=True
            ) from exc
        try:
            self._send(smtp, message)
        finally:
            # The message is accepted once DATA got its 250; a failing QUIT must not make us retry.
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.implicit_tls:
            return smtplib.SMTP_SSL(
                s.host,
                s.port,
                local_hostname=self._local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        return smtplib.SMTP(
            s.host, s.port, local_hostname=self._local_hostname, timeout=self.timeout
        )

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _send(self, smtp: smtplib.SMTP, message: EmailMessage) -> None:
        s = self.settings
        try:
            if s.starttls:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    # Never fall back to clear text when TLS was asked for (a downgrade attack
                    # strips the STARTTLS line); the server may be fixed before we give up.
                    raise DeliveryError("SMTP server does not offer STARTTLS", retryable=True)
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if s.username is not None:
                smtp.login(s.username, s.password or "")
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise DeliveryError(
                f"SMTP recipient refused ({', '.join(map(str, codes))})",
                retryable=not all(500 <= code < 600 for code in codes),
            ) from exc
        except smtplib.SMTPDataError as exc:
            # 5xx after DATA: the server refuses this message for good (content, size, policy).
            raise DeliveryError(
                f"SMTP message refused: {_describe(exc)}", retryable=not 500 <= exc.smtp_code < 600
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Authentication, sender and TLS failures are ours to fix, not the message's; connection
            # drops and timeouts pass. Either way a later attempt may succeed.
            raise DeliveryError(f"SMTP failed: {_describe(exc)}", retryable=True) from exc


def _describe(exc: BaseException) -> str:
    """A short description of an SMTP or socket error, without anything from our configuration."""
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return f"{exc.smtp_code} {' '.join(text.split())}"[:200]
    detail = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {detail}"[:200] if detail else type(exc).__name__


class MailboxTransport:
    """The development mailbox: nothing leaves the machine.

    The outbox row keeps the whole message (subject, text, HTML), and ``/dev/mailbox`` lists those
    rows, so "delivering" only marks the row sent. The last messages are kept in ``sent`` for tests
    and the shell.
    """

    def __init__(self, keep: int = 100) -> None:
        self.sent: deque[EmailMessage] = deque(maxlen=keep)

    def send(self, message: EmailMessage) -> None:
        """Keep ``message`` in memory and log it; never fails."""
        self.sent.append(message)
        log.info("mailbox: kept %s for %s (see /dev/mailbox)", message["Message-ID"], message["To"])

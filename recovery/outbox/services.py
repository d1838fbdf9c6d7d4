"""Writing to the outbox: mail, webhooks and tasks become rows in the caller's transaction.

A feature that sends something calls ``OutboxService(session).enqueue_mail(...)`` (or
``enqueue_webhook``, or ``enqueue_task`` for work that need not keep the client waiting) next to
the change that caused it; the request boundary commits both or neither, and ``recovery worker``
handles the row later. Nothing here talks to the network or commits, so a
slow SMTP server never slows a request.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recovery.db import new_row, utcnow
from recovery.errors import NotFound
from recovery.outbox.mail import MailRenderer, message_id_for, normalise_locale
from recovery.outbox.models import Channel, OutboxMessage
from recovery.outbox.settings import DeliverySettings

#: Printable ASCII without spaces: the key becomes a header value (webhook-id, Message-ID).
_KEY = re.compile(r"[\x21-\x7e]{1,128}")
_TASK = re.compile(r"[a-z][a-z0-9_]{0,63}")
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


@functools.cache
def default_renderer() -> MailRenderer:
    """One renderer per process over ``recovery/templates/mail`` (Jinja caches compiled templates)."""
    return MailRenderer()


class OutboxService:
    """Enqueues messages for the worker and reads them back for the development mailbox.

    ``settings`` default to the current app's; ``renderer`` to the package's templates (tests give
    their own folder).
    """

    def __init__(
        self,
        session: Session,
        settings: DeliverySettings | None = None,
        renderer: MailRenderer | None = None,
    ) -> None:
        self.session = session
        self.settings = settings or DeliverySettings.from_config(current_app.config)
        self.renderer = renderer or default_renderer()

    def enqueue_mail(
        self,
        to: str,
        template: str,
        locale: str,
        context: Mapping[str, Any],
        idempotency_key: str,
        secret: bool = False,
    ) -> OutboxMessage | None:
        """Render ``template`` in the recipient's ``locale`` now and queue it for ``to``.

        ``secret`` marks a mail that carries a link or code: the worker blanks its body once it is
        delivered, so the outbox is not a second place to read live secrets from (DESIGN §5.8).

        Returns the new row, or ``None`` when a message with ``idempotency_key`` exists already
        (a retried request, or a concurrent one: the insert cannot duplicate). The payload holds
        everything the worker needs (to, from, subject, text, html, Message-ID), so a template
        changed after this call does not change a queued mail. Raises ``ValueError`` for a bad
        address or key and Jinja's errors for a missing template or variable.
        """
        _check_key(idempotency_key)
        recipient = _single_address(to)
        if self._exists(idempotency_key):
            return None
        locale = normalise_locale(locale)
        rendered = self.renderer.render(template, locale, context)
        payload = {
            "to": recipient,
            "from": self.settings.mail_from,
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "template": template,
            "locale": locale,
            "message_id": message_id_for(idempotency_key, self.settings.mail_from),
            "secret": secret,
        }
        return self._insert(Channel.MAIL, idempotency_key, payload)

    def enqueue_webhook(
        self, event_type: str, data: Mapping[str, Any], idempotency_key: str
    ) -> OutboxMessage | None:
        """Queue the event ``event_type`` (e.g. ``account.recovered``) for the shop's endpoint.

        The payload is the Standard Webhooks body ``{"type", "timestamp", "data"}`` and the key is
        the ``webhook-id`` the receiver deduplicates on. Returns ``None`` (and writes nothing) when
        ``RECOVERY_WEBHOOK_URL`` is not set, or when the key was used already.
        """
        _check_key(idempotency_key)
        if not _EVENT_TYPE.fullmatch(event_type):
            raise ValueError(f"event types are dotted lower-case names, got {event_type!r}")
        if not self.settings.webhook_url:
            return None
        payload = {"type": event_type, "timestamp": _iso(utcnow()), "data": dict(data)}
        return self._insert(Channel.WEBHOOK, idempotency_key, payload)

    def enqueue_task(
        self, task: str, args: Mapping[str, Any], due: dt.datetime | None = None
    ) -> None:
        """Queue ``task`` with its JSON ``args`` for the worker, which runs the handler registered
        under that name (``recovery.wiring.task_handlers``) in a transaction of its own, after this
        one commits. A request hands over work this way so the client does not wait for it.

        Each call is a new task (its key is random): a retried request asks again, as the person
        did. The row joins the session's next flush, next to the change that caused it. Tasks
        run in the order they are due: ``due`` (default now) lets one that stands in for earlier
        work keep that work's place.
        """
        self.session.add(self.task(task, args, due))

    def task(
        self, task: str, args: Mapping[str, Any], due: dt.datetime | None = None
    ) -> OutboxMessage:
        """The row ``enqueue_task`` adds, for a caller that writes it itself (``db.insert_new``,
        with the new rows it belongs to)."""
        if not _TASK.fullmatch(task):
            raise ValueError(f"task names are lower-case words with underscores, got {task!r}")
        return new_row(
            OutboxMessage,
            channel=Channel.TASK,
            idempotency_key=f"task:{task}:{secrets.token_urlsafe(16)}",
            payload={"task": task, "args": dict(args)},
            next_attempt_at=due,  # None: the column's default, now
        )

    def mailbox(self, limit: int = 50) -> list[OutboxMessage]:
        """The newest mail rows of every status, newest first: the development mailbox."""
        return list(
            self.session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.channel == Channel.MAIL)
                .order_by(OutboxMessage.id.desc())
                .limit(limit)
            )
        )

    def mail(self, message_id: int) -> OutboxMessage:
        """One mail row; ``NotFound`` when there is none (or the row is not mail)."""
        # Ids are 64-bit: a larger number names nothing (and no driver would send it).
        message = self.session.get(OutboxMessage, message_id) if 0 < message_id < 2**63 else None
        if message is None or message.channel != Channel.MAIL:
            raise NotFound("no such message")
        return message

    def _exists(self, idempotency_key: str) -> bool:
        # A cheap early answer for the common replay; the insert below is what guarantees it.
        found = self.session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
        )
        return found is not None

    def _insert(
        self, channel: Channel, idempotency_key: str, payload: dict[str, Any]
    ) -> OutboxMessage | None:
        # INSERT ... ON CONFLICT DO NOTHING: two transactions racing with one key end with one row
        # (PostgreSQL makes the second wait for the first, then skips), and neither transaction is
        # aborted by a unique violation, so the caller's other work stands.
        statement: postgresql.Insert | sqlite.Insert
        if self.session.get_bind().dialect.name == "postgresql":
            statement = postgresql.insert(OutboxMessage)
        else:
            statement = sqlite.insert(OutboxMessage)
        new_id = self.session.execute(
            statement.values(channel=channel, idempotency_key=idempotency_key, payload=payload)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(OutboxMessage.id)
        ).scalar_one_or_none()
        if new_id is None:
            return None
        return self.session.get(OutboxMessage, new_id)


def _check_key(idempotency_key: str) -> None:
    if not _KEY.fullmatch(idempotency_key):
        raise ValueError("an idempotency key is 1-128 printable ASCII characters without spaces")


def _single_address(to: str) -> str:
    from email.errors import HeaderParseError
    from email.policy import default as policy

    text = to.strip()
    addresses: tuple[Any, ...]
    try:
        addresses = getattr(policy.header_factory("To", text), "addresses", ())
    except (HeaderParseError, IndexError, ValueError):
        addresses = ()
    if "\r" in text or "\n" in text or len(addresses) != 1 or not addresses[0].domain:
        raise ValueError("a mail goes to exactly one address")
    return text


def _iso(moment: dt.datetime) -> str:
    """``2026-11-21T22:30:00.123456Z``, the form the Standard Webhooks examples use."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

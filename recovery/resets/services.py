"""Self-service recovery by email: request a link and code, prove control, set a password, finish.

DESIGN §5 shapes every step. A request only records itself and hands the rest to the outbox worker
(look the address up, issue the secrets, write the mail), on the new flow it starts or as a task,
so the request does the same work, in the same time, whether or not the address belongs to an
account: neither its answer nor its timing can tell anyone who has one. A password change kills
every outstanding secret (they are bound to the password), tells every verified address with a
"this wasn't me" link, and tells the shop to end old sessions. The only sign-in a recovery grants
is the single login ticket.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets as random_source
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import urlencode

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from recovery.accounts import password_policy
from recovery.accounts.models import Account, AccountStatus, Identity
from recovery.accounts.passwords import hash_password
from recovery.db import Base, assign, utcnow
from recovery.errors import InvalidToken, TooManyAttempts
from recovery.flows.models import FlowStatus, RecoveryFlow
from recovery.identity import normalise
from recovery.identity.normalise import IdentityKind
from recovery.tokens.models import Secret
from recovery.tokens.services import (
    EMAIL_CODE,
    FREEZE_LINK,
    LOGIN_TICKET,
    RECOVERY_PROOFS,
    RESET_LINK,
    SecretService,
)


class Outbox(Protocol):
    """What recovery needs of the outbox (``recovery.outbox.services.OutboxService``)."""

    def enqueue_mail(
        self,
        to: str,
        template: str,
        locale: str,
        context: dict[str, Any],
        idempotency_key: str,
        secret: bool = False,
    ) -> object:
        """Render and store one mail for delivery after the commit."""

    def enqueue_webhook(
        self, event_type: str, data: dict[str, Any], idempotency_key: str
    ) -> object:
        """Store one signed webhook event for the shop."""

    def enqueue_task(self, task: str, args: dict[str, Any], due: dt.datetime | None = None) -> None:
        """Queue one task for the worker in the session's transaction, due from ``due``."""

    def task(self, task: str, args: dict[str, Any]) -> Base:
        """One task for the worker (which calls the handler registered for ``task``), as the
        row the caller stores."""


log = logging.getLogger(__name__)

#: The worker's task that answers an email-reset request (``ResetService.send_email_reset``).
EMAIL_RESET_TASK = "email_reset"


def _task_args(flow_id: str, email: str, locale: str) -> dict[str, Any]:
    """The arguments of an ``EMAIL_RESET_TASK`` (``wiring`` hands them to ``send_email_reset``)."""
    return {"flow_id": flow_id, "email": email, "locale": locale}


@dataclass(frozen=True, slots=True)
class Settings:
    public_url: str
    unknown_address_mail: bool
    #: The per-account limit (DESIGN §5.3), kept by the worker: a refusal at the request would
    #: tell who has an account, so past it requests are answered as always and send nothing.
    mails_per_account_per_hour: int = 10


@dataclass(frozen=True, slots=True)
class Target:
    """The account an email reset is for, as the few columns the request needs."""

    id: int
    password_hash: str | None
    password_changed_at: dt.datetime | None
    status: AccountStatus
    locale: str


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished recovery: the account, how control was proven, and the shop's login ticket."""

    account: Account
    method: str
    ticket: str
    flow: RecoveryFlow | None = None


class ResetService:
    def __init__(
        self,
        session: Session,
        secrets: SecretService,
        outbox: Outbox,
        settings: Settings,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.session = session
        self.secrets = secrets
        self.outbox = outbox
        self.settings = settings
        self.now = now

    # -- 1. ask for a link and a code ---------------------------------------------------------------

    def request_email_reset(
        self, flow: RecoveryFlow, email: str, *, new_flow: bool = False
    ) -> Base | None:
        """Record the request on ``flow`` and hand its answer (``send_email_reset``) to the
        worker. A ``new_flow`` (one this request starts, in no session yet) carries the request
        itself (``pending_email``, which ``take_requests`` picks up): the request then writes that
        one row. For any other flow the answer is a task, returned for the caller to store with
        the flow's changes (the flow may still carry its first request).

        Nothing here looks at accounts: every request writes the same rows, whoever owns
        ``email``. ``email`` must be normalised."""
        masked = normalise.mask_email(email)
        assign(flow, answers={**flow.answers, "email": masked})
        flow.record(flow.node, "email_requested", email=masked)
        if new_flow:
            assign(flow, pending_email=email)
            return None
        return self.outbox.task(EMAIL_RESET_TASK, _task_args(flow.id, email, flow.locale))

    def take_requests(self, limit: int) -> int:
        """The worker's pick-up of the requests new flows carry (``request_email_reset``): up to
        ``limit`` of them, oldest first, each turned into the task a request on an existing flow
        gets, due from when it was asked, as if the request had queued it (tasks run oldest due
        first, and each answer supersedes the account's earlier secrets), its flow cleared. Flows
        another worker or a request holds are skipped (PostgreSQL). The flows stay locked for
        this short transaction only: the answers, whose work depends on whether an account has
        the address, run as tasks without holding them, so a request on the flow never waits for
        one (DESIGN §5.1). Returns how many were taken."""
        taken = self.session.execute(
            select(
                RecoveryFlow.id,
                RecoveryFlow.pending_email,
                RecoveryFlow.locale,
                RecoveryFlow.created_at,
            )
            .where(RecoveryFlow.pending_email.is_not(None))
            .order_by(RecoveryFlow.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not taken:
            return 0
        clear = (
            update(RecoveryFlow)
            .where(
                RecoveryFlow.id.in_([flow_id for flow_id, *_ in taken]),
                RecoveryFlow.pending_email.is_not(None),
            )
            .values(pending_email=None)
            .execution_options(synchronize_session=False)
        )
        cleared = cast("CursorResult[Any]", self.session.execute(clear))  # an UPDATE's result
        if cleared.rowcount != len(taken):  # another worker took some (SQLite: no row locks)
            raise RuntimeError("carried requests were taken concurrently; trying again")
        for flow_id, email, locale, asked_at in taken:
            args = _task_args(flow_id, email or "", locale)
            self.outbox.enqueue_task(EMAIL_RESET_TASK, args, due=asked_at)
        return len(taken)

    def send_email_reset(self, flow_id: str, email: str, locale: str) -> None:
        """The worker's half of a request: a link and a code to ``email`` if it is a verified
        address of an active account; otherwise (optionally) a note that no account uses it."""
        account = self._account_for_email(email)
        if account is None:
            self._stand_in_code(flow_id)
            if self.settings.unknown_address_mail:
                self.outbox.enqueue_mail(
                    to=email,
                    template="unknown_address",
                    locale=locale,
                    context={"recover": self._url("/recover", lang=locale)},
                    idempotency_key=f"unknown:{flow_id}:{random_source.token_urlsafe(12)}",
                )
            return
        if self._recent_resets(account.id) >= self.settings.mails_per_account_per_hour:
            log.warning(
                "email reset for account %s not sent: per-account limit reached", account.id
            )
            self._stand_in_code(flow_id)
            return
        self.secrets.supersede(account, RECOVERY_PROOFS)
        token = self.secrets.issue_link(RESET_LINK, account, flow_id, "email")
        code = self.secrets.issue_code(EMAIL_CODE, account, flow_id, "email")
        lifetime = min(self.secrets.lifetime(RESET_LINK), self.secrets.lifetime(EMAIL_CODE))
        self.outbox.enqueue_mail(
            to=email,
            template="reset",
            locale=account.locale or locale,
            context={
                # The page opens in the mail's language, whatever the browser prefers.
                "link": self._url("/recover/reset", token=token, lang=account.locale or locale),
                "code": code,
                "minutes": int(lifetime.total_seconds() // 60),
            },
            idempotency_key=f"reset:{flow_id}:{token[-16:]}",
            secret=True,
        )

    def _stand_in_code(self, flow_id: str) -> None:
        """A code nobody is sent, for a request that sends none: the flow's code form then counts
        tries and locks after the fifth exactly as it does after a mailed code, so guessing tells
        nothing about the address."""
        self.secrets.issue_code(EMAIL_CODE, None, flow_id, "email")

    def _recent_resets(self, account_id: int) -> int:
        """Reset links issued to the account in the last hour (the per-account limit)."""
        since = self.now() - dt.timedelta(hours=1)
        count = self.session.scalar(
            select(func.count())
            .select_from(Secret)
            .where(
                Secret.account_id == account_id,
                Secret.purpose == RESET_LINK.name,
                Secret.created_at > since,
            )
        )
        return int(count or 0)

    def _account_for_email(self, email: str) -> Target | None:
        # Columns, not the ORM entity: only what the secrets and the mail need.
        row = self.session.execute(
            select(
                Account.id,
                Account.password_hash,
                Account.password_changed_at,
                Account.status,
                Account.locale,
            )
            .join(Identity, Identity.account_id == Account.id)
            .where(
                Identity.kind == IdentityKind.EMAIL,
                Identity.value == email,
                # Only a verified address proves anything: mail to an unverified one could reach
                # whoever typed it into the shop (DESIGN §5.5, the trojan identifier).
                Identity.verified_at.is_not(None),
                Account.status == AccountStatus.ACTIVE,
            )
        ).first()
        return Target(*row) if row is not None else None

    # -- 2. prove control ------------------------------------------------------------------------------

    def check_code(self, flow: RecoveryFlow, code: str) -> Secret:
        """The flow's email code if ``code`` is right (not used yet); a miss is recorded."""
        try:
            return self.secrets.verify_code(EMAIL_CODE, flow.id, code)
        except (InvalidToken, TooManyAttempts) as exc:
            flow.record(flow.node, "code_rejected", reason=exc.code)
            raise

    def check_link(self, token: str) -> Secret:
        """The link's secret if it can still be used (opening a link consumes nothing)."""
        return self.secrets.peek_link(RESET_LINK, token)

    def account_of(self, secret: Secret) -> Account:
        """The account a live secret was issued for."""
        account = self.session.get(Account, secret.account_id) if secret.account_id else None
        if account is None:
            raise InvalidToken()
        return account

    def flow_of(self, secret: Secret) -> RecoveryFlow | None:
        """The flow that asked for ``secret``, if it is still there."""
        return self.session.get(RecoveryFlow, secret.flow_id) if secret.flow_id else None

    def prove(self, flow: RecoveryFlow | None, secret: Secret, method: str) -> Account:
        """Use ``secret``: the flow's person now controls its account."""
        self.secrets.use(secret)
        account = self.account_of(secret)
        if flow is not None:
            flow.account_id, flow.method = account.id, method
            flow.record(flow.node, "proved", method=method)
        return account

    # -- 3. a new password, and the end of the walk ------------------------------------------------------

    def check_password(self, account: Account, password: str) -> None:
        """Raise ``WeakPassword`` unless ``password`` passes the policy for ``account``."""
        password_policy.check(password, emails=self._emails(account))

    def set_password(self, account: Account, password: str) -> None:
        """Store a new password (the recovery's ``complete`` tells everyone who must know)."""
        self.check_password(account, password)
        account.password_hash = hash_password(password)
        account.password_changed_at = self.now()
        self.session.flush()

    def complete(
        self, flow: RecoveryFlow | None, account: Account, method: str, *, password_changed: bool
    ) -> Completion:
        """Finish a recovery, with or without a new password (DESIGN §5.6): every outstanding
        link and code of the account dies, every verified address is told (with a "this wasn't
        me" link that freezes the account), the shop gets ``account.recovered`` to end the old
        sessions, and a single login ticket (2 minutes) is issued for it to redeem."""
        now = self.now()
        self.secrets.supersede(account, RECOVERY_PROOFS)
        freeze = self.secrets.issue_link(FREEZE_LINK, account, None, "email")
        template = "password_changed" if password_changed else "account_recovered"
        for index, email in enumerate(self._emails(account)):
            self.outbox.enqueue_mail(
                to=email,
                template=template,
                locale=account.locale,
                context={
                    "freeze": self._url("/recover/freeze", token=freeze, lang=account.locale),
                    "at": now,
                },
                secret=True,
                # Keys are short ASCII: the position stands for the address, which may be neither.
                idempotency_key=f"{template}:{account.id}:{now.timestamp():.6f}:{index}",
            )
        self.outbox.enqueue_webhook(
            "account.recovered",
            {
                "account_id": account.external_id,
                "id": str(account.public_id),
                "recovered_at": now.isoformat(),
                "end_sessions_before": now.isoformat(),
            },
            idempotency_key=f"account.recovered:{account.id}:{now.isoformat()}",
        )
        ticket = self.secrets.issue_ticket(account, flow.id if flow else None, method)
        if flow is not None:
            flow.status, flow.completed_at = FlowStatus.DONE, now
            flow.record(flow.node, "done", method=method)
        return Completion(account, method, ticket, flow)

    def check_freeze(self, token: str) -> Secret:
        """The "this wasn't me" link's secret if it can still be used (opening it changes nothing)."""
        return self.secrets.peek_link(FREEZE_LINK, token)

    def freeze(self, token: str) -> Account:
        """ "This wasn't me": lock the account and kill every outstanding secret, so whoever changed
        the password cannot use a ticket or a new reset; only support can unlock it."""
        secret = self.secrets.consume_link(FREEZE_LINK, token)
        account = self.account_of(secret)
        account.status = AccountStatus.LOCKED
        self.secrets.supersede(account, (*RECOVERY_PROOFS, LOGIN_TICKET))
        self.outbox.enqueue_webhook(
            "account.frozen",
            {
                "account_id": account.external_id,
                "id": str(account.public_id),
                "frozen_at": self.now().isoformat(),
            },
            idempotency_key=f"account.frozen:{account.id}:{secret.id}",
        )
        return account

    def finish_with_link(self, token: str, password: str) -> Completion:
        """The link path: check the password first (a weak one costs nothing), then use the link,
        set the password and finish the flow that asked for the link."""
        secret = self.check_link(token)
        return self._finish(self.flow_of(secret), secret, password, "email_link")

    def finish_with_code(self, flow: RecoveryFlow, code: str, password: str) -> Completion:
        """The code path of the JSON API: code, password and finish in one request."""
        return self._finish(flow, self.check_code(flow, code), password, "email_code")

    def _finish(
        self, flow: RecoveryFlow | None, secret: Secret, password: str, method: str
    ) -> Completion:
        account = self.account_of(secret)
        self.check_password(account, password)
        self.prove(flow, secret, method)
        self.set_password(account, password)
        return self.complete(flow, account, method, password_changed=True)

    def _emails(self, account: Account) -> Sequence[str]:
        return [i.value for i in account.identities if i.kind is IdentityKind.EMAIL and i.verified]

    def _url(self, path: str, **query: str) -> str:
        # Links come from the configured public URL, never from the request's Host (DESIGN §5.7).
        return f"{self.settings.public_url}{path}?{urlencode(query)}"

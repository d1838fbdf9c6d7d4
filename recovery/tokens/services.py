"""One service for every short-lived secret, one named ``Purpose`` for each use (own salt, lifetime).

The rules of DESIGN §5.2 live here: links carry 256 random bits inside an itsdangerous signature made
with the newest of ``SECRET_KEYS`` (any key verifies, so keys rotate); only digests are stored; a
secret is used at most once (a conditional UPDATE, so concurrent redemptions race safely); it dies
when it expires, when a newer one replaces it, and when the account's password or status changes
(the fingerprint). Every way a secret can be wrong but unexpired gives the same ``InvalidToken``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from recovery.accounts.models import Account, AccountStatus
from recovery.db import utcnow
from recovery.errors import Gone, InvalidToken, TokenExpired, TooManyAttempts
from recovery.tokens.models import Secret, SecretKind

CODE_DIGITS = 6
#: Expired secrets are kept this long (for the audit of recent requests), then purged.
PURGE_AFTER = dt.timedelta(days=1)
MAX_CODE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    kind: SecretKind
    lifetime: dt.timedelta
    #: Dies when the password changes. Not for "this wasn't me": an intruder who resets the
    #: password again must not be able to kill the real owner's way to freeze the account.
    bound_to_password: bool = True


RESET_LINK = Purpose("reset_link", SecretKind.LINK, dt.timedelta(hours=1))
EMAIL_CODE = Purpose("email_code", SecretKind.CODE, dt.timedelta(hours=1))
SMS_CODE = Purpose("sms_code", SecretKind.CODE, dt.timedelta(minutes=10))
LOGIN_TICKET = Purpose("login_ticket", SecretKind.TICKET, dt.timedelta(minutes=2))
FREEZE_LINK = Purpose("freeze_link", SecretKind.LINK, dt.timedelta(days=7), bound_to_password=False)

#: A new request for any of these replaces every unused one of them for the same account.
RECOVERY_PROOFS = (RESET_LINK, EMAIL_CODE, SMS_CODE)


class AccountRef(Protocol):
    """What a secret needs of its account: an ``Account``, or the few columns of one."""

    @property
    def id(self) -> int: ...
    @property
    def password_hash(self) -> str | None: ...
    @property
    def password_changed_at(self) -> dt.datetime | None: ...
    @property
    def status(self) -> AccountStatus: ...


def fingerprint(account: AccountRef | None) -> str:
    """What a secret is bound to: the password (hash and change time) and the account's status."""
    if account is None:
        return hashlib.sha256(b"no account").hexdigest()
    changed = account.password_changed_at.isoformat() if account.password_changed_at else ""
    material = f"{account.id}|{account.password_hash or ''}|{changed}|{account.status}"
    return hashlib.sha256(material.encode()).hexdigest()


class SecretService:
    """``lifetimes`` overrides a purpose's default lifetime by its name (the operator's settings)."""

    def __init__(
        self,
        session: Session,
        keys: Sequence[str],
        now: Callable[[], dt.datetime] = utcnow,
        lifetimes: Mapping[str, dt.timedelta] | None = None,
    ) -> None:
        if not keys:
            raise ValueError("at least one secret key is needed")
        self.session = session
        self.keys = list(keys)  # newest first, as configured
        self.now = now
        self.lifetimes = dict(lifetimes or {})

    def lifetime(self, purpose: Purpose) -> dt.timedelta:
        """How long a secret of ``purpose`` lives here."""
        return self.lifetimes.get(purpose.name, purpose.lifetime)

    # -- issuing ----------------------------------------------------------------------------------

    def issue_link(
        self, purpose: Purpose, account: AccountRef | None, flow_id: str | None, channel: str | None
    ) -> str:
        """A signed token for a link. ``account=None`` issues a decoy that never verifies."""
        random_id = secrets.token_urlsafe(32)  # 256 bits
        self._store(purpose, _sha256(random_id), account, flow_id, channel)
        return self._serializer(purpose).dumps(random_id)

    def issue_code(
        self, purpose: Purpose, account: AccountRef | None, flow_id: str, channel: str | None
    ) -> str:
        """A 6-digit code bound to ``flow_id``; five wrong tries kill it."""
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        self._store(
            purpose,
            self._code_digest(self.keys[0], purpose, flow_id, code),
            account,
            flow_id,
            channel,
        )
        return code

    def issue_ticket(self, account: AccountRef, flow_id: str | None, method: str) -> str:
        """The single-use login ticket the shop redeems after a recovery."""
        return self.issue_link(LOGIN_TICKET, account, flow_id, method)

    def supersede(self, account: AccountRef, purposes: Sequence[Purpose]) -> None:
        """Kill the account's unused secrets of ``purposes``."""
        self.session.execute(
            update(Secret)
            .where(
                Secret.account_id == account.id,
                Secret.purpose.in_([p.name for p in purposes]),
                Secret.used_at.is_(None),
                Secret.superseded_at.is_(None),
            )
            .values(superseded_at=self.now())
        )

    def purge(self, older_than: dt.timedelta = PURGE_AFTER) -> int:
        """Delete secrets that expired more than ``older_than`` ago (decoys included); returns how
        many. Nothing can use them any more; keeping them only grows the table."""
        result = self.session.execute(
            delete(Secret).where(Secret.expires_at < self.now() - older_than)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def _store(
        self,
        purpose: Purpose,
        digest: str,
        account: AccountRef | None,
        flow_id: str | None,
        channel: str | None,
    ) -> Secret:
        now = self.now()
        secret = Secret(
            kind=purpose.kind,
            purpose=purpose.name,
            digest=digest,
            account_id=account.id if account else None,
            flow_id=flow_id,
            channel=channel,
            fingerprint=fingerprint(account),
            created_at=now,
            expires_at=now + self.lifetime(purpose),
        )
        self.session.add(secret)
        self.session.flush()
        return secret

    # -- checking and using ------------------------------------------------------------------------

    def peek_link(self, purpose: Purpose, token: str) -> Secret:
        """The live secret behind ``token`` without using it (opening a link must not consume it)."""
        return self._live(self._by_token(purpose, token), purpose.bound_to_password)

    def consume_link(self, purpose: Purpose, token: str) -> Secret:
        """Use the link's secret exactly once; concurrent callers: one wins, the rest get
        ``InvalidToken``."""
        return self.use(self.peek_link(purpose, token))

    def redeem_ticket(self, token: str) -> Secret:
        """Use a login ticket once; a second redemption (even a concurrent one) is ``Gone``."""
        secret = self._by_token(LOGIN_TICKET, token)
        if secret.used_at is not None or not self._claim(self._live(secret)):
            raise Gone("this ticket has been redeemed already")
        return secret

    def verify_code(self, purpose: Purpose, flow_id: str, code: str) -> Secret:
        """The flow's newest code if ``code`` matches it and it is live, without using it.

        Every guess costs one of the five tries, taken with a conditional UPDATE before the code is
        compared: concurrent guesses cannot get more than five between them, and a right code
        after the fifth is refused too. A code that cannot succeed (superseded by a newer request,
        used, or a stand-in issued for an address no account has) counts tries and locks exactly
        like a live one, so guessing never tells whether the flow's address has an account.
        """
        secret = self.session.scalar(
            select(Secret)
            .where(Secret.flow_id == flow_id, Secret.purpose == purpose.name)
            .order_by(Secret.id.desc())
            .limit(1)
        )
        if secret is None:
            raise InvalidToken()
        tries = self.session.scalar(
            update(Secret)
            .where(Secret.id == secret.id, Secret.attempts < MAX_CODE_ATTEMPTS)
            .values(attempts=Secret.attempts + 1)
            .returning(Secret.attempts)
        )
        if tries is None:
            raise TooManyAttempts()
        set_committed_value(secret, "attempts", tries)
        supplied = code.strip()
        matches = any(
            hmac.compare_digest(secret.digest, self._code_digest(key, purpose, flow_id, supplied))
            for key in self.keys
        )
        dead = secret.account_id is None or secret.used_at or secret.superseded_at
        if not matches or dead:
            # ``kept``: the request fails, but the try it cost must be committed.
            if tries >= MAX_CODE_ATTEMPTS:
                raise TooManyAttempts().kept()
            raise InvalidToken().kept()
        return self._live(secret)

    def use(self, secret: Secret) -> Secret:
        """Use a secret that ``peek_link`` or ``verify_code`` returned; ``InvalidToken`` if another
        request used it first."""
        if not self._claim(secret):
            raise InvalidToken()
        return secret

    def _by_token(self, purpose: Purpose, token: str) -> Secret:
        try:
            random_id = self._serializer(purpose).loads(
                token, max_age=int(self.lifetime(purpose).total_seconds())
            )
        except SignatureExpired:
            raise TokenExpired() from None
        except BadSignature:
            raise InvalidToken() from None
        secret = self.session.scalar(
            select(Secret).where(
                Secret.digest == _sha256(str(random_id)), Secret.purpose == purpose.name
            )
        )
        if secret is None:
            raise InvalidToken()
        return secret

    def _live(self, secret: Secret, bound_to_password: bool = True) -> Secret:
        if secret.used_at is not None or secret.superseded_at is not None:
            raise InvalidToken()
        if secret.account_id is None:  # a decoy
            raise InvalidToken()
        if secret.expires_at <= self.now():
            raise TokenExpired()
        account = self.session.get(Account, secret.account_id)
        if account is None:
            raise InvalidToken()
        if bound_to_password and not hmac.compare_digest(secret.fingerprint, fingerprint(account)):
            raise InvalidToken()
        return secret

    def _claim(self, secret: Secret) -> bool:
        """Mark ``secret`` used if nobody else has: ``UPDATE ... WHERE used_at IS NULL``."""
        claimed = self.session.scalar(
            update(Secret)
            .where(Secret.id == secret.id, Secret.used_at.is_(None), Secret.superseded_at.is_(None))
            .values(used_at=self.now())
            .returning(Secret.used_at)
        )
        if claimed is None:
            return False
        set_committed_value(secret, "used_at", claimed)  # reflect it without a second write
        return True

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        # itsdangerous signs with the last key of the list and accepts all of them.
        return URLSafeTimedSerializer(list(reversed(self.keys)), salt=f"recovery.{purpose.name}")

    @staticmethod
    def _code_digest(key: str, purpose: Purpose, flow_id: str, code: str) -> str:
        # Keyed: six digits are trivially brute-forced from a plain hash if the table leaks.
        message = f"{purpose.name}:{flow_id}:{code}".encode()
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _sha256(value: str) -> str:
    # Link ids carry 256 random bits, so an unkeyed hash is enough to make a leaked table useless.
    return hashlib.sha256(value.encode()).hexdigest()

"""Password hashing: argon2id with OWASP's parameters; imported bcrypt hashes verify and upgrade."""

from __future__ import annotations

from passlib.context import CryptContext

#: OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1 (about 45 ms here).
#: bcrypt stays verifiable for hashes imported from the shop; ``deprecated="auto"`` makes every
#: non-default hash (bcrypt, or argon2 with other parameters) "needs update", so it is rehashed on use.
context = CryptContext(
    schemes=["argon2", "bcrypt"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__rounds=2,
    argon2__parallelism=1,
)


def is_supported_hash(value: str) -> bool:
    """True when ``value`` is a well-formed argon2 or bcrypt hash this service can verify."""
    scheme = context.identify(value, required=False)
    if scheme is None:
        return False
    try:
        context.handler(scheme).from_string(value)
    except (ValueError, TypeError):
        return False
    return True


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with the parameters above.

    Hashes the string exactly as given (no normalisation); run ``password_policy.check`` first, which
    also bounds its size. libpass refuses passwords over 4,096 bytes with a ``ValueError``.
    """
    hashed: str = context.hash(password)
    return hashed


def verify_and_update(password: str, stored_hash: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``stored_hash``, and a new argon2id hash to store if it should change.

    The second item is ``None`` unless the password matched and the stored hash is not the current
    default (a bcrypt hash imported from the shop, or argon2 with other parameters): then it is a fresh
    argon2id hash to save in place of the old one. A stored hash that cannot be checked answers
    ``(False, None)`` rather than raising: a malformed or unknown hash, and a bcrypt hash tried with a
    password over 72 UTF-8 bytes, which the bcrypt library refuses instead of silently truncating (the
    shop's truncated hashes of such passwords cannot be verified; those users recover their account).
    """
    try:
        matched, new_hash = context.verify_and_update(password, stored_hash)
    except ValueError:
        # UnknownHashError, malformed hashes, bcrypt's 72-byte refusal, libpass's size limit and
        # UnicodeEncodeError (lone surrogates) are all ValueErrors; none may become a server error.
        return False, None
    return bool(matched), new_hash if isinstance(new_hash, str) else None

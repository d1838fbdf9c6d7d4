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

"""Hashing and verification in ``recovery.accounts.passwords``: argon2id now, bcrypt upgraded on use."""

import argon2
import bcrypt
import pytest

from recovery.accounts.passwords import context, hash_password, verify_and_update

PASSWORD = "correct horse battery staple"
OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"


def test_hash_is_argon2id_with_owasp_parameters() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith(OWASP_PREFIX)
    assert PASSWORD not in hashed
    assert not context.needs_update(hashed)


def test_hashes_are_salted() -> None:
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_round_trip_needs_no_update() -> None:
    hashed = hash_password(PASSWORD)
    assert verify_and_update(PASSWORD, hashed) == (True, None)


def test_wrong_password_is_refused() -> None:
    hashed = hash_password(PASSWORD)
    assert verify_and_update(PASSWORD + "!", hashed) == (False, None)
    assert verify_and_update(PASSWORD.upper(), hashed) == (False, None)


def test_non_ascii_password_round_trips() -> None:
    password = "zażółć gęślą jaźń 🔑"
    assert verify_and_update(password, hash_password(password)) == (True, None)


def test_bcrypt_hash_verifies_and_is_upgraded_to_argon2id() -> None:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    matched, new_hash = verify_and_update(PASSWORD, legacy)
    assert matched
    assert new_hash is not None
    assert new_hash.startswith(OWASP_PREFIX)
    assert verify_and_update(PASSWORD, new_hash) == (True, None)


def test_wrong_password_against_bcrypt_is_refused_without_upgrade() -> None:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    assert verify_and_update("not the password", legacy) == (False, None)


def test_argon2_with_other_parameters_is_upgraded() -> None:
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    matched, new_hash = verify_and_update(PASSWORD, weaker)
    assert matched
    assert new_hash is not None
    assert new_hash.startswith(OWASP_PREFIX)


def test_bcrypt_with_a_password_over_72_bytes_answers_false_instead_of_raising() -> None:
    long_password = "ł" * 40  # 80 UTF-8 bytes
    # What the shop's bcrypt stored for it: a hash of the first 72 bytes.
    legacy = bcrypt.hashpw(long_password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    with pytest.raises(ValueError, match="72 bytes"):
        bcrypt.checkpw(long_password.encode(), legacy.encode())
    assert verify_and_update(long_password, legacy) == (False, None)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$2b$12$short",
        "$argon2id$v=19$m=19456,t=2,p=1$abc",
        "$1$md5crypt$isnotsupportedhere",
    ],
)
def test_malformed_or_unknown_hash_answers_false(stored: str) -> None:
    assert verify_and_update(PASSWORD, stored) == (False, None)


def test_lone_surrogate_answers_false() -> None:
    assert verify_and_update("\ud800" * 12, hash_password(PASSWORD)) == (False, None)

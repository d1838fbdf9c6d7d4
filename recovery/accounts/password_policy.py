"""The rules a new password must meet: NIST SP 800-63B §5.1.1.2, and nothing more.

A password is long enough, not absurdly long, not on a list of common passwords and not built from
the account's email address. There are deliberately no composition rules (digits, symbols, mixed
case) and no expiry: NIST advises against both, since they push people towards predictable patterns
("Password1!") without making guessing harder. Whitespace and any Unicode character are allowed.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from importlib import resources

from recovery.errors import WeakPassword

#: Characters (Unicode code points after NFKC normalisation). NIST's floor is 8; 12 is OWASP's
#: advice for a password that is the only factor, as it is for most shop accounts.
MIN_LENGTH = 12
#: NIST asks verifiers to allow at least 64 characters; 128 leaves room for passphrases.
MAX_LENGTH = 128
#: UTF-8 bytes of the password as submitted. argon2 has no 72-byte limit like bcrypt, so this cap is
#: not about correctness but about bounding the work (and memory) of hashing what a client sends.
#: After normalisation 128 code points are at most 512 bytes anyway; the cap on the raw input also
#: stops a huge body from being normalised at all.
MAX_BYTES = 512
#: An email local part shorter than this ("jo", "a") is too likely to occur by chance to be a rule.
MIN_EMAIL_LOCAL_LENGTH = 3
#: See ``_is_common`` for the trailing-digits rule and why its stem must be this long.
MIN_STEM_LENGTH = 4

_DATA_FILE = "data/common-passwords.txt"
_TRAILING_DIGITS = re.compile(r"[0-9]+\Z")


def normalise(password: str) -> str:
    """``password`` in Unicode NFKC, the form whose length the policy measures (NIST SP 800-63B)."""
    return unicodedata.normalize("NFKC", password)


def _fold(text: str) -> str:
    """The comparison key: NFKC, then case-folded, so "PassWord" and its full-width form match."""
    return normalise(text).casefold()


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled deny-list (see ``data/README.md``), folded like candidates; loaded once, on first use."""
    text = resources.files("recovery.accounts").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return frozenset(_fold(line) for line in text.splitlines() if line)


def check(password: str, *, emails: Iterable[str] = ()) -> None:
    """Raise ``WeakPassword`` unless ``password`` may be set as a new password.

    ``emails`` are the account's addresses: the password may not equal one of them, nor contain the
    local part of one (case-insensitively, when that part has at least ``MIN_EMAIL_LOCAL_LENGTH``
    characters). The first rule broken decides the ``reason``: ``invalid_characters``, ``too_long``,
    ``too_short``, ``contains_email`` or ``common``. Details never repeat the password or the email.
    """
    if isinstance(emails, str):
        # A bare string is an Iterable[str] of single characters: the check would silently pass.
        raise TypeError("emails must be a collection of addresses, not one address")
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        # Lone surrogates (JSON's "\ud800" decodes to one) are not text: they cannot be encoded to
        # hash, so refuse them here rather than fail later with a server error.
        raise WeakPassword(
            "invalid_characters", "The password contains characters that cannot be used."
        ) from None
    # Checked before normalising, so an oversized input costs no more than measuring it.
    if size > MAX_BYTES:
        raise WeakPassword("too_long", f"Use at most {MAX_LENGTH} characters.")

    normalised = normalise(password)
    if len(normalised) < MIN_LENGTH:
        raise WeakPassword("too_short", f"Use at least {MIN_LENGTH} characters.")
    if len(normalised) > MAX_LENGTH:
        raise WeakPassword("too_long", f"Use at most {MAX_LENGTH} characters.")

    folded = normalised.casefold()
    if _contains_email(folded, emails):
        raise WeakPassword("contains_email", "The password must not contain your email address.")
    if _is_common(folded):
        raise WeakPassword(
            "common", "This password is too common and easy to guess; choose a different one."
        )


def _contains_email(folded: str, emails: Iterable[str]) -> bool:
    for email in emails:
        address = _fold(email.strip())
        if not address:
            continue
        if folded == address:
            return True
        local, at, _domain = address.rpartition("@")
        if not at:
            local = address
        if len(local) >= MIN_EMAIL_LOCAL_LENGTH and local in folded:
            return True
    return False


def _is_common(folded: str) -> bool:
    common = common_passwords()
    if folded in common:
        return True
    # The commonest way to stretch a listed password to a length minimum is to append digits
    # ("sunshine2024", "dragon123456"), and appending digits is the first mangling rule every
    # cracking tool applies to its wordlist. So a password that is a listed one plus trailing digits
    # counts as listed. Only trailing ASCII digits (NFKC has already turned full-width digits into
    # ASCII): prefixes, symbols and leetspeak are left to keep the rule predictable and explainable.
    # The stem must have MIN_STEM_LENGTH characters: the list also holds one- to three-character
    # entries ("a", "qq", "abc"), and with those the rule would reject "ab" followed by ten random
    # digits, where the digits carry the strength and the stem adds nothing an attacker could use.
    stem = _TRAILING_DIGITS.sub("", folded)
    return stem != folded and len(stem) >= MIN_STEM_LENGTH and stem in common

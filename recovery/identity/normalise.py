"""Normalisation: the one place that decides when two spellings are the same identifier.

Exact forms (``email``, ``phone``, ...) are what the identity store keys on and what may ever sign a
person in. Fuzzy keys (``email_fuzzy_key``, ``name_key``) deliberately merge spellings that may belong to
different people (``jan.kowalski`` and ``jankowski+shop`` at Gmail); they only ever rank *candidates* for
staff and must never authenticate anyone.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections.abc import Callable

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_REGION = "PL"
MAX_EMAIL_LENGTH = 254
MAX_SUBJECT_LENGTH = 255


class IdentityKind(enum.StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    GOOGLE = "google"
    FACEBOOK = "facebook"
    PAYPAL = "paypal"


#: A normalising function: returns the stored form or raises ``InvalidValue``.
Normaliser = Callable[[str], str]


class InvalidValue(ValueError):
    """The value cannot be an identifier of that kind. ``str(error)`` is safe to show."""


# No address or number is remembered between calls. A cache would answer a value it met before (an
# address just imported or ingested for an account) faster than one it never met, and the public
# reset endpoints normalise what anyone types: their timing would tell who has an account (DESIGN
# §5.1). Only which email domains the library accepted is kept (``_plain_email_domain``): it is the
# same for every address at a domain, so it says nothing about anyone's.


def email(value: str) -> str:
    """Trimmed, validated, lower-cased address (compared case-insensitively, per DESIGN §3)."""
    text = value.strip()
    if len(text) > MAX_EMAIL_LENGTH:
        raise InvalidValue("is too long for an email address")
    common = _common_email(text)
    return common if common is not None else _validated_email(text)


_SHARP_S = re.compile("[ßẞ]")  # small and capital


def _validated_email(text: str) -> str:
    """``email`` of any (trimmed) address, by ``email-validator``: the reference."""
    try:
        # Deliverability (DNS) is not checked: no network at request time, and a typo'd domain is
        # still a hint worth resolving.
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise InvalidValue(f"is not a valid email address: {exc}") from None
    # casefold, not lower: Unicode's case-insensitive form (final sigma, dotted I), except that
    # "ß" stays "ß": folded it is "ss", and straße@ and strasse@ (two mailboxes) would be one
    # exact key, so mail would go to the address that was not given. NFC again because folding
    # may decompose; it can lengthen the address, so check the limit after it.
    parts = _SHARP_S.split(checked.normalized)
    folded = unicodedata.normalize("NFC", "ß".join(part.casefold() for part in parts))
    if len(folded.encode()) > MAX_EMAIL_LENGTH:
        raise InvalidValue("is too long for an email address")
    return folded


# Validating an address costs ~15 µs, most of it the domain (IDNA, special-use names), and an import
# has a million of them at a few hundred domains. The common shape - a plain ASCII dot-atom before
# the "@" at a domain email-validator accepted before - is decided here, the rest by the library.
# A property test holds this to giving exactly what ``_validated_email`` gives, or nothing.
_COMMON_LOCAL_PART = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*")
_MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1, as email-validator enforces it


def _common_email(text: str) -> str | None:
    """``email(text)`` for the common shape of address, or None: ``_validated_email`` decides."""
    local, at, domain = text.rpartition("@")
    if (
        at
        and len(local) <= _MAX_LOCAL_PART
        and _COMMON_LOCAL_PART.fullmatch(local)
        and _plain_email_domain(domain)
    ):
        return text.lower()  # ASCII: NFC changes nothing
    return None


@functools.lru_cache(maxsize=4096)
def _plain_email_domain(domain: str) -> bool:
    """email-validator accepts ``domain`` and normalises it only by lower-casing it."""
    if not domain.isascii():
        return False
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return False
    return bool(checked.domain == domain.lower())


_DEFAULT_COUNTRY_CODE = phonenumbers.country_code_for_region(DEFAULT_REGION)
#: How nearly every Polish number is written: nine digits (no leading zero, not starting with the
#: country code) in groups split by single spaces or dashes, with or without "+48" in front.
_COMMON_PHONE = re.compile(
    rf"(?:\+{_DEFAULT_COUNTRY_CODE}[ -]?)?"
    rf"(?P<national>(?!{_DEFAULT_COUNTRY_CODE})[1-9](?:[ -]?[0-9]){{8}})"
)


def phone(value: str, region: str = DEFAULT_REGION) -> str:
    """E.164 (``+48600100200``); national numbers are read in ``region`` (Poland by default)."""
    text = value.strip()
    # Letters would be read as a keypad's digits ("600-100-ADG") or an extension: neither is a
    # number we can send a code to.
    if not text or len(text) > 32 or any(ch.isalpha() for ch in text):
        raise InvalidValue("is not a valid phone number")
    number = _common_phone(text, region)
    if number is None:
        number = _parsed_phone(text, region)
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _parsed_phone(text: str, region: str) -> phonenumbers.PhoneNumber:
    """``text`` read by ``phonenumbers`` (national numbers in ``region``): the reference."""
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidValue("is not a valid phone number") from None


def _common_phone(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """The number ``_parsed_phone`` reads in ``text``, for the common shape, without parsing it
    (parsing costs more than checking the number); None for any other shape."""
    common = _COMMON_PHONE.fullmatch(text) if region == DEFAULT_REGION else None
    if common is None:
        return None
    national = common["national"].replace(" ", "").replace("-", "")
    return phonenumbers.PhoneNumber(
        country_code=_DEFAULT_COUNTRY_CODE, national_number=int(national)
    )


_ORDER_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]+")  # dashes, including typographic ones
_ORDER_NUMBER = re.compile(r"[A-Z0-9/._]{1,64}")


def order_number(value: str) -> str:
    """Upper case without spaces or dashes: ``pl-2024 000 17`` and ``PL202400017`` are one order."""
    text = _ORDER_SEPARATORS.sub("", value)
    # ASCII first: upper() maps some other letters to ASCII ones ("ß" -> "SS", "ﬁ" -> "FI").
    text = text.upper() if text.isascii() else ""
    if not _ORDER_NUMBER.fullmatch(text):
        raise InvalidValue(
            "must be 1-64 letters, digits, '/', '.' or '_' (spaces and dashes ignored)"
        )
    return text


_PAYER_ID = re.compile(r"[A-Z0-9]{13}")


def paypal_payer_id(value: str) -> str:
    """PayPal's payer id: 13 upper-case letters and digits."""
    text = value.strip()
    text = text.upper() if text.isascii() else ""
    if not _PAYER_ID.fullmatch(text):
        raise InvalidValue("is not a PayPal payer id (13 letters and digits)")
    return text


_SUBJECT = re.compile(r"[\x21-\x7e]+")


def provider_subject(value: str) -> str:
    """A Google or Facebook account id: opaque and case-sensitive, so only trimmed."""
    text = value.strip()
    if len(text) > MAX_SUBJECT_LENGTH or not _SUBJECT.fullmatch(text):
        raise InvalidValue("is not a provider account id (1-255 visible ASCII characters)")
    return text


_BY_KIND: dict[IdentityKind, Normaliser] = {
    IdentityKind.EMAIL: email,
    IdentityKind.PHONE: phone,
    IdentityKind.GOOGLE: provider_subject,
    IdentityKind.FACEBOOK: provider_subject,
    IdentityKind.PAYPAL: paypal_payer_id,
}


def identity(kind: IdentityKind, value: str) -> str:
    """The stored form of an identity value of ``kind``."""
    return _BY_KIND[kind](value)


# --- masking: what humans (customers, staff) see of an identifier -----------------------------------


def mask_email(normalised: str) -> str:
    """``jan.kowalski@gmail.com`` -> ``j***@gmail.com``."""
    local, _, domain = normalised.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(e164: str) -> str:
    """``+48600100200`` -> ``+48 *** *** 200``: country code and the last three digits."""
    country_code, national = _split_e164(e164)
    hidden = "*" * (len(national) - 3)
    groups = [hidden[max(0, end - 3) : end] for end in range(len(hidden), 0, -3)][::-1]
    return f"+{country_code} {' '.join([*groups, national[-3:]])}"


_DEFAULT_E164 = re.compile(rf"\+{_DEFAULT_COUNTRY_CODE}[1-9][0-9]{{8}}")


def _split_e164(e164: str) -> tuple[str, str]:
    """The country code and the national number of an E.164 number (``phone``'s result)."""
    if _DEFAULT_E164.fullmatch(e164):  # Polish, like most: no need to parse it again
        return str(_DEFAULT_COUNTRY_CODE), e164[len(str(_DEFAULT_COUNTRY_CODE)) + 1 :]
    parsed = phonenumbers.parse(e164, None)
    return str(parsed.country_code), str(parsed.national_number)


def mask_opaque(value: str) -> str:
    """Provider subjects and payer ids: only the last four characters, and none of a short one."""
    return f"***{value[-4:]}" if len(value) >= 8 else "***"


def mask(kind: IdentityKind, normalised: str) -> str:
    if kind is IdentityKind.EMAIL:
        return mask_email(normalised)
    if kind is IdentityKind.PHONE:
        return mask_phone(normalised)
    return mask_opaque(normalised)


# --- fuzzy keys: candidates for staff only, never authentication ---------------------------------------

_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def email_fuzzy_key(normalised: str) -> str:
    """Drop ``+tags`` everywhere and dots at Gmail, where they do not change the mailbox, and fold
    case fully (``straße`` and ``strasse`` meet here, never in the exact key)."""
    local, _, domain = normalised.casefold().rpartition("@")
    local = local.split("+", 1)[0] or local  # "+tag@" alone is a whole local part, not a tag
    if domain in _GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


# Letters NFKD does not decompose into a base letter plus a mark.
_FOLD = str.maketrans({"ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ø": "o", "Ø": "o", "ß": "ss"})
_NOT_WORD = re.compile(r"[^\w]+")


def name_key(name: str) -> str:
    """``Łukasz  Wójcik-Nowak`` and ``nowak lukasz wojcik`` share a key: folded, lower, sorted words."""
    folded = unicodedata.normalize("NFKD", name.translate(_FOLD))
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch)).casefold()
    words = [word for word in _NOT_WORD.split(plain) if word and not word.isdigit()]
    return " ".join(sorted(words))

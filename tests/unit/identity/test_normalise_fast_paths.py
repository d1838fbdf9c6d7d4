"""The fast paths of ``recovery.identity.normalise`` give exactly what the libraries give.

``email`` and ``phone`` decide the common shapes of address and number themselves and leave the rest
to email-validator and phonenumbers; ``mask_phone`` splits a Polish E.164 number without parsing it.
Each fast path must either give the library's answer or step aside (None); it must never accept what
the library refuses. The inputs below are drawn around the edges of the fast shapes on purpose.
"""

import string

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recovery.identity import normalise
from recovery.identity.normalise import InvalidValue

PROPERTY = settings(max_examples=500, deadline=None)

# --- emails --------------------------------------------------------------------------------------

_LOCAL_CHARS = (
    string.ascii_letters + string.digits + "._+-" + "!#$%&'*/=?^`{|}~\"\\ @<>()[],;:" + "łİß\u0301"
)
LOCAL_PARTS = st.one_of(
    st.text(st.sampled_from(_LOCAL_CHARS), min_size=0, max_size=70),
    st.from_regex(r"[A-Za-z0-9_+-]{1,40}(\.[A-Za-z0-9_+-]{1,20}){0,2}", fullmatch=True),
    st.sampled_from(["postmaster", "Abuse", "a" * 64, "a" * 65, ".a", "a.", "a..b", '"a"']),
)
# Domains a library has opinions about: special-use names, numeric top-level domains, Punycode and
# R-LDH labels, hyphens at label edges, over-long labels, IP literals, Unicode spellings.
_EDGE_DOMAINS = [
    "gmail.com", "GMAIL.COM", "wp.pl", "o2.pl", "example.com", "localhost", "a.localhost",
    "example.test", "test", "a.invalid", "x.local", "y.onion", "in-addr.arpa", "1.2.3.4",
    "a.123", "a.b1", "xn--80ak6aa92e.com", "xn--a.com", "ab--cd.com", "-a.com", "a-.com",
    "a..com", ".a.com", "a.com.", "[127.0.0.1]", "[IPv6:::1]", "ex_ample.com", "straße.de",
    "ⓐ.com", "\uff47\uff4d\uff41\uff49\uff4c.com", "a.com ", "" , "com", "a" * 63 + ".pl", "a" * 64 + ".pl",
    ("abcdefghij." * 23) + "pl",
]  # fmt: skip
_LABELS = st.from_regex(r"[A-Za-z0-9-]{1,12}", fullmatch=True)
DOMAINS = st.one_of(
    st.sampled_from(_EDGE_DOMAINS),
    st.builds(lambda labels: ".".join(labels), st.lists(_LABELS, min_size=1, max_size=4)),
)
ADDRESSES = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL_PARTS, DOMAINS)


def _reference_email(text):
    try:
        return normalise._validated_email(text)
    except InvalidValue:
        return None


@PROPERTY
@given(ADDRESSES)
@example("Jan.Kowalski+Sklep@GMail.com")
@example("postmaster@wp.pl")
@example("a@localhost")
@example("a@example.test")
@example("a@a.123")
@example("a@xn--a.com")
@example("a@ab--cd.com")
@example("a" * 65 + "@wp.pl")
def test_the_email_fast_path_gives_email_validators_answer_or_none(text):
    common = normalise._common_email(text)
    assert common is None or common == _reference_email(text), text


@PROPERTY
@given(ADDRESSES)
def test_email_gives_what_email_validator_gives(text):
    trimmed = text.strip()
    expected = _reference_email(trimmed) if len(trimmed) <= normalise.MAX_EMAIL_LENGTH else None
    try:
        assert normalise.email(text) == expected
    except InvalidValue:
        assert expected is None


@PROPERTY
@given(st.from_regex(r"[a-z0-9_+-]{1,20}(\.[a-z0-9_+-]{1,10}){0,2}", fullmatch=True))
def test_plain_addresses_at_ordinary_domains_take_the_fast_path(local):
    for domain in ("gmail.com", "WP.pl", "poczta.onet.pl"):
        address = f"{local}@{domain}"
        assert normalise._common_email(address) == address.lower()


# --- phones --------------------------------------------------------------------------------------

_COUNTRY = ["", "", "+48", "+48 ", "+48-", "+48  ", "0048", "48", "+4 8", "+49", "+"]
_SEPARATORS = ["", "", "", " ", "-", "  ", "--", ".", "/", "\u2013", "(", ")"]
NATIONAL_DIGITS = st.one_of(
    st.text(st.sampled_from(string.digits), min_size=7, max_size=11),
    st.builds(
        lambda rest: "48" + rest, st.text(st.sampled_from(string.digits), min_size=7, max_size=7)
    ),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(["50", "51", "53", "60", "66", "69", "72", "73", "88", "22", "12", "80"]),
        st.text(st.sampled_from(string.digits), min_size=7, max_size=7),
    ),
)


@st.composite
def phone_spellings(draw):
    digits = draw(NATIONAL_DIGITS)
    spelled = digits[0] + "".join(draw(st.sampled_from(_SEPARATORS)) + d for d in digits[1:])
    return draw(st.sampled_from(_COUNTRY)) + spelled


def _reference_phone(text):
    if len(text) > 32:  # refused before parsing (and so is any letter, which these never have)
        return None
    try:
        number = phonenumbers.parse(text, normalise.DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@PROPERTY
@given(phone_spellings())
@example("600 100 200")
@example("+48 600-100-200")
@example("486001002")
@example("060 010 020")
def test_the_phone_fast_path_reads_what_phonenumbers_reads(text):
    common = normalise._common_phone(text, normalise.DEFAULT_REGION)
    if common is None:
        return
    expected = _reference_phone(text)
    if phonenumbers.is_valid_number(common):
        assert phonenumbers.format_number(common, phonenumbers.PhoneNumberFormat.E164) == expected
    else:
        assert expected is None, text


@PROPERTY
@given(phone_spellings())
def test_phone_gives_what_phonenumbers_gives(text):
    expected = _reference_phone(text)
    try:
        assert normalise.phone(text) == expected
    except InvalidValue:
        assert expected is None


def test_the_phone_fast_path_is_only_for_the_default_region():
    assert normalise._common_phone("600100200", normalise.DEFAULT_REGION) is not None
    assert normalise._common_phone("600100200", "DE") is None
    assert normalise.phone("30 123456", "DE") == "+4930123456"


@pytest.mark.parametrize("text", ["+48 600 100 200", "600-100-200", "600100200", "+48600100200"])
def test_common_polish_spellings_take_the_phone_fast_path(text):
    assert normalise._common_phone(text, normalise.DEFAULT_REGION) is not None


# --- masks ---------------------------------------------------------------------------------------

PL_E164 = st.builds(
    lambda first, rest: f"+48{first}{rest}",
    st.sampled_from("123456789"),
    st.text(st.sampled_from(string.digits), min_size=8, max_size=8),
)


def _example_e164(region):
    number = phonenumbers.example_number(region)
    return number and phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


WORLD_E164 = st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)).map(_example_e164).filter(bool)


@PROPERTY
@given(st.one_of(PL_E164, WORLD_E164))
@example("+390612345678")  # Italy keeps a leading zero in the national number
def test_splitting_an_e164_number_agrees_with_phonenumbers(e164):
    parsed = phonenumbers.parse(e164, None)
    assert normalise._split_e164(e164) == (str(parsed.country_code), str(parsed.national_number))

"""Properties and examples of ``recovery.identity.normalise``.

Generated inputs are valid by construction; the examples pin the documented behaviour and the
rejections.
"""

import string

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.identity import normalise
from recovery.identity.normalise import IdentityKind, InvalidValue

# phonenumbers and email-validator have slow first calls (metadata loading), hence no deadline.
PROPERTY = settings(max_examples=200, deadline=None)

# --- strategies ----------------------------------------------------------------------------------

POLISH_LOWER = "ąćęłńóśźż"
POLISH_UPPER = "ĄĆĘŁŃÓŚŹŻ"
SURROUNDING_SPACE = st.text(st.sampled_from(" \t\r\n\u00a0"), max_size=3)


@st.composite
def recased(draw, text):
    """``text`` with the case of any subset of its characters swapped."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(ch.swapcase() if flip else ch for ch, flip in zip(text, flips, strict=True))


@st.composite
def interleaved(draw, text, separators):
    """``text`` with a separator drawn from ``separators`` before each character."""
    return "".join(draw(st.sampled_from(separators)) + ch for ch in text)


_ATOM = st.text(
    st.sampled_from(
        string.ascii_letters + string.digits + POLISH_LOWER + POLISH_UPPER + "!#$%&'*+/=?^_`{|}~-"
    ),
    min_size=1,
    max_size=10,
)
_LABEL = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True).filter(
    lambda label: "--" not in label
)
_TLD = st.sampled_from(["com", "pl", "org", "net", "eu", "de", "io", "info"])
EMAILS = st.builds(
    lambda atoms, labels, tld: ".".join(atoms) + "@" + ".".join([*labels, tld]),
    st.lists(_ATOM, min_size=1, max_size=3),
    st.lists(_LABEL, min_size=1, max_size=3),
    _TLD,
)

# Polish mobile ranges (5xx, 6xx, 7xx, 88x): nine digits, no trunk prefix.
PL_MOBILE_PREFIXES = ["50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88"]
PL_NATIONAL = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(PL_MOBILE_PREFIXES),
    st.text(st.sampled_from(string.digits), min_size=7, max_size=7),
)


def _example_e164(region):
    number = phonenumbers.example_number_for_type(
        region, phonenumbers.PhoneNumberType.MOBILE
    ) or phonenumbers.example_number(region)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


WORLD_E164 = st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)).map(_example_e164).filter(bool)
ANY_E164 = st.one_of(PL_NATIONAL.map(lambda national: "+48" + national), WORLD_E164)

ORDER_CORES = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "/._"), min_size=1, max_size=64
)
ORDER_SEPARATORS = ["", "", "", " ", "-", "--", " - ", "\t"]
PAYER_IDS = st.text(st.sampled_from(string.ascii_letters + string.digits), min_size=13, max_size=13)
SUBJECTS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=255)


# --- idempotence ---------------------------------------------------------------------------------


@PROPERTY
@given(EMAILS)
def test_email_of_a_valid_address_is_its_lower_case_form_and_idempotent(address):
    normalised = normalise.email(address)
    assert normalised == address.lower()
    assert normalise.email(normalised) == normalised


@PROPERTY
@given(PL_NATIONAL)
def test_phone_of_a_polish_number_is_idempotent(national):
    normalised = normalise.phone(national)
    assert normalised == "+48" + national
    assert normalise.phone(normalised) == normalised


@PROPERTY
@given(WORLD_E164)
def test_phone_is_idempotent_for_numbers_of_any_region(e164):
    assert normalise.phone(e164) == e164


@PROPERTY
@given(ORDER_CORES)
def test_order_number_is_idempotent(core):
    normalised = normalise.order_number(core)
    assert normalised == core.upper()
    assert normalise.order_number(normalised) == normalised


@PROPERTY
@given(PAYER_IDS, SURROUNDING_SPACE, SURROUNDING_SPACE)
def test_paypal_payer_id_is_upper_cased_trimmed_and_idempotent(payer_id, before, after):
    normalised = normalise.paypal_payer_id(before + payer_id + after)
    assert normalised == payer_id.upper()
    assert normalise.paypal_payer_id(normalised) == normalised


@PROPERTY
@given(SUBJECTS, SURROUNDING_SPACE, SURROUNDING_SPACE)
def test_provider_subject_is_only_trimmed_and_idempotent(subject, before, after):
    normalised = normalise.provider_subject(before + subject + after)
    assert normalised == subject  # case-sensitive: nothing but the surrounding space changes
    assert normalise.provider_subject(normalised) == normalised


# --- equivalent spellings ------------------------------------------------------------------------


@PROPERTY
@given(st.data(), EMAILS, SURROUNDING_SPACE, SURROUNDING_SPACE)
def test_email_ignores_case_and_surrounding_whitespace(data, address, before, after):
    variant = before + data.draw(recased(address)) + after
    assert normalise.email(variant) == normalise.email(address)


_PL_COUNTRY_SPELLINGS = ["", "+48", "+48 ", "+48-", "0048", "0048 ", "0048-"]


@PROPERTY
@given(st.data(), PL_NATIONAL, SURROUNDING_SPACE, SURROUNDING_SPACE)
def test_phone_spellings_of_a_polish_number_share_one_e164(data, national, before, after):
    country = data.draw(st.sampled_from(_PL_COUNTRY_SPELLINGS))
    digits = national[0] + data.draw(interleaved(national[1:], ["", "", " ", "-"]))
    result = normalise.phone(before + country + digits + after)

    assert result == "+48" + national
    assert result.startswith("+")
    parsed = phonenumbers.parse(result, None)
    assert phonenumbers.is_valid_number(parsed)
    assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == result


@PROPERTY
@given(st.data(), ORDER_CORES)
def test_order_number_ignores_spaces_dashes_and_case(data, core):
    variant = data.draw(interleaved(data.draw(recased(core)), ORDER_SEPARATORS))
    variant += data.draw(st.sampled_from(ORDER_SEPARATORS))
    assert normalise.order_number(variant) == normalise.order_number(core) == core.upper()


# --- masking -------------------------------------------------------------------------------------


@PROPERTY
@given(EMAILS)
def test_mask_email_shows_only_the_first_local_character_and_the_domain(address):
    normalised = normalise.email(address)
    local, _, domain = normalised.rpartition("@")
    assert normalise.mask_email(normalised) == f"{local[0]}***@{domain}"
    assert normalise.mask(IdentityKind.EMAIL, normalised) == f"{local[0]}***@{domain}"


@PROPERTY
@given(ANY_E164)
def test_mask_phone_shows_only_the_country_code_and_the_last_three_digits(e164):
    parsed = phonenumbers.parse(e164, None)
    national = e164.removeprefix(f"+{parsed.country_code}")
    masked = normalise.mask_phone(e164)

    country, _, rest = masked.partition(" ")
    assert country == f"+{parsed.country_code}"
    assert rest[-3:] == national[-3:]
    assert set(rest[:-3]) <= {"*", " "}, masked  # no other digit of the national number
    # Every other significant digit is hidden, not dropped.
    assert rest.count("*") == len(str(parsed.national_number)) - 3
    assert normalise.mask(IdentityKind.PHONE, e164) == masked


@PROPERTY
@given(st.one_of(PAYER_IDS.map(str.upper), SUBJECTS.filter(lambda subject: len(subject) >= 8)))
def test_mask_opaque_shows_only_the_last_four_characters(value):
    masked = normalise.mask_opaque(value)
    assert masked == "***" + value[-4:]
    assert len(masked) == 7  # the length of the value is not revealed either
    for kind in (IdentityKind.GOOGLE, IdentityKind.FACEBOOK, IdentityKind.PAYPAL):
        assert normalise.mask(kind, value) == masked


@pytest.mark.parametrize("value", ["1", "1234", "1234567"])
def test_mask_opaque_shows_nothing_of_a_short_value(value):
    assert normalise.mask_opaque(value) == "***"


@pytest.mark.parametrize("value", ["600-100-ADG", "600 100 200 ext 5", "+48 600 100 200 x12"])
def test_phone_with_letters_is_refused(value):
    with pytest.raises(InvalidValue):
        normalise.phone(value)


def test_typographic_dashes_separate_order_numbers():
    assert normalise.order_number("PL\u20132024\u2014001") == "PL2024001"


@pytest.mark.parametrize(("one", "other"), [("straße@example.de", "strasse@example.de")])
def test_two_mailboxes_that_differ_in_more_than_case_stay_two_exact_keys(one, other):
    """Only case is ignored in the exact key (mail goes to it); full folding is for fuzzy keys."""
    assert normalise.email(one) != normalise.email(other)
    assert normalise.email(one.capitalize().replace("ß", "ẞ")) == normalise.email(one)
    fuzzy = normalise.email_fuzzy_key
    assert fuzzy(normalise.email(one)) == fuzzy(normalise.email(other))


def test_a_local_part_that_is_only_a_tag_keeps_its_fuzzy_key():
    assert normalise.email_fuzzy_key("+tag@gmail.com") == "+tag@gmail.com"


def test_mask_email_documented_example():
    assert normalise.mask_email("jan.kowalski@gmail.com") == "j***@gmail.com"


def test_mask_phone_documented_example():
    assert normalise.mask_phone("+48600100200") == "+48 *** *** 200"


# --- fuzzy keys ----------------------------------------------------------------------------------

_GMAIL_SPELLINGS = ["gmail.com", "googlemail.com", "GMAIL.COM", "GoogleMail.com"]
_LOCAL_BASE = st.text(
    st.sampled_from(string.ascii_lowercase + string.digits), min_size=1, max_size=12
)
_TAG = st.text(st.sampled_from(string.ascii_lowercase + string.digits + "."), max_size=8).filter(
    lambda tag: ".." not in tag and not tag.endswith(".")
)


@PROPERTY
@given(st.data(), _LOCAL_BASE, st.sampled_from(_GMAIL_SPELLINGS), st.none() | _TAG)
def test_email_fuzzy_key_merges_gmail_dots_tags_and_googlemail(data, base, domain, tag):
    local = base[0] + data.draw(interleaved(base[1:], ["", "", "."]))
    local = data.draw(recased(local))
    if tag is not None:
        local += "+" + tag
    normalised = normalise.email(f"{local}@{domain}")

    assert normalise.email_fuzzy_key(normalised) == f"{base}@gmail.com"


_OTHER_DOMAINS = ["example.com", "wp.pl", "o2.pl", "gmail.pl", "notgmail.com", "gmail.com.pl"]


@PROPERTY
@given(
    st.lists(_LOCAL_BASE, min_size=2, max_size=3),
    st.sampled_from(_OTHER_DOMAINS),
    st.none() | _TAG,
)
def test_email_fuzzy_key_keeps_dots_outside_gmail_but_drops_tags(parts, domain, tag):
    dotted = ".".join(parts)
    local = dotted if tag is None else f"{dotted}+{tag}"
    key = normalise.email_fuzzy_key(normalise.email(f"{local}@{domain}"))

    assert key == f"{dotted}@{domain}"
    assert key != f"{''.join(parts)}@{domain}"


_DIACRITICS = {"a": "ą", "c": "ć", "e": "ę", "l": "ł", "n": "ń", "o": "ó", "s": "ś", "z": "źż"}
_NAME_WORDS = st.lists(
    st.text(st.sampled_from(string.ascii_lowercase), min_size=1, max_size=10),
    min_size=1,
    max_size=4,
)
_NAME_SEPARATORS = [" ", "  ", "-", " - ", "\t", "--", " \n "]


@st.composite
def polish_spelling(draw, word):
    """``word`` with any of its letters replaced by a Polish letter built on it, in any case."""
    letters = []
    for ch in word:
        if ch in _DIACRITICS and draw(st.booleans()):
            ch = draw(st.sampled_from(_DIACRITICS[ch]))
        letters.append(ch.upper() if draw(st.booleans()) else ch)
    return "".join(letters)


@settings(max_examples=100, deadline=None)
@given(st.data(), _NAME_WORDS)
def test_name_key_ignores_order_case_diacritics_and_separators(data, words):
    shuffled = data.draw(st.permutations(words))
    spelled = [data.draw(polish_spelling(word)) for word in shuffled]
    variant = data.draw(st.sampled_from(["", " ", "-", "  "]))
    for word in spelled:
        variant += word + data.draw(st.sampled_from(_NAME_SEPARATORS))

    assert normalise.name_key(variant) == normalise.name_key(" ".join(words))
    assert normalise.name_key(variant) == " ".join(sorted(words))


@pytest.mark.parametrize(
    ("polish", "plain"),
    [*zip(POLISH_LOWER, "acelnoszz", strict=True), *zip(POLISH_UPPER, "acelnoszz", strict=True)],
)
def test_name_key_folds_every_polish_letter(polish, plain):
    assert normalise.name_key(f"x{polish}x") == f"x{plain}x"


def test_name_key_documented_example():
    assert normalise.name_key("Łukasz  Wójcik-Nowak") == normalise.name_key("nowak lukasz wojcik")
    assert normalise.name_key("nowak lukasz wojcik") == "lukasz nowak wojcik"


# --- documented examples and rejections ----------------------------------------------------------


def test_order_number_documented_example():
    assert normalise.order_number("pl-2024 000 17") == "PL202400017"


def test_email_length_limit_is_254_characters():
    domain = ".".join(["a" * 60] * 4) + ".com"  # 247 characters
    assert normalise.email("b" * 6 + "@" + domain) == "b" * 6 + "@" + domain  # 254
    with pytest.raises(InvalidValue):
        normalise.email("b" * 7 + "@" + domain)  # 255


@pytest.mark.parametrize(
    "value",
    [
        "",
        "jan.kowalski.example.com",
        "jan.kowalski",
        "@example.com",
        "jan@",
        "jan kowalski@example.com",
        "jan@exam ple.com",
        "jan@@example.com",
        "jan..kowalski@example.com",
        "x@" + "a" * 250 + ".com",
        "x" * 255,
    ],
)
def test_email_rejects(value):
    with pytest.raises(InvalidValue):
        normalise.email(value)


INVALID_PHONES = [
    "12",
    "abc",
    "+48 123",
    "600 100 20",
    "+48 600 100 2000",
    "+99 600100200",
    "600100200600100200",
    "1" * 33,
]


@pytest.mark.parametrize("value", ["", "   ", "+48", *INVALID_PHONES])
def test_phone_rejects(value):
    with pytest.raises(InvalidValue):
        normalise.phone(value)


@pytest.mark.parametrize("value", INVALID_PHONES)
def test_phone_error_does_not_echo_the_value(value):
    with pytest.raises(InvalidValue) as caught:
        normalise.phone(value)
    assert value not in str(caught.value)


# No number, national or international, is valid with at most four digits (some six-digit
# Polish ones are: 640000); nor is any input
# longer than 32 characters.
_INVALID_PHONES = st.one_of(
    st.builds(
        lambda plus, rest: plus + rest,
        st.sampled_from(["", "+", "00", "+48 "]),
        st.text(st.sampled_from(string.digits + " -"), min_size=2, max_size=12),
        # Up to four digits: libphonenumber accepts some six-digit Polish numbers (e.g. 640000).
    ).filter(lambda value: sum(ch.isdigit() for ch in value) in range(1, 5)),
    st.text(st.sampled_from(string.digits + " -"), min_size=33, max_size=40).filter(
        lambda value: len(value.strip()) > 32
    ),
)


@settings(max_examples=100, deadline=None)
@given(_INVALID_PHONES)
def test_phone_error_never_echoes_a_rejected_value(value):
    with pytest.raises(InvalidValue) as caught:
        normalise.phone(value)
    assert value.strip() not in str(caught.value)


@pytest.mark.parametrize(
    "value", ["", "   ", "-", " - ", "#123", "PL#2024", "ZAMÓWIENIE1", "A+B", "A" * 65]
)
def test_order_number_rejects(value):
    with pytest.raises(InvalidValue):
        normalise.order_number(value)


def test_order_number_length_counts_after_removing_separators():
    assert normalise.order_number("-".join(["A" * 16] * 4)) == "A" * 64
    with pytest.raises(InvalidValue):
        normalise.order_number("-".join(["A" * 16] * 4) + "A")


INVALID_PAYER_IDS = [
    "",
    "ABCDEFGHIJKL",
    "ABCDEFGHIJKLMN",
    "ABCDEF GHIJKLM",
    "ABCDEFGHIJKL!",
    "ABCDEFGHIJKŁ",
]


@pytest.mark.parametrize("value", INVALID_PAYER_IDS)
def test_paypal_payer_id_rejects(value):
    with pytest.raises(InvalidValue):
        normalise.paypal_payer_id(value)


@pytest.mark.parametrize("value", [v for v in INVALID_PAYER_IDS if v])
def test_paypal_payer_id_error_does_not_echo_the_value(value):
    with pytest.raises(InvalidValue) as caught:
        normalise.paypal_payer_id(value)
    assert value not in str(caught.value)
    assert value.upper() not in str(caught.value)


@pytest.mark.parametrize(
    "value", ["", "   ", "1234 5678", "abc\tdef", "żółw123", "1" * 256, " " + "1" * 256 + " "]
)
def test_provider_subject_rejects(value):
    with pytest.raises(InvalidValue):
        normalise.provider_subject(value)


def test_provider_subject_accepts_255_characters():
    assert normalise.provider_subject("1" * 255) == "1" * 255


# --- dispatch ------------------------------------------------------------------------------------

IDENTITY_CASES = {
    IdentityKind.EMAIL: (" Jan.Kowalski@Example.COM ", "jan.kowalski@example.com"),
    IdentityKind.PHONE: ("600 100 200", "+48600100200"),
    IdentityKind.GOOGLE: (" 10769150350006150715113082367 ", "10769150350006150715113082367"),
    IdentityKind.FACEBOOK: (" AbCdEfGhIjKlM ", "AbCdEfGhIjKlM"),  # subjects keep their case
    IdentityKind.PAYPAL: (" abcdefghijklm ", "ABCDEFGHIJKLM"),
}


def test_identity_cases_cover_every_kind():
    assert set(IDENTITY_CASES) == set(IdentityKind)


@pytest.mark.parametrize("kind", list(IdentityKind))
def test_identity_dispatches_by_kind(kind):
    raw, expected = IDENTITY_CASES[kind]
    assert normalise.identity(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (IdentityKind.EMAIL, "600100200"),
        (IdentityKind.PHONE, "jan@example.com"),
        (IdentityKind.GOOGLE, "jan kowalski"),
        (IdentityKind.FACEBOOK, "jan kowalski"),
        (IdentityKind.PAYPAL, "10769150350006150715113082367"),
    ],
)
def test_identity_rejects_a_value_of_another_kind(kind, value):
    with pytest.raises(InvalidValue):
        normalise.identity(kind, value)


# --- regressions: bugs these tests found, fixed ------------------------------------------------


@pytest.mark.parametrize("value", ["ABCDEFGHIJKß", "ﬃABCDEFGHIJ", "\u0131BCDEFGHIJKLM"])
def test_paypal_payer_id_rejects_non_ascii_letters(value):
    with pytest.raises(InvalidValue):
        normalise.paypal_payer_id(value)


@pytest.mark.parametrize("value", ["STRAßE1", "ﬁ-2024", "\u01312024"])
def test_order_number_rejects_non_ascii_letters(value):
    with pytest.raises(InvalidValue):
        normalise.order_number(value)


def test_email_over_the_limit_once_case_folded_is_refused():
    domain = ".".join(["b" * 63, "c" * 63, "d" * 63, "e" * 49])
    address = "İ" + "a" * 10 + "@" + domain  # 254 bytes in UTF-8; case-folded it is 255
    with pytest.raises(InvalidValue, match="too long"):
        normalise.email(address)


def test_email_case_insensitive_for_greek_final_sigma():
    upper, lower = "\u0391\u03a3", "\u03b1\u03c3"  # Greek "ΑΣ" and its lower case
    assert lower.upper() == upper
    assert normalise.email(f"{upper}@example.com") == normalise.email(f"{lower}@example.com")


# --- no memory between calls (DESIGN §5.1) ---------------------------------------------------------


def test_normalising_a_value_met_before_does_the_same_work(monkeypatch):
    """A cache would answer an address or number it met before (an imported account's) faster than
    a new one, and the reset endpoints normalise what anyone types: the timing would tell."""
    calls = []
    original_email, original_parse = normalise.validate_email, phonenumbers.parse
    monkeypatch.setattr(
        normalise, "validate_email", lambda *a, **k: calls.append(a) or original_email(*a, **k)
    )
    monkeypatch.setattr(
        phonenumbers, "parse", lambda *a, **k: calls.append(a) or original_parse(*a, **k)
    )

    for _ in range(2):
        assert normalise.email("Zażółć@Gęślą.example") == "zażółć@gęślą.example"
        assert normalise.phone("(0048) 600-100-200") == "+48600100200"
        assert normalise.mask_phone("+12025550123") == "+1 * *** *** 123"

    assert len(calls) == 6  # each call did its own parsing

"""Rules and boundaries of ``recovery.accounts.password_policy``, and the bundled deny-list."""

import fnmatch
import string
import tomllib
import unicodedata
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recovery.accounts import password_policy
from recovery.accounts.password_policy import MAX_BYTES, MAX_LENGTH, MIN_LENGTH, check
from recovery.errors import WeakPassword

ROOT = Path(__file__).resolve().parents[3]
DATA_FILE = ROOT / "recovery" / "accounts" / "data" / "common-passwords.txt"
EMAIL = "alice.smith@example.com"
# Twelve characters, not on the list, unrelated to EMAIL.
STRONG_12 = "x7Kp2mQ9vL4t"

# The whole vocabulary of details: chosen from constants, they cannot carry what was submitted.
DETAILS = {
    f"Use at least {MIN_LENGTH} characters.",
    f"Use at most {MAX_LENGTH} characters.",
    "The password must not contain your email address.",
    "This password is too common and easy to guess; choose a different one.",
    "The password contains characters that cannot be used.",
}


def reason_for(password: str, emails: tuple[str, ...] = (EMAIL,)) -> str | None:
    """The ``reason`` ``check`` rejects ``password`` for, or ``None`` when it is accepted."""
    try:
        check(password, emails=emails)
    except WeakPassword as error:
        detail, reason = error.detail, error.reason
    else:
        return None
    assert detail in DETAILS
    return reason


# --- the bundled list ------------------------------------------------------------------------------


def test_list_has_at_least_ten_thousand_entries() -> None:
    assert len(password_policy.common_passwords()) >= 10_000


def test_list_file_is_lower_cased_deduplicated_and_small() -> None:
    raw = DATA_FILE.read_bytes()
    lines = raw.decode("utf-8").split("\n")
    assert lines[-1] == ""  # ends with a newline
    entries = lines[:-1]
    assert all(entries), "no blank lines"
    assert len(entries) == len(set(entries))
    assert all(entry == entry.lower() for entry in entries)
    assert all(entry == unicodedata.normalize("NFKC", entry) for entry in entries)
    assert len(raw) < 1_000_000


def test_list_keeps_entries_of_every_length() -> None:
    lengths = {len(entry) for entry in password_policy.common_passwords()}
    assert {1, 2, 3, 4, 6, 8, 12, 16, 20} <= lengths


@pytest.mark.parametrize(
    "entry", ["password1234", "qwerty123456", "1qaz2wsx3edc", "123qweasdzxc", "q1w2e3r4t5y6"]
)
def test_list_holds_long_common_passwords(entry: str) -> None:
    assert len(entry) >= MIN_LENGTH
    assert entry in password_policy.common_passwords()
    assert reason_for(entry) == "common"


def test_list_is_loaded_once() -> None:
    assert password_policy.common_passwords() is password_policy.common_passwords()


def test_list_is_package_data() -> None:
    # Without this pattern a wheel install would lack the file and every check would fail.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["recovery"]
    relative = DATA_FILE.relative_to(ROOT / "recovery").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


# --- length ----------------------------------------------------------------------------------------


def test_boundary_at_the_minimum() -> None:
    assert reason_for(STRONG_12[:11]) == "too_short"
    assert reason_for(STRONG_12) is None


def test_boundary_at_the_maximum() -> None:
    longest = (STRONG_12 * 11)[:MAX_LENGTH]
    assert reason_for(longest) is None
    assert reason_for(longest + "z") == "too_long"


@pytest.mark.parametrize("password", ["", " ", "short"])
def test_short_passwords_are_rejected(password: str) -> None:
    assert reason_for(password) == "too_short"


def test_whitespace_is_allowed_and_counts() -> None:
    assert reason_for("plum kite oak river") is None
    assert reason_for("plum kite o") == "too_short"  # 11 characters
    assert reason_for("plum kite oa") is None  # 12


def test_no_composition_rules() -> None:
    for password in ["zebrakettlemoon", "ZEBRAKETTLEMOON", "471958203641", "łódźżółćgęśl"]:
        assert reason_for(password) is None, password


def test_length_counts_code_points_after_nfkc() -> None:
    # "e" + COMBINING ACUTE ACCENT composes to one "é": 22 code points typed, 11 characters.
    decomposed = "e\u0301" * 11
    assert len(decomposed) == 22
    assert reason_for(decomposed) == "too_short"
    assert reason_for("e\u0301" * 12) is None
    # The "fi" ligature expands to two characters: 6 typed, 12 counted.
    assert reason_for("\ufb01" * 6) is None


def test_four_byte_characters_fit_up_to_the_maximum() -> None:
    emoji = "\U0001f600" * MAX_LENGTH
    assert len(emoji.encode()) == MAX_BYTES
    assert reason_for(emoji) is None


def test_byte_cap_applies_to_the_input_as_typed() -> None:
    # Decomposed Hangul: three 3-byte jamo compose into one syllable, so 60 syllables are
    # 60 characters after NFKC but 540 bytes as submitted, over the 512-byte cap on hashing work.
    syllable = "\u1112\u1161\u11ab"  # 한
    typed = syllable * 60
    assert len(unicodedata.normalize("NFKC", typed)) == 60
    assert len(typed.encode()) > MAX_BYTES
    assert reason_for(typed) == "too_long"
    assert reason_for(unicodedata.normalize("NFKC", typed)) is None


def test_lone_surrogates_are_refused_not_crashed_on() -> None:
    assert reason_for("\ud800" * MIN_LENGTH) == "invalid_characters"


# --- the list, case and normalisation -------------------------------------------------------------------


@pytest.mark.parametrize("password", ["PASSWORD1234", "PassWord1234", "Qwerty123456"])
def test_list_match_ignores_case(password: str) -> None:
    assert reason_for(password) == "common"


def test_list_match_applies_nfkc() -> None:
    full_width = "ｐａｓｓｗｏｒｄ１２３４"  # noqa: RUF001 - the point of the test
    assert unicodedata.normalize("NFKC", full_width) == "password1234"
    assert reason_for(full_width) == "common"


@pytest.mark.parametrize(
    ("password", "stem"),
    [
        ("sunshine2024", "sunshine"),
        ("Dragon123456", "dragon"),
        ("love12345678", "love"),
        ("baseball1987", "baseball"),
    ],
)
def test_listed_password_plus_trailing_digits_is_common(password: str, stem: str) -> None:
    common = password_policy.common_passwords()
    assert password.lower() not in common, "must be caught by the digits rule, not the list"
    assert stem in common
    assert reason_for(password) == "common"


def test_trailing_digits_rule_needs_a_stem_of_four_characters() -> None:
    common = password_policy.common_passwords()
    assert "abc" in common
    assert "abc947261038" not in common
    assert reason_for("abc947261038") is None


@pytest.mark.parametrize("password", ["2024sunshine", "sunshine2024!", "sunshine-2024x"])
def test_only_trailing_digits_are_stripped(password: str) -> None:
    assert "sunshine" in password_policy.common_passwords()
    assert reason_for(password) is None


# --- email -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["alice.smith-rocks", "I am ALICE.SMITH ok", "my-Alice.Smith1234"]
)
def test_password_containing_the_local_part_is_rejected(password: str) -> None:
    assert reason_for(password) == "contains_email"


def test_local_part_matches_case_insensitively_and_after_nfkc() -> None:
    assert reason_for("xxALICE.SMITHxx", emails=("Alice.Smith@Example.COM",)) == "contains_email"
    assert reason_for("xxａｌｉｃｅ.smithxx") == "contains_email"  # noqa: RUF001


def test_any_of_the_emails_counts() -> None:
    emails = ("someone@example.com", "bobby@shop.example")
    assert reason_for("greatbobbytables", emails=emails) == "contains_email"


def test_short_local_part_is_not_a_rule() -> None:
    assert reason_for("jo-likes-long-walks", emails=("jo@example.com",)) is None
    assert reason_for("bob-likes-long-walks", emails=("bob@example.com",)) == "contains_email"


def test_password_equal_to_the_email_is_rejected_even_with_a_short_local_part() -> None:
    assert reason_for("JO@example.com", emails=("jo@example.com",)) == "contains_email"


def test_the_domain_alone_is_allowed() -> None:
    assert reason_for("example-dot-com-fan") is None


def test_without_emails_only_the_other_rules_apply() -> None:
    assert reason_for("alice.smith-rocks", emails=()) is None


def test_a_single_string_is_not_taken_for_a_list_of_emails() -> None:
    with pytest.raises(TypeError):
        check(STRONG_12, emails=EMAIL)


# --- the error -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("hunter2", "too_short"),
        ("y" * (MAX_LENGTH + 1), "too_long"),
        ("password1234", "common"),
        ("sunshine2024", "common"),
        ("alice.smith-rocks", "contains_email"),
        ("alice.smith@example.com", "contains_email"),
    ],
)
def test_error_never_contains_the_password(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword) as caught:
        check(password, emails=(EMAIL,))
    error = caught.value
    assert error.reason == reason
    assert error.code == "weak_password"
    assert error.extra == {"reason": reason}
    for text in (str(error), error.detail, repr(error.args)):
        assert password not in text
        assert EMAIL not in text
        assert "alice" not in text.lower()


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=()), max_size=200))
def test_any_input_passes_or_fails_with_a_fixed_detail(password: str) -> None:
    # reason_for asserts the detail is one of the constants, so nothing submitted can leak.
    assert reason_for(password) in {
        None,
        "too_short",
        "too_long",
        "common",
        "contains_email",
        "invalid_characters",
    }


@settings(deadline=None)  # the first example loads the list
@given(
    password=st.text(st.sampled_from(string.ascii_letters), min_size=12, max_size=64),
    local=st.text(st.sampled_from(string.ascii_lowercase), min_size=3, max_size=20),
)
def test_random_letters_off_the_list_and_without_the_email_pass(password: str, local: str) -> None:
    assume(password.lower() not in password_policy.common_passwords())
    assume(local not in password.lower())
    check(password, emails=(f"{local}@example.com",))

"""The language a browser prefers, among the two we speak."""

import pytest

from recovery.i18n import preferred


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("pl-PL,pl;q=0.9,en-US;q=0.8", "pl"),
        ("en-GB,en;q=0.9", "en"),
        ("en;q=0.1, pl;q=0.9", "pl"),  # by weight, not by order
        ("de-DE,fr;q=0.5, en;q=0.2", "en"),
        ("de-DE,fr;q=0.5", None),
        ("", None),
        ("*", "pl"),  # any language: our first
    ],
)
def test_the_preferred_locale_of_an_accept_language_header(header, expected):
    assert preferred(header) == expected

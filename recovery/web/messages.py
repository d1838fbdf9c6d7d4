"""What the pages say when something goes wrong: one translated sentence per error code."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from recovery.errors import RecoveryError, ValidationFailed, WeakPassword

_BY_CODE: dict[str, LazyString] = {
    "invalid_token": _l(
        "This link or code is not valid. It may have been used or replaced by a newer one."
    ),
    "token_expired": _l("This link or code has expired. Ask for a new one."),
    "too_many_attempts": _l("Too many wrong codes. Ask for a new code."),
    "rate_limited": _l("Too many attempts. Wait a few minutes and try again."),
    "flow_expired": _l("This attempt has expired. Please start again."),
    "flow_finished": _l("This attempt has finished already. Start again if you need to."),
    "node_not_current": _l("That step is already behind you; here is where you are now."),
    "method_unavailable": _l(
        "This way of getting back in is not available yet. Please choose another."
    ),
    "not_found": _l("We could not find that. Please start again."),
    "validation_failed": _l("Please check what you entered."),
    "csrf": _l("The form expired. Please try again."),
}

_WEAK: dict[str, LazyString] = {
    "too_short": _l("Use at least 12 characters."),
    "too_long": _l("Use at most 128 characters."),
    "common": _l("This password is too common. Choose one that is harder to guess."),
    "contains_email": _l("Do not use your email address in the password."),
    "invalid_characters": _l("The password contains characters we cannot store."),
}

_FIELDS: dict[str, LazyString] = {
    "email": _l("Enter a valid email address."),
    "value": _l("Please check what you entered."),
}

GENERIC = _l("Something went wrong. Please try again.")

#: The heading of an error page, by its HTTP status; other statuses get ``GENERIC_TITLE``.
_TITLES: dict[int, LazyString] = {
    404: _l("Page not found"),
    405: _l("This action is not available here"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong on our side"),
}

GENERIC_TITLE = _l("Something went wrong")


def title_for(status: int) -> str:
    """The heading of the error page with HTTP ``status``, in the current language."""
    return str(_TITLES.get(status, GENERIC_TITLE))


def for_code(code: str) -> str:
    """The sentence for an error ``code`` in the current language."""
    return str(_BY_CODE.get(code, GENERIC))


def for_error(error: RecoveryError) -> str:
    """The sentence a person sees for ``error``, in the current language. Never echoes input."""
    if isinstance(error, WeakPassword):
        return str(_WEAK.get(error.reason, _BY_CODE["validation_failed"]))
    if isinstance(error, ValidationFailed) and error.errors:
        return str(_FIELDS.get(error.errors[0].field, _BY_CODE["validation_failed"]))
    return str(_BY_CODE.get(error.code, GENERIC))

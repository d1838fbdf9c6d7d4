"""The words of the decision tree, by message id (the tree itself holds only ids)."""

from __future__ import annotations

import functools

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

MESSAGES: dict[str, LazyString] = {
    "yes": _l("Yes"),
    "no": _l("No"),
    "didnt_work": _l("That didn't work"),
    "q_order_emails": _l("Do you receive emails from us about your orders?"),
    "p_email": _l("Enter the email address where you receive our order emails."),
    "p_email_code": _l(
        "If this address belongs to an account, we have sent it a link and a 6-digit code. "
        "Enter the code, or open the link in the email."
    ),
    "p_new_password": _l("Choose a new password."),
    "o_skip_password": _l("Continue without a password"),
    "q_paypal_guest": _l("Did you pay with PayPal without creating an account?"),
    "p_paypal_login": _l("Log in with PayPal, or use the email address of your PayPal account."),
    "o_paypal_email": _l("Use my PayPal email address"),
    "p_paypal_email": _l("Enter the email address of your PayPal account."),
    "q_social": _l("Did you sign in with Facebook, Google or your mobile phone?"),
    "o_google": _l("Google"),
    "o_facebook": _l("Facebook"),
    "o_phone": _l("My mobile phone"),
    "o_none": _l("None of these"),
    "p_google_login": _l("Sign in with Google to get back into your account."),
    "p_facebook_login": _l("Sign in with Facebook to get back into your account."),
    "p_phone": _l("Enter your mobile phone number."),
    "p_sms_code": _l(
        "If this number belongs to an account, we have sent it a 6-digit code. Enter it here."
    ),
    "p_help": _l("Tell us what happened and we will answer within 24 hours."),
    "p_help_sent": _l("We have your request. You will hear from us within 24 hours."),
    "p_done": _l("You are back in. You can now sign in to the shop."),
}


def text(message_id: str) -> str:
    """The message in the current locale."""
    return str(MESSAGES[message_id])


@functools.lru_cache(maxsize=1024)
def text_in(message_id: str, locale: str) -> str:
    """The message in ``locale`` (kept: the catalogues do not change while the process runs)."""
    with force_locale(locale):
        return text(message_id)

"""Languages: Polish and English. Every user-facing string goes through these helpers."""

from __future__ import annotations

import functools

from flask import Flask, g, request
from flask_babel import Babel, get_locale, refresh
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LOCALES = ("pl", "en")
DEFAULT_LOCALE = "pl"

babel = Babel()


def select_locale() -> str:
    """The flow's language when one is walked, then ``?lang=``, then the browser's preference."""
    chosen = g.get("locale")
    if chosen in LOCALES:
        return str(chosen)
    if not request:
        return DEFAULT_LOCALE
    environ = request.environ
    asked = request.args.get("lang") if environ.get("QUERY_STRING") else None
    if asked in LOCALES:
        return str(asked)
    return preferred(environ.get("HTTP_ACCEPT_LANGUAGE", "")) or DEFAULT_LOCALE


@functools.lru_cache(maxsize=512)
def preferred(accept_language: str) -> str | None:
    """The locale an ``Accept-Language`` header prefers, if we speak one. Browsers send a handful
    of distinct headers, so each is parsed once, not on every request."""
    best = parse_accept_header(accept_language, LanguageAccept).best_match(LOCALES)
    return str(best) if best else None


def use_locale(locale: str) -> None:
    """Speak ``locale`` for the rest of the request (Flask-Babel caches its first answer)."""
    g.locale = supported(locale)
    refresh()


def supported(locale: str | None) -> str:
    """``locale`` if we speak it, else the default."""
    return locale if locale in LOCALES else DEFAULT_LOCALE


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, default_locale=DEFAULT_LOCALE)
    app.jinja_env.globals["get_locale"] = get_locale

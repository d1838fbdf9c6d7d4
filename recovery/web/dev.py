"""Development-only pages: ``/dev/mailbox``, where a newcomer reads the mail the service wrote.

Registered by ``create_app`` only when ``RECOVERY_ENV=development`` (everywhere else the URLs are 404):
the mailbox shows reset links and codes to whoever opens it.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, current_app, render_template
from markupsafe import Markup, escape

from recovery.db import db
from recovery.outbox.services import OutboxService

blueprint = Blueprint("dev", __name__, url_prefix="/dev")

MAILBOX_SIZE = 50
_URL = re.compile(r"https?://[^\s<>\"']+")
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'"


def init_app(app: Flask) -> None:
    if app.config["ENV"] == "development":
        app.register_blueprint(blueprint)


@blueprint.get("/mailbox")
def mailbox() -> str:
    """The newest mail in the outbox, whatever its status: pending rows are already "delivered"."""
    messages = OutboxService(db.session).mailbox(MAILBOX_SIZE)
    return render_template(
        "dev/mailbox.html", messages=messages, transport=current_app.config["MAIL_TRANSPORT"]
    )


@blueprint.get("/mailbox/<int:message_id>")
def message(message_id: int) -> str:
    """One mail: headers, the text part with its links clickable, the HTML part in a sandbox."""
    mail = OutboxService(db.session).mail(message_id)
    return render_template(
        "dev/message.html",
        message=mail,
        text=linkify(mail.payload.get("text", "")),
        html=_links_open_outside(mail.payload.get("html", "")),
    )


def linkify(text: str) -> Markup:
    """``text`` escaped, with every http(s) URL in it turned into a link."""
    parts: list[str] = []
    position = 0
    for found in _URL.finditer(text):
        url = found.group(0).rstrip(_TRAILING)
        parts.append(escape(text[position : found.start()]))
        parts.append(Markup('<a href="{0}" target="_blank" rel="noopener">{0}</a>').format(url))
        position = found.start() + len(url)
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def _links_open_outside(html: str) -> str:
    # The HTML part is shown in a sandboxed iframe (no scripts, no forms); its links open in a new,
    # unsandboxed tab so the reset page works as it would from a mail client.
    base = '<base target="_blank">'
    if _HEAD.search(html):
        return _HEAD.sub(lambda m: m.group(0) + base, html, count=1)
    return base + html

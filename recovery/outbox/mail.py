"""Mail as the outbox keeps it: rendered once from templates, rebuilt as a MIME message to send.

Templates live in ``recovery/templates/mail/``, one pair per message and locale:
``<name>.<locale>.txt`` (the plain-text part) and ``<name>.<locale>.html`` (the HTML part). The
subject is the ``{% block subject %}`` of the text template; the text template extends ``base.txt``
(which prints only the ``body`` block and the signature, so the subject never leaks into the text),
and the HTML template extends ``base.html`` (which gets the rendered ``subject`` for its ``<title>``).
Rendering is strict: a missing variable is an error at enqueue time, not a blank in a customer's mail.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formatdate
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

#: Where the real templates are (each feature adds its own pairs next to ``base.html``).
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "mail"
LOCALES = ("pl", "en")
#: For a locale we have no templates for: English is the language our non-Polish customers share.
FALLBACK_LOCALE = "en"

# RFC 5322 dot-atom: what may stand on the left of a Message-ID's "@" without quoting.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def normalise_locale(locale: str | None) -> str:
    """``pl``, ``pl-PL``, ``pl_PL`` -> ``pl``; a language we have no templates for -> ``en``."""
    language = re.split(r"[-_]", (locale or "").strip(), maxsplit=1)[0].lower()
    return language if language in LOCALES else FALLBACK_LOCALE


class MailRenderer:
    """Renders a message's subject, text and HTML in one locale from the template folders."""

    def __init__(self, search_path: Sequence[str | Path] = (TEMPLATE_DIR,)) -> None:
        self.environment = Environment(
            loader=FileSystemLoader([str(path) for path in search_path]),
            # HTML is escaped (a customer's name is data, not markup); the text part is not.
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, template: str, locale: str, context: Mapping[str, Any]) -> RenderedMail:
        """Render ``template`` in ``locale`` (normalised, see ``normalise_locale``) with ``context``.

        Raises ``jinja2.TemplateNotFound`` for a missing pair and ``jinja2.UndefinedError`` for a
        variable the context lacks; ``ValueError`` when the text template has no subject.
        """
        if not re.fullmatch(r"[a-z0-9_]+", template):
            raise ValueError(f"template names are lower-case words, got {template!r}")
        locale = normalise_locale(locale)
        variables = {**context, "locale": locale}
        text_template = self.environment.get_template(f"{template}.{locale}.txt")
        block = text_template.blocks.get("subject")
        subject = ""
        if block is not None:
            subject = " ".join("".join(block(text_template.new_context(variables))).split())
        if not subject:
            raise ValueError(f"{template}.{locale}.txt has no {{% block subject %}}")
        text = text_template.render(variables)
        html = self.environment.get_template(f"{template}.{locale}.html").render(
            {**variables, "subject": subject}
        )
        return RenderedMail(subject=subject, text=text, html=html)


def message_id_for(idempotency_key: str, mail_from: str) -> str:
    """The ``Message-ID`` of the mail with this key: the same on every attempt.

    After a crash between the SMTP server's "250 accepted" and our commit the mail is sent again;
    mail systems (and people) recognise the duplicate by its identical Message-ID.
    """
    left = idempotency_key
    if not _DOT_ATOM.fullmatch(left):
        # Readable, and still unique: the digest tells apart keys that read alike ("a:b", "a/b").
        readable = re.sub(r"[^A-Za-z0-9-]+", ".", idempotency_key).strip(".")[:64]
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
        left = f"{readable}.{digest}" if readable else digest
    header = default_policy.header_factory("From", mail_from)
    addresses = getattr(header, "addresses", ())
    domain = addresses[0].domain if addresses and addresses[0].domain else "localhost"
    return f"<{left}@{domain}>"


def build_message(payload: Mapping[str, Any]) -> EmailMessage:
    """The MIME message (text and HTML alternatives) for a mail row's ``payload``."""
    message = EmailMessage()
    message["From"] = payload["from"]
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = payload["message_id"]
    # RFC 3834: machine-generated, so vacation responders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    # After the parts: setting content drops the Content-* headers set before it.
    message["Content-Language"] = payload.get("locale", FALLBACK_LOCALE)
    return message

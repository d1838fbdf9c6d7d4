"""Browser tests: Debian's Chromium, driven by Playwright, against the app on a real port.

The app runs in a werkzeug server thread on 127.0.0.1 with a database of its own (a migrated SQLite
file, or a fresh PostgreSQL database in the PostgreSQL pass) and sends its mail over SMTP to an
aiosmtpd server on 127.0.0.1, so a test reads the mail a customer would get. Chromium is Debian's
package (``make browser`` installs it), never a Playwright download. Without it the tests skip on a
developer's machine and fail in CI (``CI=true``), where they must run.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page, Route
from werkzeug.serving import make_server

from recovery import migrate
from recovery.db import db
from recovery.extensions import limiter
from tests import factories
from tests.conftest import _fresh_database, fresh_limits, make_app
from tests.integration.outbox.conftest import SmtpServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Every request that does not go to 127.0.0.1 is aborted (and recorded, so a test can say none
#: was even tried): the pages must work with nothing from the outside world.
OUTSIDE = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
MAIL_FROM = "Shop help <help@shop.example>"


# -- Chromium ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options, pointed at Debian's Chromium (checked here first)."""
    if not os.access(CHROMIUM, os.X_OK):
        problem = (
            f"{CHROMIUM} is missing: `make browser` installs Debian's chromium "
            "(apt-get install --no-install-recommends chromium, as root)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; CI must run the browser tests", pytrace=False)
        pytest.skip(problem)
    return {
        "headless": True,  # --headed on the command line still wins
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": CHROMIUM_ARGS,
    }


# -- the app on a real port ----------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    app: Flask
    smtp: SmtpServer

    def customer(self, locale: str) -> str:
        """A new active customer with one verified address (returned) who speaks ``locale``."""
        address = f"customer-{uuid.uuid4().hex[:8]}@example.com"
        with self.app.app_context():
            factories.account(None, ("email", address, True), locale=locale)
        return address

    def deliver_mail(self) -> None:
        """Run the outbox worker once, as ``recovery worker --once`` does in production."""
        with self.app.app_context():  # the `recovery` command pushes one; the test runner does not
            result = self.app.test_cli_runner().invoke(args=["worker", "--once"])
        assert result.exit_code == 0, result.output
        assert " 0 dead" in result.output and " 0 to retry" in result.output, result.output

    def mail_to(self, address: str) -> EmailMessage:
        """The one mail the SMTP server received for ``address``."""
        found = [
            email.message_from_bytes(envelope.content, policy=email.policy.default)
            for envelope in self.smtp.inbox.envelopes
            if address in envelope.rcpt_tos
        ]
        assert len(found) == 1, f"{len(found)} mails to {address}"
        message = found[0]
        assert isinstance(message, EmailMessage)
        return message


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    smtp = SmtpServer().start()
    # A generator (typed as an iterator): closing it drops the PostgreSQL database.
    databases = cast(Generator[str], _fresh_database(tmp_path_factory, "browser"))
    url = next(databases)
    try:
        migrate.upgrade(url)
        # Bind first: the app must know its own address (links in mail, allowed return_to).
        server = make_server("127.0.0.1", 0, _not_ready, threaded=True)
        base = f"http://127.0.0.1:{server.server_port}"
        app = make_app(
            url,
            PUBLIC_URL=base,
            RETURN_TO_ORIGINS=base,
            SMTP_URL=smtp.url,
            MAIL_TRANSPORT="smtp",
            MAIL_FROM=MAIL_FROM,
        )
        server.app = app
        thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
        thread.start()
        try:
            yield LiveServer(base, app, smtp)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            with app.app_context():
                db.dispose()
            pool = getattr(getattr(limiter.storage, "storage", None), "connection_pool", None)
            if pool is not None:
                pool.disconnect()
    finally:
        databases.close()
        smtp.stop()


def _not_ready(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    """pytest-playwright's base URL (``page.goto("/recover")``); defining it here also replaces the
    plugin's fallback fixture, which pytest 9 warns about."""
    return live_server.url


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """The live server with empty rate-limit counters (every walk comes from 127.0.0.1)."""
    fresh_limits()
    return live_server


# -- pages ---------------------------------------------------------------------------------------------


@dataclass
class Tab:
    """A browser context speaking one language, with what it tried to fetch from outside."""

    context: BrowserContext
    page: Page
    blocked: list[str]
    errors: list[str]

    def new_page(self) -> Page:
        page = self.context.new_page()
        self._watch(page)
        return page

    def _watch(self, page: Page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
def open_tab(new_context: Callable[..., BrowserContext]) -> Callable[[str], Tab]:
    """``open_tab("pl")``: a fresh browser (no cookies) whose user speaks Polish, phone-sized."""

    def open_(lang: str) -> Tab:
        context = new_context(
            locale={"pl": "pl-PL", "en": "en-GB"}[lang], viewport=PHONE, device_scale_factor=1
        )
        context.set_default_timeout(5_000)
        blocked: list[str] = []

        def refuse(route: Route) -> None:
            blocked.append(route.request.url)
            route.abort()

        context.route(OUTSIDE, refuse)
        tab = Tab(context, context.new_page(), blocked, [])
        tab._watch(tab.page)
        return tab

    return open_

"""The hosted wizard: ``/recover`` walks the tree, ``/recover/reset`` sets a password from a link.

Server-rendered, works without JavaScript, CSRF on every form. It calls the same services as the
JSON API and holds no rules of its own: it parses a form, calls one service, and renders. The flow
id lives in the signed session cookie, so it never appears in a URL, a log or a Referer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError

from recovery.config import origin_of
from recovery.db import db, utcnow
from recovery.errors import RecoveryError
from recovery.flows import messages
from recovery.flows.models import FlowStatus, RecoveryFlow
from recovery.flows.services import Step
from recovery.flows.tree import DIDNT_WORK, NodeType
from recovery.i18n import LOCALES, select_locale, use_locale
from recovery.ratelimits import PER_IP, answer_limits, answer_of, limited
from recovery.web.messages import for_code, for_error, title_for
from recovery.wiring import flow_service, reset_service

blueprint = Blueprint("recover", __name__, url_prefix="/recover")


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.session_interface = CookieSessions()


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session (the wizard keeps its flow id in it), opened without building
    a signer for a request that sent no session cookie: every API call, whose session starts empty
    either way."""

    def open_session(self, app: Flask, incoming: Request) -> SecureCookieSession | None:
        if app.secret_key and (
            "HTTP_COOKIE" not in incoming.environ  # no cookies at all: nothing to parse
            or self.get_cookie_name(app) not in incoming.cookies
        ):
            return self.session_class()
        return super().open_session(app, incoming)


@blueprint.after_request
def _page_headers(response: Response) -> Response:
    # Reset links carry their token in the URL: never leak it in a Referer, never cache the page,
    # never let another site frame the forms.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # A form's post may end in a redirect to the shop (return_to, or the default): browsers hold
    # redirects after a post to form-action too.
    shop = {
        *current_app.config["RETURN_TO_ORIGINS"],
        origin_of(current_app.config["DEFAULT_RETURN_TO"]),
    }
    targets = " ".join(sorted(origin for origin in shop if origin))
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {targets}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _commit(action: Callable[[], Any]) -> Any:
    """The request boundary of a page: ``action`` in one unit of work."""
    with db.transaction():
        return action()


def _flow() -> RecoveryFlow | None:
    """The session's flow; none once it expired, finished or not (a finished walk is shown until
    its time is up, then the next visit starts anew)."""
    flow_id = session.get("flow")
    if not isinstance(flow_id, str):
        return None
    try:
        flow = flow_service().get(flow_id)
    except RecoveryError:
        flow = None
    if flow is not None and flow.status is not FlowStatus.ACTIVE and flow.expires_at <= utcnow():
        flow = None
    if flow is None:
        session.pop("flow", None)
    return flow


def _wizard_locale() -> str:
    """The language of the session's walk (kept in the session: an error page must not need the
    database), else ``select_locale``'s."""
    kept = session.get("locale")
    return kept if isinstance(kept, str) and kept in LOCALES else select_locale()


#: The pages of the walk itself; the mailed link's pages carry their own ``?lang``.
_WIZARD_PATHS = ("/recover", "/recover/done")


def _page_locale() -> str:
    """The language of a page this module renders outside a step: the walk's on its pages."""
    return _wizard_locale() if request.path.rstrip("/") in _WIZARD_PATHS else select_locale()


def _language(flow: RecoveryFlow | None) -> None:
    """Speak the flow's language; ``?lang=`` switches it (and the flow's, so its mail follows)."""
    asked = request.args.get("lang")
    if flow is not None:
        if asked in LOCALES and asked != flow.locale:
            flow.locale = asked
            db.session.commit()
        use_locale(flow.locale)
        session["locale"] = flow.locale
    elif asked in LOCALES:
        use_locale(asked)


def _render(step: Step | None, error: str | None = None, status: int = 200) -> tuple[str, int]:
    node = step.node if step else None
    return (
        render_template(
            "web/recover.html",
            step=step,
            node=node,
            types=NodeType,
            text=messages.text,
            didnt_work=DIDNT_WORK,
            error=error,
        ),
        status,
    )


@blueprint.get("")
@limited(PER_IP)
def wizard() -> Any:
    """Show the flow's current step, starting a flow on the first visit, when the shop sends
    the person with a ``return_to``, or with ``?restart`` (which keeps the walk's language and
    ``return_to``)."""
    flow = _flow()
    if flow is None or "restart" in request.args or "return_to" in request.args:
        locale = request.args.get("lang") if request.args.get("lang") in LOCALES else None
        locale = locale or (flow.locale if flow is not None else _wizard_locale())
        return_to = request.args.get("return_to") or (flow.return_to if flow else None)
        step = _commit(lambda: flow_service().start(locale, return_to))
        session["flow"], session["locale"] = step.flow.id, locale
        return redirect(url_for("recover.wizard"), 303)
    _language(flow)
    return _render(flow_service().current(flow.id))


@blueprint.post("")
@answer_limits
def answer() -> Any:
    """Apply the submitted answer to the current step; Post/Redirect/Get on success."""
    flow = _flow()
    if flow is None:
        return redirect(url_for("recover.wizard"), 303)
    _language(flow)
    node = request.form.get("node", "")
    value = answer_of(request.form)  # what the identifier limit keyed on, read the same way
    # Text in the password field is a password even when it reads like a button's value.
    typed = bool(request.form.get("password")) and not request.form.get("choice")
    try:
        step = _commit(lambda: flow_service().answer(flow.id, node, value, typed=typed))
    except RecoveryError as exc:
        current = flow_service().current(flow.id)
        return _render(current, for_error(exc), exc.status if exc.status != 503 else 200)
    if step.redirect_to:
        return redirect(step.redirect_to, 303)
    return redirect(url_for("recover.wizard"), 303)


# -- the link in the mail ------------------------------------------------------------------------------


@blueprint.get("/reset")
@limited(PER_IP)
def reset_form() -> Any:
    """Opening the link shows the form and uses nothing (mail scanners open links too)."""
    use_locale(select_locale())
    token = request.args.get("token", "")
    try:
        reset_service().check_link(token)
    except RecoveryError as exc:
        db.session.rollback()
        return render_template("web/reset.html", token=None, error=for_error(exc)), 400
    return render_template("web/reset.html", token=token, error=None)


@blueprint.post("/reset")
@limited(PER_IP)
def reset_submit() -> Any:
    """Check the password first (a weak one costs nothing), then use the link, then finish."""
    use_locale(select_locale())
    token = request.form.get("token", "")
    password = request.form.get("password", "")

    def finish() -> str:
        return flow_service().redirect_after(reset_service().finish_with_link(token, password))

    try:
        target = _commit(finish)
    except RecoveryError as exc:
        keep_form = exc.code == "weak_password"
        return render_template(
            "web/reset.html", token=token if keep_form else None, error=for_error(exc)
        ), exc.status
    return redirect(target, 303)


@blueprint.get("/done")
def done() -> str:
    """Where a finished recovery lands when the shop gave no ``return_to``."""
    use_locale(_wizard_locale())
    return render_template("web/done.html")


# -- "this wasn't me" ----------------------------------------------------------------------------------


@blueprint.get("/freeze")
@limited(PER_IP)
def freeze_form() -> Any:
    use_locale(select_locale())
    token = request.args.get("token", "")
    try:
        reset_service().check_freeze(token)
    except RecoveryError as exc:
        db.session.rollback()
        return render_template("web/freeze.html", token=None, error=for_error(exc)), 400
    return render_template("web/freeze.html", token=token, error=None, frozen=False)


@blueprint.post("/freeze")
@limited(PER_IP)
def freeze_submit() -> Any:
    use_locale(select_locale())
    token = request.form.get("token", "")
    try:
        _commit(lambda: reset_service().freeze(token))
    except RecoveryError as exc:
        return render_template("web/freeze.html", token=None, error=for_error(exc)), exc.status
    return render_template("web/freeze.html", token=None, error=None, frozen=True)


def error_page(error: RecoveryError) -> Response:
    """An error on a hosted page (a limit, a page that is not there, a crash): the translated
    title of its status and sentence on the error page, with the error's status."""
    page = _error_page(error.status, for_error(error))
    return Response(page, status=error.status, mimetype="text/html")


def _csrf_failed(error: CSRFError) -> tuple[str, int]:
    return _error_page(400, for_code("csrf")), 400


def _error_page(status: int, sentence: str) -> str:
    use_locale(_page_locale())
    return render_template("web/error.html", title=title_for(status), sentence=sentence)

"""Who is signed in to the console, what they may do, and CSRF protection.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure in production) holding
only a session token whose record lives on the server (app.user_sessions): the session and
its user are read on every request, so signing out, a password change or a disable ends it
at once, even for a copy of the cookie. Every state-changing request (POST), sign-in
included, must carry the session's CSRF token (Flask-WTF's signed, session-bound token) in
the form or an X-CSRFToken header.
Anonymous visitors get the sign-in page and the stylesheet, nothing else; the operations
role may read everything and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, ValidationError, validate_csrf

from app.console.redirects import here
from app.user_sessions import end_session, open_session
from app.users import User, session_user

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC = {"console.login", "console.static"}
ANY_ROLE_MAY_POST = {"console.login", "console.logout"}


def current_user() -> User | None:
    if "console_user" not in g:
        token = session.get("sid")
        user = None
        if isinstance(token, str):
            with current_app.extensions["paybridge"].db.transaction() as db_session:
                user = session_user(db_session, token)
        g.console_user = user
    return g.console_user  # type: ignore[no-any-return]


def sign_in(user: User) -> None:
    rt = current_app.extensions["paybridge"]
    with rt.db.transaction() as db_session:
        token = open_session(db_session, user.id, rt.settings.session_lifetime)
    session.clear()  # a fresh session: no fixation of a pre-login session
    session["sid"] = token
    session.permanent = True


def sign_out() -> None:
    token = session.get("sid")
    if isinstance(token, str):
        with current_app.extensions["paybridge"].db.transaction() as db_session:
            end_session(db_session, token)
    session.clear()


def _check_csrf() -> None:
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
    try:
        validate_csrf(token)
    except ValidationError as exc:
        raise CSRFError(str(exc)) from exc


def guard() -> Any:
    """Runs before every console request."""
    user = current_user()
    if user is None and request.endpoint not in PUBLIC:
        target = here() if request.method in SAFE_METHODS else None
        return redirect(url_for("console.login", next=target))
    if request.method not in SAFE_METHODS:
        _check_csrf()
    if user is None:
        return None
    if (request.method not in SAFE_METHODS and request.endpoint not in ANY_ROLE_MAY_POST
            and not user.is_admin):
        abort(403)
    return None


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Explicit on every changing view (the guard enforces it for every POST as well)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None or not user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def csrf_failed(error: CSRFError) -> Any:
    return render_template("console/error.html", code=400, title="Form expired",
                           message="This form has expired or did not come from this console. "
                                   "Go back, reload the page and try again."), 400


def forbidden(_error: Any) -> Any:
    return render_template("console/error.html", code=403, title="Not allowed",
                           message="Your role can read this console but not change "
                                   "anything. Ask an admin."), 403

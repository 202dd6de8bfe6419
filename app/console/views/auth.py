"""Sign in and sign out."""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for

from app.console import throttle
from app.console.redirects import local_path
from app.console.session import current_user, sign_in, sign_out
from app.console.views.common import bp, rt
from app.users import authenticate

log = logging.getLogger(__name__)


def _next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    return local_path(target) or url_for("console.dashboard")


def _refused(name: str, status: int, message: str, retry_after: float = 0.0) -> Any:
    flash(message, "error")
    response = make_response(render_template(
        "console/login.html", next=local_path(request.form.get("next")) or "", name=name),
        status)
    if retry_after:
        response.headers["Retry-After"] = throttle.retry_after_header(retry_after)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if current_user() is not None:
            return redirect(_next(request.args.get("next")))
        return render_template("console/login.html", next=local_path(request.args.get("next"))
                               or "")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    if not name or not password:  # not a guess: costs nothing, counts for nothing
        return _refused(name, 401, "Enter your name and your password.")
    attempt = throttle.begin(name)
    if attempt.retry_after:
        wait = throttle.retry_after_header(attempt.retry_after)
        return _refused(name, 429, f"Too many failed sign-ins: try again in {wait} s.",
                        attempt.retry_after)
    with rt().db.transaction() as session:
        user = authenticate(session, name, password)
    if user is None:
        log.info("console sign-in refused", extra={"user": name[:100]})
        return _refused(name, 401, "Wrong name or password.")
    throttle.give_back(attempt)
    sign_in(user)
    log.info("console sign-in", extra={"user": user.name})
    response = redirect(_next(request.form.get("next")))
    throttle.remember_device(response, user.name)
    return response


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    sign_out()
    flash("Signed out.", "info")
    return redirect(url_for("console.login"))

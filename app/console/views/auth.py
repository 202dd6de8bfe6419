"""Sign in and sign out."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import flash, redirect, render_template, request, url_for

from app.console.redirects import local_path
from app.console.session import current_user, sign_in, sign_out
from app.console.views.common import bp, rt
from app.users import authenticate

log = logging.getLogger(__name__)
MAX_FAILURES = 10  # per name, per quarter of an hour: a slow brute force, not a lockout
FAILURE_WINDOW = 900


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    return local_path(target) or url_for("console.dashboard")


def _too_many(name: str) -> bool:
    try:
        return int(rt().redis.get(f"paybridge:login:failures:{name}") or 0) >= MAX_FAILURES
    except redis.RedisError:
        return False


def _failed(name: str) -> None:
    key = f"paybridge:login:failures:{name}"
    try:
        rt().redis.incr(key)
        rt().redis.expire(key, FAILURE_WINDOW)
    except redis.RedisError:
        pass


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if current_user() is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("console/login.html",
                               next=local_path(request.args.get("next")) or "")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    user = None
    if _too_many(name):
        flash("Too many failed sign-ins for this name; wait a quarter of an hour.", "error")
    else:
        with rt().db.transaction() as session:
            user = authenticate(session, name, password)
        if user is None:
            _failed(name)
            log.info("console sign-in refused", extra={"user": name[:100]})
            flash("Wrong name or password.", "error")
    if user is None:
        return render_template("console/login.html",
                               next=local_path(request.form.get("next")) or "", name=name), 401
    sign_in(user)
    log.info("console sign-in", extra={"user": user.name})
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    sign_out()
    flash("Signed out.", "info")
    return redirect(url_for("console.login"))

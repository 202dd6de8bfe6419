"""Helpers every page uses: the runtime, the actor's name, list filters from a query string,
and the template filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from app.console.redirects import referrer_path
from app.errors import AppError
from app.listing import ListFilter
from app.runtime import Runtime

bp = Blueprint("console", __name__, template_folder="../templates",
               static_folder="../static", static_url_path="/console-static")
PAGE = 50


def rt() -> Runtime:
    return current_app.extensions["paybridge"]  # type: ignore[no-any-return]


def actor() -> str:
    from app.console.session import current_user

    user = current_user()
    return user.name if user else "unknown"


def parse_moment(text: str | None, end: bool = False) -> datetime | None:
    """'2026-11-20' (a whole day) or '2026-11-20T10:30' (datetime-local), read as UTC."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if len(text) == 10 and end:
        value = value.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def list_filter(args: MultiDict[str, str], default_status: str | None) -> ListFilter:
    try:
        since = parse_moment(args.get("since"))
        until = parse_moment(args.get("until"), end=True)
    except ValueError:
        flash("Dates look like 2026-11-20 or 2026-11-20T10:30 (UTC).", "error")
        since = until = None
    status = args.get("status", default_status)
    return ListFilter(status=status or None, kind=args.get("kind") or None,
                      record=(args.get("record") or "").strip() or None,
                      error=(args.get("error") or "").strip() or None,
                      since=since, until=until)


def filter_args(flt: ListFilter) -> dict[str, str]:
    """The filter back as query-string values (dates as typed), for links and bulk forms."""
    out = {k: v for k, v in flt.as_dict().items() if k not in ("since", "until")}
    for key in ("since", "until"):
        if request.args.get(key):
            out[key] = request.args[key]
    out.setdefault("status", "")
    return out


def app_error(error: AppError) -> Any:
    """A refused action: say why on the page it came from."""
    if request.method == "POST":
        flash(error.message, "error")
        return redirect(referrer_path() or url_for("console.dashboard"))
    return render_template("console/error.html", code=error.status, title="Not found"
                           if error.status == 404 else "Cannot show this",
                           message=error.message), error.status


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}" if unit != "h" else f"{seconds / size:.1f} h"
    return f"{seconds:.0f} s"


def when(value: Any) -> str:
    if not value:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


bp.add_app_template_filter(ago, "ago")
bp.add_app_template_filter(when, "when")
bp.add_app_template_filter(pretty, "pretty")

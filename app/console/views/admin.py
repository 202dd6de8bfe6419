"""Audit log, API keys, webhook secrets and alert settings, and the alerts sent."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from app import audit
from app.console import alerts, keys
from app.console.notify import channels
from app.console.session import admin_required
from app.console.views.common import PAGE, actor, bp, parse_moment, rt


@bp.route("/audit")
def audit_log() -> Any:
    args = request.args
    try:
        since, until = parse_moment(args.get("since")), parse_moment(args.get("until"), end=True)
    except ValueError:
        flash("Dates look like 2026-11-20 or 2026-11-20T10:30 (UTC).", "error")
        since = until = None
    flt = audit.AuditFilter(actor=args.get("actor") or None, action=args.get("action") or None,
                            target_type=args.get("target_type") or None,
                            target_id=args.get("target_id") or None, since=since, until=until)
    rows = audit.search(rt().db, flt, limit=PAGE, before_id=args.get("before", type=int))
    return render_template("console/audit.html", rows=rows, actions=audit.actions(rt().db),
                           args={k: v for k, v in args.items() if k != "before"},
                           next_before=rows[-1].id if len(rows) == PAGE else None)


def _keys_page(**extra: Any) -> Any:
    """API keys and the state of the webhook secrets: credentials, so admins only (as in
    the API), not on the settings page every role reads."""
    return render_template("console/keys.html", keys=keys.list_keys(rt().db), roles=keys.ROLES,
                           secrets=keys.webhook_secrets(rt().settings), **extra)


@bp.route("/keys")
@admin_required
def api_keys() -> Any:
    return _keys_page()


@bp.route("/keys", methods=["POST"])
@admin_required
def api_key_create() -> Any:
    row, key = keys.create(rt().db, request.form.get("name", ""), request.form.get("role", ""),
                           actor=actor())
    # Rendered, not redirected: the key exists only in this one answer.
    return _keys_page(created=row, new_key=key)


@bp.route("/keys/<int:key_id>/revoke", methods=["POST"])
@admin_required
def api_key_revoke(key_id: int) -> Any:
    row = keys.revoke(rt().db, key_id, actor=actor())
    flash(f"Key {row.name!r} ({row.prefix}…) revoked.", "success")
    return redirect(url_for("console.api_keys"))


@bp.route("/settings")
def settings_page() -> Any:
    s = rt().settings
    return render_template("console/settings.html", channels=channels(s), s=s)


@bp.route("/alerts")
def alerts_page() -> Any:
    return render_template("console/alerts.html", alerts=alerts.recent(rt()),
                           channels=channels(rt().settings))

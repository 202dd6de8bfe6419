"""The dashboard: both queues at a glance, refreshing itself."""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template

from app.console import dashboard
from app.console.views.common import bp, rt


@bp.route("/", endpoint="dashboard")
def dashboard_page() -> Any:
    return render_template("console/dashboard.html", stats=dashboard.snapshot(rt()))


@bp.route("/dashboard/panel")
def dashboard_panel() -> Any:
    """The dashboard's body alone: the page swaps it in every few seconds."""
    return render_template("console/_dashboard_panel.html", stats=dashboard.snapshot(rt()))


@bp.route("/dashboard.json")
def dashboard_json() -> Any:
    return jsonify(dashboard.snapshot(rt()))


"""The operations console: web pages at /, their JSON API under /api/v1, /metrics, and the
interactive API docs' assets served locally.

``init_console(app, api)`` is all ``create_app`` calls. Imports happen inside it, so the
clock and workers can import the console's services (alerts, bulk) without Flask views.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Response, send_from_directory

DOCS_ASSETS = "/api/v1/docs/assets"


def _swagger_assets(app: Flask) -> None:
    """Swagger UI from the swagger-ui-bundle package: the docs work with no internet."""
    from swagger_ui_bundle import swagger_ui_path

    @app.get(f"{DOCS_ASSETS}/<path:name>")
    def swagger_asset(name: str) -> Response:
        return send_from_directory(swagger_ui_path, name, max_age=86400)


def init_console(app: Flask, api: Any) -> None:
    from flask_wtf.csrf import generate_csrf

    from app.console.api import blp as console_api
    from app.console.metrics import init_metrics
    from app.console.views import (  # noqa: F401 - importing registers the pages
        admin,
        auth,
        bulk,
        dashboard,
        events,
        history,
        hooks,
        items,
        reconcile,
    )
    from app.console.views.common import bp

    settings = app.extensions["paybridge"].settings
    app.config.update(
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_lifetime),
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.env == "production",
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session's life: long reviews are normal
    )
    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.register_blueprint(bp)
    api.register_blueprint(console_api)
    init_metrics(app)
    _swagger_assets(app)

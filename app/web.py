"""create_app(): the composition root of the web process, read as a table of contents."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, jsonify
from werkzeug.routing import IntegerConverter

from app.api import Api, register_error_handlers, register_input_guard
from app.config import Settings
from app.console import DOCS_ASSETS, init_console
from app.logs import configure_logging
from app.runtime import Runtime
from app.schemas import MAX_ID


def _health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():  # type: ignore[no-untyped-def]
        rt = current_app.extensions["paybridge"]
        checks = {}
        try:
            with rt.db.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            rt.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return jsonify({"status": "ready" if ready else "not ready", "checks": checks}), (
            200 if ready else 503)


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: at most a BIGINT, so a huge number is a 404, not a 5xx."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    configure_logging("web", settings.log_format, settings.log_level)
    # No app-wide /static: the name "paybridge" is no module, so Flask would serve the
    # working directory's static/ folder to anyone. The console serves its own files.
    app = Flask("paybridge", static_folder=None)
    app.url_map.converters["int"] = RowIdConverter
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="Paybridge", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1", OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=DOCS_ASSETS + "/",  # served locally: no internet needed
    )
    app.extensions["paybridge"] = runtime or Runtime(settings)
    api = Api(app)
    register_error_handlers(app)
    register_input_guard(app)
    _health(app)

    from app.records.routes import blp as records_blp
    from bankaccounts.routes import blp as bank_accounts_blp
    from queues.routes import blp as queue_blp
    from webhooks.routes import admin_blp as webhook_events_blp
    from webhooks.routes import intake_blp as webhooks_blp

    api.register_blueprint(queue_blp)
    api.register_blueprint(records_blp)
    api.register_blueprint(bank_accounts_blp)
    api.register_blueprint(webhooks_blp)
    api.register_blueprint(webhook_events_blp)
    init_console(app, api)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    return app

"""create_app(): the composition root of the web process, read as a table of contents."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from werkzeug.routing import IntegerConverter

from app.api import Api, register_error_handlers, register_input_guard
from app.body_limits import register_body_limits
from app.config import Settings
from app.console import DOCS_ASSETS, init_console
from app.logs import configure_logging
from app.probes import cache_metrics, init_probes
from app.runtime import Runtime
from app.schemas import MAX_ID


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: at most a BIGINT, so a huge number is a 404, not a 5xx."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def _no_store(response: Response) -> Response:
    # API answers carry queue items, payment statuses and, once, new keys: no cache (a proxy
    # or a browser) may keep them. Responses that set their own caching keep it.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


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
    register_body_limits(app, settings)
    register_input_guard(app)
    init_probes(app, settings)

    from app.records.routes import blp as records_blp
    from bankaccounts.routes import blp as bank_accounts_blp
    from queues.outbound_routes import blp as outbound_blp
    from queues.routes import blp as queue_blp
    from webhooks.routes import admin_blp as webhook_events_blp
    from webhooks.routes import intake_blp as webhooks_blp

    api.register_blueprint(queue_blp)
    api.register_blueprint(records_blp)
    api.register_blueprint(bank_accounts_blp)
    api.register_blueprint(webhooks_blp)
    api.register_blueprint(webhook_events_blp)
    api.register_blueprint(outbound_blp)
    init_console(app, api)
    cache_metrics(app, settings)
    app.after_request(_no_store)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    return app

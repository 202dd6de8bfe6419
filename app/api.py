"""The JSON API: flask-smorest (OpenAPI from the marshmallow schemas) with our error envelope."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from flask_smorest import Api as SmorestApi
from werkzeug.exceptions import HTTPException

from app.errors import AppError, ValidationFailed, envelope

log = logging.getLogger(__name__)


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """{'changes': {'3': {'operation': ['bad']}}} -> {'changes[3].operation': ['bad']}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            key = str(key)
            name = f"{prefix}[{key}]" if key.isdigit() else (f"{prefix}.{key}" if prefix else key)
            out.update(flatten(value, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            out.update(flatten(value, f"{prefix}[{index}]"))
    else:
        out[prefix or "_schema"] = [str(messages)]
    return out


class Api(SmorestApi):
    def handle_http_exception(self, error: HTTPException):  # type: ignore[override]
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if messages is not None:
            # webargs puts errors under the location ("json", "query"); name fields plainly.
            if isinstance(messages, dict) and len(messages) == 1:
                messages = next(iter(messages.values()))
            fields = flatten(messages)
            first = next(iter(fields.items()))
            body, status = envelope(400, "validation_failed",
                                    f"{first[0]}: {first[1][0]}", {"fields": fields})
            return jsonify(body), status
        code = (error.name or "error").lower().replace(" ", "_")
        body, status = envelope(error.code or 500, code, error.description or error.name)
        return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(error: AppError):  # type: ignore[no-untyped-def]
        return jsonify(error.to_dict()), error.status, error.headers

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):  # type: ignore[no-untyped-def]
        if isinstance(error, HTTPException):
            return app.extensions["smorest_api"].handle_http_exception(error)
        log.exception("unhandled error")
        body, status = envelope(500, "internal_error",
                                "an internal error occurred; nothing you sent was lost")
        return jsonify(body), status


def _nul_at(value: Any, path: str) -> str | None:
    """The path of the first string (key or value) holding a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return name
            found = _nul_at(item, name)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found:
                return found
    return None


def register_input_guard(app: Flask) -> None:
    """Refuse a NUL character anywhere in a request's path, query, form or JSON body.

    No partner or person sends one on purpose; PostgreSQL cannot store one in text or JSONB
    and would fail the request (or a worker) later, so it is refused at the door, by name.
    """

    @app.before_request
    def _refuse_nul():  # type: ignore[no-untyped-def]
        where = (_nul_at(request.path, "path") or _nul_at(request.args.to_dict(flat=False), "")
                 or _nul_at(request.form.to_dict(flat=False), ""))
        # A JSON text can hold a NUL only as the escape \u0000 (raw control characters are
        # invalid JSON), so a body without one is not parsed here at all: a signed webhook
        # batch is parsed once, after its signature is checked.
        if where is None and request.is_json and b"\\u0000" in request.get_data(cache=True):
            where = _nul_at(request.get_json(silent=True, cache=True), "")
        if where is not None:
            raise ValidationFailed(f"{where}: NUL characters are not allowed",
                                   details={"fields": {where: ["NUL characters are not allowed"]}})
        return None

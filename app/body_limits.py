"""Request size limits: every endpoint that reads a body refuses one over its limit.

Gateway webhooks have their own limit (``WEBHOOK_MAX_BYTES``), everything else
``MAX_BODY_BYTES``. A declared Content-Length over the limit is refused before anything is
read, authenticated or parsed; a body without one (chunked) is cut off at the limit while it
is read. Both answer the same 413, naming the limit.

Why a chunked body is read here, up front: Werkzeug stops such a stream at
``max_content_length`` without an error, so a later reader would silently get a truncated
body (a JSON error, a signature mismatch) instead of a 413. Reading one byte past the limit
tells a body that fits from one that does not; the body is cached for every later reader.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.config import Settings
from app.errors import PayloadTooLarge

WEBHOOK_PREFIX = "/webhooks/"


def limit_for(settings: Settings, path: str) -> int:
    return settings.webhook_max_bytes if path.startswith(WEBHOOK_PREFIX) else (
        settings.max_body_bytes)


def register_body_limits(app: Flask, settings: Settings) -> None:
    """Registered before any other request hook, so nothing reads a body first."""

    @app.before_request
    def _limit_body():  # type: ignore[no-untyped-def]
        limit = limit_for(settings, request.path)
        request.max_content_length = limit
        if (request.content_length or 0) > limit:
            raise PayloadTooLarge(limit)
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            request.max_content_length = limit + 1
            if len(request.get_data(cache=True)) > limit:
                raise PayloadTooLarge(limit)
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
        refused = PayloadTooLarge(limit_for(settings, request.path))
        return jsonify(refused.to_dict()), refused.status

"""What runs around every console request: the sign-in / role / CSRF guard, the signed-in
user in every template, error pages, and response headers for sensitive pages."""

from __future__ import annotations

from flask import Response
from flask_wtf.csrf import CSRFError

from app.console import session
from app.console.views.common import app_error, bp
from app.errors import AppError

bp.before_request(session.guard)
bp.context_processor(lambda: {"user": session.current_user()})
bp.register_error_handler(CSRFError, session.csrf_failed)
bp.register_error_handler(403, session.forbidden)
bp.register_error_handler(AppError, app_error)


@bp.after_request
def _headers(response: Response) -> Response:
    # Pages show payloads and, once, new API keys: never keep them in a shared cache.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response

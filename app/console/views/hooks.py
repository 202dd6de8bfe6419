"""What runs around every console request: the sign-in / role / CSRF guard, the signed-in
user in every template, error pages, and the security headers of every console answer."""

from __future__ import annotations

from flask import Response
from flask_wtf.csrf import CSRFError

from app.console import session
from app.console.views.common import app_error, bp, rt
from app.errors import AppError

bp.before_request(session.guard)
bp.context_processor(lambda: {"user": session.current_user()})
bp.register_error_handler(CSRFError, session.csrf_failed)
bp.register_error_handler(403, session.forbidden)
bp.register_error_handler(AppError, app_error)

# Everything the pages load comes from this site, and nothing runs inline: script and
# styles are the static files, so an injected <script> or on*= attribute does not run.
CSP = "; ".join((
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "font-src 'self'", "form-action 'self'",
    "frame-ancestors 'none'", "base-uri 'none'",
))
HSTS = "max-age=31536000"  # a year; subdomains are the operator's to decide


@bp.after_request
def _headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")  # browsers without frame-ancestors
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    # Pages show payments, payloads and, once, new API keys: never keep them in a cache.
    # (The static files set their own caching.)
    headers.setdefault("Cache-Control", "no-store")
    if rt().settings.env == "production":
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response

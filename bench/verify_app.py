"""The ceiling for webhook intake: a WSGI app that only reads the body and checks its
signature (the same function and secrets Paybridge uses), then answers 204. It runs under
the same gunicorn settings as Paybridge's web process: ``gunicorn bench.verify_app:app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from app.config import Settings
from webhooks.signature import verify

_settings = Settings.from_env()
_secrets = [_settings.webhook_secret, _settings.webhook_secret_previous]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    if environ.get("PATH_INFO") == "/":  # the readiness check
        start_response("200 OK", [])
        return [b""]
    if verify(body, environ.get("HTTP_WEBHOOK_SIGNATURE"), _secrets):
        start_response("204 No Content", [])
    else:
        start_response("498 Invalid Signature", [("Content-Type", "text/plain")])
    return [b""]

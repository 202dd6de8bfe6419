"""gunicorn settings that come from Paybridge's own (``gunicorn -c python:app.gunicorn_conf``).

The worker timeout is WEB_TIMEOUT, so the bank-account API's deadline (validated to end
before it) and the timeout gunicorn enforces can never drift apart.
"""

from __future__ import annotations

from app.config import Settings

timeout = int(Settings.from_env().web_timeout)

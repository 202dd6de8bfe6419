"""gunicorn entry point: `gunicorn app.wsgi:app`.

A configuration Paybridge refuses (development secrets outside the development stack) ends
the process with its one line, not a traceback, and gunicorn's "worker failed to boot"
status, on which gunicorn's master stops instead of starting the worker again and again.
"""

import sys

from gunicorn.arbiter import Arbiter

from app.config import ConfigError
from app.web import create_app

try:
    app = create_app()
except ConfigError as exc:
    print(f"paybridge: {exc}", file=sys.stderr, flush=True)  # noqa: T201 - before logging
    sys.exit(Arbiter.WORKER_BOOT_ERROR)

"""GoCardless's own example bodies, one JSON file each, with the URL they were taken from.

errors/*.json: ``{"source", "status", "body"}``, the error bodies the official client
libraries' test suites carry (generated from GoCardless's API schema, like the clients).
webhooks/*.json: ``{"source", "body"}`` or, for the client library's signed example,
``{"source", "signature_source", "secret", "signature", "raw_body"}`` (the exact bytes
GoCardless's signature covers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def recorded(kind: str) -> dict[str, dict[str, Any]]:
    """Every recorded example of ``kind`` ("errors" or "webhooks"), by file stem."""
    return {path.stem: json.loads(path.read_text())
            for path in sorted((HERE / kind).glob("*.json"))}

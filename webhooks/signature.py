"""Webhook signatures: HMAC-SHA256 of the raw body, hex, in the Webhook-Signature header.

Several secrets may be valid at once (the current one and the previous one, during a
rotation); every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    if not header:
        return False
    presented = header.strip().lower()
    # Compare against every secret (no early exit), so timing says nothing about which matched.
    results = [hmac.compare_digest(sign(body, s), presented) for s in secrets if s]
    return any(results)

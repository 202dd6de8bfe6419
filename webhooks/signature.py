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
    if not presented.isascii():
        # A hex digest is ASCII; compare_digest refuses non-ASCII text with a TypeError, so
        # such a header would otherwise be a 500 instead of the invalid-signature answer.
        return False
    # Compare against every secret (no early exit), so timing says nothing about which matched.
    results = [hmac.compare_digest(sign(body, s), presented) for s in secrets if s]
    return any(results)

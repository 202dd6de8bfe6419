"""Where the console may send a browser: only ever a path on this site.

A target such as ``next=`` comes from a query string or a form, so anyone can choose it.
Browsers read a ``Location`` value with the WHATWG URL parser: they strip leading and
trailing control characters and spaces, drop tabs and newlines anywhere, and read ``\\``
as ``/``, so ``/\\evil``, ``\\\\evil`` and ``/<tab>/evil`` all mean ``//evil``: another
site. Werkzeug decodes the path, so ``/%2F/evil`` reaches our own routes as ``//evil``
and could come back out as a target. Rather than predict every parser, a target is kept
only in a narrow shape they all read as a path here; anything else is refused.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_from_bytes, unquote, urlsplit

from flask import request

MAX_LENGTH = 2000
# Printable ASCII that a URL may carry as is: no space, backslash, control, or non-ASCII.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?#%\[\]]*")
_PATH_SAFE = "/-._~!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?%"


def _bad_path(path: str) -> bool:
    if "//" in path or "\\" in path or any(ord(c) < 0x20 or c == "\x7f" for c in path):
        return True
    return any(segment in (".", "..") for segment in path.split("/"))


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None (the caller picks a default)."""
    if not target or len(target) > MAX_LENGTH or not _URL_CHARS.fullmatch(target):
        return None
    if not target.startswith("/"):  # relative paths, and every scheme (https:, javascript:)
        return None
    path = re.split(r"[?#]", target, maxsplit=1)[0]
    decoded = path
    for _ in range(3):  # %252F is %2F is /: whoever decodes next must not find // either
        decoded, previous = unquote(decoded), decoded
        if decoded == previous:
            break
    if _bad_path(path) or _bad_path(decoded):
        return None
    return target


def here() -> str | None:
    """The current request as a target ("sign in, then come back here"), re-encoded."""
    target = quote(request.path, safe=_PATH_SAFE)
    if request.query_string:
        target += "?" + quote_from_bytes(request.query_string, safe=_QUERY_SAFE)
    return local_path(target)


def referrer_path() -> str | None:
    """The page a form came from, when it is a page of this site."""
    parts = urlsplit(request.referrer or "")
    if parts.scheme not in ("http", "https") or parts.netloc != request.host:
        return None
    return local_path(parts.path + (f"?{parts.query}" if parts.query else ""))

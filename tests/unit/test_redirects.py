"""Redirect targets are only ever a path on this site, judged the way browsers read them.

The oracle is ada-url, the WHATWG URL parser Node.js uses: what a browser does with a
``Location`` value is what ``join_url(console page, value)`` gives. Browsers strip leading
and trailing C0 controls and spaces, remove tabs and newlines anywhere, and read ``\\`` as
``/`` in http(s) URLs. The console's browser test checks the same targets in Chromium.
"""

from __future__ import annotations

import ada_url
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.console.redirects import local_path

BASE = "https://console.example/login"
ORIGIN = "https://console.example"

HOSTILE = [
    "//evil.example/x",
    "/\\evil.example/x",
    "\\\\evil.example/x",
    "\\/evil.example/x",
    "/%2F/evil.example",  # Werkzeug decodes the path: //evil.example reaches our routes
    "/%2f/evil.example",
    "/%5Cevil.example",  # decoded: /\evil.example
    "/%5cevil.example",
    "/%252F/evil.example",  # decoded twice
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "/\x0b/evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "https:evil.example",
    "https://evil.example/",
    "http:/evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "./x",
    "../x",
    "/.//evil.example",  # resolves to https://console.example//evil.example
    "/./x",
    "/a/../x",
    "/a/%2e%2e//evil.example",
    "//console.example@evil.example/",
    "/x y",
    "/\u3000/evil.example",
    "/\uff0f/evil.example",
    "",
    None,
]
BENIGN = ["/", "/items?status=failed&kind=Payment", "/items/12", "/history?q=Ada%20Lovelace",
          "/history/Payment/PM000123", "/events?status=failed#list",
          "/history?q=a/b%5Cc"]  # a backslash inside the query is harmless


def browser_origin(target: str) -> str | None:
    try:
        url = ada_url.join_url(BASE, target)
    except ValueError:
        return None
    return str(ada_url.URL(url).origin)


@pytest.mark.parametrize("target", HOSTILE, ids=repr)
def test_hostile_targets_are_refused(target: str | None) -> None:
    assert local_path(target) is None


@pytest.mark.parametrize("target", BENIGN)
def test_paths_on_this_site_are_kept(target: str) -> None:
    assert local_path(target) == target
    assert browser_origin(target) == ORIGIN


def test_the_oracle_agrees_that_the_hostile_ones_are_dangerous() -> None:
    """Sanity of the list: most of these really do leave the site in a browser."""
    leaving = [t for t in HOSTILE if t and browser_origin(t) != ORIGIN]
    assert {"//evil.example/x", "/\\evil.example/x", "/\t/evil.example", " //evil.example",
            "\\\\evil.example/x", "javascript:alert(1)", "http:/evil.example"} <= set(leaving)


@given(st.text(alphabet="/\\%2F5Cce.:@?#x \t\n\x00ahtps", max_size=14))
def test_anything_accepted_stays_on_this_site(target: str) -> None:
    kept = local_path(target)
    if kept is None:
        return
    assert browser_origin(kept) == ORIGIN, kept
    path = ada_url.URL(ada_url.join_url(BASE, kept)).pathname
    assert not path.startswith("//"), kept

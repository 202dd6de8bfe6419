"""A Salesforce org emulator for a test module, and clients that trust it as Paybridge does.

The emulator runs in a thread behind real TLS; clients trust only its CA and ignore the
environment's CA bundle (FACTS: REQUESTS_CA_BUNDLE would override a session's ``verify``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import certifi
import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from sim.salesforce import SimConfig, start_in_thread

CLIENT_ID, CLIENT_SECRET = "paybridge", "paybridge-dev-secret"
# A public CA bundle that does not hold the emulator's CA, as on this machine's environment.
SYSTEM_BUNDLE = (
    "/etc/ssl/certs/ca-certificates.crt"
    if Path("/etc/ssl/certs/ca-certificates.crt").exists()
    else certifi.where()
)


@contextmanager
def running_org(**config: Any) -> Iterator[tuple[str, str]]:
    """(base URL, CA bundle path) of an emulated org that lives for the ``with`` block."""
    base_url, ca_path, stop = start_in_thread(SimConfig(port=0, **config))
    try:
        yield base_url, str(ca_path)
    finally:
        stop()


def distrust_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the environment's CA bundle variables at a bundle without the org's CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", SYSTEM_BUNDLE)


def trusting_session(ca_path: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_path
    return session


class _ToOrg(HTTPAdapter):
    """Sends a request for a Salesforce host name to the emulator, keeping the name in the
    Host header (the emulator tells My Domain from login.salesforce.com by it). TLS is
    checked against the emulator's own certificate."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self._target = urlsplit(base)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(str(request.url))
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(parts._replace(scheme=self._target.scheme,
                                                netloc=self._target.netloc))
        return super().send(request, **kwargs)


def route_hosts(session: requests.Session, base: str, *hosts: str) -> requests.Session:
    """Make ``https://<host>`` reach the emulator at ``base`` for each host, as DNS would
    reach the org (clients that build Salesforce URLs themselves can then be tested)."""
    for host in hosts:
        session.mount(f"https://{host}/", _ToOrg(base))
    return session


def integration_sf(session: requests.Session, base: str, version: str = "59.0") -> Salesforce:
    """simple-salesforce as the integration user (client credentials sent in the form)."""
    answer = session.post(f"{base}/services/oauth2/token", timeout=10, data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET})
    assert answer.status_code == 200, answer.text
    token = answer.json()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      session=session, version=version)


def error_of(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    """The first error of a simple-salesforce exception's body."""
    return exc.value.content[0]  # type: ignore[no-any-return]

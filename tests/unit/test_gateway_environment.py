"""The gateway client reads the environment's proxy and CA settings once, when it is made,
and every call (from any lane's session) uses them: no per-call os.environ scan, nothing the
environment asked for lost."""

from __future__ import annotations

import pytest

from app.clients.gateway import GatewayClient


def test_proxy_and_ca_bundle_from_the_environment_apply_to_every_session(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    client = GatewayClient("https://api.gocardless.com", "token")
    with client._borrowed() as first, client._borrowed() as second:  # two lanes at once
        for session in (first, second):
            assert session.trust_env is False
            assert session.proxies.get("https") == "http://proxy.internal:3128"
            assert session.verify == "/etc/ssl/corporate.pem"
            prepared = session.merge_environment_settings(
                "https://api.gocardless.com/customers", {}, None, None, None)
            assert prepared["proxies"]["https"] == "http://proxy.internal:3128"


def test_no_proxy_keeps_the_gateway_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "api.gocardless.com")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = GatewayClient("https://api.gocardless.com", "token")
    assert "https" not in client.session.proxies
    assert client.session.verify is True

"""WEBHOOK_ALLOWED_CIDRS: webhooks only from the gateway's networks, on top of the signature."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.client_address import client_address, parse_networks
from app.config import Settings
from app.runtime import Runtime
from app.web import create_app
from webhooks.models import WebhookEvent
from webhooks.signature import sign

GATEWAY_NETS = "203.0.113.0/24, 2001:db8:77::/48"
BODY = json.dumps({"events": [{
    "id": "EV000001", "created_at": "2026-11-22T10:00:00Z", "resource_type": "payments",
    "action": "submitted", "links": {"payment": "PM1"}, "details": {}}]}).encode()


def make_client(rt: Runtime, proxies: int = 0) -> FlaskClient:
    runtime = Runtime(dataclasses.replace(
        rt.settings, webhook_allowed_cidrs=parse_networks(GATEWAY_NETS),
        trusted_proxy_count=proxies))
    return create_app(runtime=runtime).test_client()


def deliver(client: FlaskClient, rt: Runtime, peer: str, *, signed: bool = True,
            forwarded: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json",
               "Webhook-Signature": sign(BODY, rt.settings.webhook_secret) if signed else "0"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    resp = client.post("/webhooks/gocardless", data=BODY, headers=headers,
                       environ_base={"REMOTE_ADDR": peer})
    return resp.status_code, (resp.get_json(silent=True) or {}).get("error") or {}


def stored(rt: Runtime) -> int:
    with rt.db.transaction() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent))


@pytest.fixture
def direct(rt: Runtime) -> Iterator[FlaskClient]:
    yield make_client(rt)


def test_outside_the_list_is_403_even_when_signed(direct: FlaskClient, rt: Runtime) -> None:
    status, error = deliver(direct, rt, "198.51.100.7")
    assert status == 403 and error["code"] == "source_not_allowed"
    assert "WEBHOOK_ALLOWED_CIDRS" in error["message"] and "198.51.100.7" in error["message"]
    assert stored(rt) == 0


@pytest.mark.parametrize("peer", ["203.0.113.9", "::ffff:203.0.113.9", "2001:db8:77::5"])
def test_inside_the_list_the_signature_still_decides(direct: FlaskClient, rt: Runtime,
                                                     peer: str) -> None:
    assert deliver(direct, rt, peer, signed=False)[0] == 498
    assert deliver(direct, rt, peer)[0] == 204
    assert stored(rt) == 1


def test_without_trusted_proxies_x_forwarded_for_is_ignored(direct: FlaskClient,
                                                            rt: Runtime) -> None:
    assert deliver(direct, rt, "198.51.100.7", forwarded="203.0.113.9")[0] == 403
    assert deliver(direct, rt, "203.0.113.9", forwarded="198.51.100.7")[0] == 204


def test_behind_one_proxy_the_entry_it_appended_decides(rt: Runtime) -> None:
    client = make_client(rt, proxies=1)
    proxy = "10.0.0.2"
    # The proxy appends the address it saw; what the client wrote to the left is ignored.
    assert deliver(client, rt, proxy, forwarded="203.0.113.9, 198.51.100.7")[0] == 403
    assert deliver(client, rt, proxy, forwarded="garbage")[0] == 403
    # No header: it did not come through the proxy; the peer (the proxy itself) is outside.
    assert deliver(client, rt, proxy)[0] == 403
    assert deliver(client, rt, proxy, forwarded="198.51.100.7, 203.0.113.9")[0] == 204


def test_no_list_means_any_source(client: FlaskClient, rt: Runtime) -> None:
    assert deliver(client, rt, "198.51.100.7")[0] == 204


def test_client_address_counts_proxies_from_the_right() -> None:
    assert str(client_address("10.0.0.3", "1.1.1.1, 2.2.2.2, 10.0.0.2", 2)) == "2.2.2.2"
    assert str(client_address("10.0.0.3", "2.2.2.2", 2)) == "10.0.0.3"  # too few hops
    assert client_address("not-an-address", None, 0) is None


def test_a_malformed_network_is_refused_at_start_by_name() -> None:
    with pytest.raises(ValueError, match="WEBHOOK_ALLOWED_CIDRS.*'203.0.113.0/33'"):
        Settings.from_env({"WEBHOOK_ALLOWED_CIDRS": "10.0.0.0/8,203.0.113.0/33"})
    assert Settings.from_env({"WEBHOOK_ALLOWED_CIDRS": " "}).webhook_allowed_cidrs == ()

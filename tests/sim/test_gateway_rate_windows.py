"""Gateway emulator details the benchmark relies on: per-window rate-limit counts, and an
accurate "in flight" count of webhook deliveries across a reset."""

from __future__ import annotations

import threading
import time
from typing import Any

from werkzeug.serving import make_server

from sim.gateway import GatewayConfig, create_app

TOKEN = "test-token"


def test_each_window_reports_what_it_allowed_and_refused() -> None:
    # A 60 s window scaled to 0.6 s: three requests fit, the rest of the window is refused.
    app = create_app(GatewayConfig(access_token=TOKEN, webhook_url="", rate_limit=3,
                                   rate_window=60, time_scale=0.01))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        statuses = [client.get("/customers", headers=headers).status_code for _ in range(5)]
        time.sleep(0.65)
        client.get("/customers", headers=headers)
        windows = client.get("/sim/stats").get_json()["rate_limit"]["windows"]
        time.sleep(0.65)
        settled = client.get("/sim/stats").get_json()["rate_limit"]["windows"]
    finally:
        app.extensions["gateway_sim"].close()
    assert statuses == [200, 200, 200, 429, 429]
    assert [(w["allowed"], w["refused"], w["complete"]) for w in windows] == [
        (3, 2, True), (1, 0, False)]
    assert windows[1]["index"] > windows[0]["index"]
    assert settled[-1]["complete"] is True


def test_a_reset_during_a_delivery_leaves_nothing_in_flight() -> None:
    arrived, release = threading.Event(), threading.Event()

    def slow_receiver(environ: dict, start_response: Any) -> list[bytes]:
        arrived.set()
        release.wait(5)
        start_response("204 No Content", [])
        return [b""]

    receiver = make_server("127.0.0.1", 0, slow_receiver, threaded=True)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    app = create_app(GatewayConfig(access_token=TOKEN, webhook_secret="s",
                                   webhook_url=f"http://127.0.0.1:{receiver.server_port}/"))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        customer = client.post("/customers", headers=headers, json={"customers": {
            "given_name": "A", "family_name": "B", "email": "a@example.com"}}).get_json()
        account = client.post("/customer_bank_accounts", headers=headers, json={
            "customer_bank_accounts": {
                "account_holder_name": "A B", "account_number": "55779911",
                "branch_code": "200000", "country_code": "GB",
                "links": {"customer": customer["customers"]["id"]}}}).get_json()
        # A customer is not announced by an event at GoCardless; its mandate is.
        client.post("/mandates", headers=headers, json={"mandates": {"links": {
            "customer_bank_account": account["customer_bank_accounts"]["id"]}}})
        assert arrived.wait(5), "no delivery was attempted"
        client.post("/sim/reset")
        release.set()
        flushed = client.post("/sim/webhooks/flush?timeout=5").get_json()
    finally:
        app.extensions["gateway_sim"].close()
        receiver.shutdown()
    assert flushed["flushed"] is True and flushed["in_flight"] == 0

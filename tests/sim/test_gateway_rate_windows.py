"""The gateway emulator's per-window counts, which the benchmark reads its utilisation from."""

from __future__ import annotations

import time

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

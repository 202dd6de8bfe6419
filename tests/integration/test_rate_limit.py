"""The shared gateway limiter: many callers together stay under the gateway's allowance."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from app.clients.errors import PausedError
from app.clients.gateway import GatewayClient
from app.ratelimit import RateLimiter
from app.runtime import Runtime
from sim.gateway import GatewayConfig, create_app

LIMIT, WINDOW = 40, 1.0  # a "minute" of 40 requests, one second long


@pytest.fixture
def limited_gateway() -> Iterator[str]:
    app = create_app(GatewayConfig(port=0, webhook_url="", rate_limit=LIMIT,
                                   rate_window=WINDOW))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_four_callers_share_one_allowance_without_a_single_429(
        rt: Runtime, limited_gateway: str) -> None:
    results: list[dict[str, int]] = []
    deadline = time.monotonic() + 3.0

    def caller() -> None:
        # Each caller has its own client (like a worker process); only Redis is shared.
        limiter = RateLimiter(rt.redis, "gateway-test", LIMIT, WINDOW, max_wait=2.0)
        client = GatewayClient(limited_gateway, "sandbox-token", limiter=limiter)
        while time.monotonic() < deadline:
            client._request("GET", "/customers")
        results.append(client.calls)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    total: dict[str, int] = {}
    for calls in results:
        for outcome, n in calls.items():
            total[outcome] = total.get(outcome, 0) + n
    assert total.get("429", 0) == 0, total
    # The allowance is used, not wasted: at least 80% of what the windows allowed.
    assert total["200"] >= 0.8 * LIMIT * elapsed / WINDOW, (total, elapsed)


def test_a_429_blocks_every_caller_until_retry_after(rt: Runtime) -> None:
    limiter = RateLimiter(rt.redis, "gateway-block", 1000, 60.0, max_wait=0.2)
    limiter.acquire()
    limiter.block(1.0)
    with pytest.raises(PausedError) as exc:
        RateLimiter(rt.redis, "gateway-block", 1000, 60.0, max_wait=0.2).acquire()
    assert 0.5 < exc.value.retry_after <= 1.0
    time.sleep(1.05)
    assert limiter.acquire() < 0.2


def test_the_gateways_own_lower_limit_wins(rt: Runtime, limited_gateway: str) -> None:
    # Configured for 1,000 a second; the gateway says 40 per window: pace to 40.
    limiter = RateLimiter(rt.redis, "gateway-lower", 1000, WINDOW, max_wait=2.0)
    client = GatewayClient(limited_gateway, "sandbox-token", limiter=limiter)
    client._request("GET", "/customers")
    assert limiter.limit == LIMIT
    assert limiter.interval == pytest.approx(WINDOW / (LIMIT * limiter.headroom))


def test_a_caller_back_from_a_pause_makes_up_its_catch_up_share_at_once(rt: Runtime) -> None:
    """After a pause, ``catch_up`` of the limit may go back to back; then the spacing holds.
    Without it, the second call already has to wait."""
    from app.ratelimit import Throttled

    def quick(catch_up: float) -> RateLimiter:  # 40 a window of 10 s: slots 0.36 s apart
        return RateLimiter(rt.redis, f"catch-up-{catch_up}", 40, 10.0, headroom=0.7,
                           catch_up=catch_up, max_wait=0.0)

    spaced, catching_up = quick(0.0), quick(0.2)
    assert spaced.acquire() == 0.0
    with pytest.raises(Throttled):
        spaced.acquire()
    assert [catching_up.acquire() for _ in range(8)] == [0.0] * 8  # 20 % of 40
    with pytest.raises(Throttled):
        catching_up.acquire()
    with pytest.raises(ValueError):
        RateLimiter(rt.redis, "too-much", 40, 10.0, headroom=0.9, catch_up=0.2)


def test_callers_that_pause_and_catch_up_never_exceed_a_fixed_window(
        rt: Runtime, limited_gateway: str) -> None:
    results: list[dict[str, int]] = []
    deadline = time.monotonic() + 3.0

    def caller() -> None:
        limiter = RateLimiter(rt.redis, "gateway-catch-up", LIMIT, WINDOW, headroom=0.7,
                              catch_up=0.2, max_wait=2.0)
        client = GatewayClient(limited_gateway, "sandbox-token", limiter=limiter)
        while time.monotonic() < deadline:
            for _ in range(6):  # a batch of calls, then a pause (its write-back)
                client._request("GET", "/customers")
            time.sleep(0.15)
        results.append(client.calls)

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = sum(calls.get("429", 0) for calls in results)
    assert refused == 0, results

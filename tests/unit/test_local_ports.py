"""The ports a local stack (the bench's, the end-to-end tests') starts its processes on.

A CI run once gave the web process and the gateway emulator the same port: the emulator
took it, gunicorn could not bind, and the readiness check took the emulator's 404 for the
web app's answer, so the test drove the wrong server and failed far from the cause."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.supervisor import Ports, free_ports, wait_http


def test_the_ports_of_one_stack_are_all_different() -> None:
    for _ in range(200):
        ports = Ports.free()
        assert len({ports.web, ports.salesforce, ports.gateway}) == 3
    assert len(set(free_ports(64))) == 64


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_server_that_does_not_know_the_path_is_not_taken_for_ready(other_server: str) -> None:
    with pytest.raises(TimeoutError, match="healthz"):
        wait_http(f"{other_server}/healthz", timeout=1.0)

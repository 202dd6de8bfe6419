from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from app.auth import create_key
from app.runtime import Runtime
from app.web import create_app
from sim.gateway import GatewayConfig
from sim.gateway import create_app as gateway_app
from sim.salesforce import SimConfig, start_in_thread
from workers.context import set_runtime


@pytest.fixture
def client(rt: Runtime) -> Iterator[FlaskClient]:
    app = create_app(runtime=rt)
    with app.test_client() as test_client:
        yield test_client


def _key(rt: Runtime, role: str) -> str:
    with rt.db.transaction() as session:
        return create_key(session, f"test-{role}", role)[1]


@pytest.fixture
def trigger_headers(rt: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {_key(rt, 'trigger')}"}


@pytest.fixture
def admin_headers(rt: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {_key(rt, 'admin')}"}


@pytest.fixture
def emulators(rt: Runtime) -> Iterator[tuple[Runtime, str, str]]:
    """Both emulators in threads over HTTP(S), and a runtime pointed at them (our own gateway
    rate limiter off: these tests are about correctness, not pacing)."""
    gw = make_server("127.0.0.1", 0, gateway_app(GatewayConfig(port=0, webhook_url="")),
                     threaded=True)
    threading.Thread(target=gw.serve_forever, daemon=True).start()
    sf_url, ca, stop = start_in_thread(SimConfig(port=0))
    gw_url = f"http://127.0.0.1:{gw.server_port}"
    runtime = Runtime(replace(rt.settings, gateway_url=gw_url, salesforce_login_url=sf_url,
                              salesforce_ca_bundle=ca, gateway_rate_limit=0))
    yield runtime, gw_url, sf_url
    stop()
    gw.shutdown()
    runtime.db.dispose()


@pytest.fixture
def linked(emulators: tuple[Runtime, str, str]) -> tuple[Runtime, str, str, requests.Session]:
    """The emulators, the job runtime pointed at them, and a session for the CRM emulator."""
    rt, gw_url, sf_url = emulators
    set_runtime(rt)
    sf = requests.Session()
    sf.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (see FACTS)
    sf.verify = rt.settings.salesforce_ca_bundle
    return rt, gw_url, sf_url, sf

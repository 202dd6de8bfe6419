"""Building the Flask app and running it over TLS (in the foreground or in a thread)."""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from sim.salesforce import api, bulk2, capture, composite, control, query, replication
from sim.salesforce.config import SimConfig
from sim.salesforce.org import Org
from sim.salesforce.tls import make_tls
from sim.salesforce.web import EXTENSION_KEY


def create_app(config: SimConfig | None = None) -> Flask:
    """A Flask app emulating one org. Its ``Org`` is ``app.extensions["salesforce_sim"]``;
    call ``org.close()`` to stop its trigger thread when the app is done with."""
    config = config or SimConfig()
    app = Flask("sim.salesforce")
    app.extensions[EXTENSION_KEY] = Org(config)
    api.install(app)
    app.register_blueprint(composite.bp)
    app.register_blueprint(query.bp)
    app.register_blueprint(bulk2.bp)
    app.register_blueprint(replication.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(capture.bp)
    return app


def org_of(app: Flask) -> Org:
    return app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"https://{shown}:{port}"


def _make_server(config: SimConfig) -> tuple[BaseWSGIServer, Path, Flask]:
    tls = make_tls(config.cert_dir, config.host)
    app = create_app(config)
    server = make_server(config.host, config.port, app, threaded=True, ssl_context=tls.context)
    return server, tls.ca_path, app


def serve(config: SimConfig, *, quiet: bool = True) -> None:
    """Run in the foreground until interrupted; prints one line saying where it listens."""
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server, ca_path, app = _make_server(config)
    print(
        f"Salesforce emulator listening on {_url(config.host, server.server_port)} "
        f"(CA certificate: {ca_path})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        org_of(app).close()


class RunningServer(NamedTuple):
    """What ``start_in_thread`` returns; unpacks as ``base_url, ca_path, stop``."""

    base_url: str
    ca_path: str
    stop: Callable[[], None]


def start_in_thread(config: SimConfig | None = None) -> RunningServer:
    """Serve over TLS from a daemon thread (port 0 by default: a free one is picked).

    The certificates go to a fresh temporary directory unless ``config.cert_dir`` is set
    to something other than the default. ``stop()`` shuts the server and its trigger down.
    """
    config = config or SimConfig(port=0)
    if config.cert_dir == SimConfig().cert_dir:
        config.cert_dir = tempfile.mkdtemp(prefix="sf-sim-")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server, ca_path, app = _make_server(config)
    thread = threading.Thread(target=server.serve_forever, name="sf-sim", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        org_of(app).close()

    return RunningServer(_url(config.host, server.server_port), str(ca_path), stop)

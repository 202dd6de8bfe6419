"""``python -m sim.salesforce``: run the Salesforce org emulator.

Options default to the ``SALESFORCE_SIM_*`` environment variables, then to ``SimConfig``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from sim.salesforce.config import SimConfig
from sim.salesforce.server import serve


def parse_args(argv: list[str] | None = None) -> tuple[SimConfig, bool]:
    """The configuration and whether to log every request."""
    config = SimConfig.from_env()
    parser = argparse.ArgumentParser(prog="python -m sim.salesforce", description=__doc__)
    parser.add_argument("--host", default=config.host)
    parser.add_argument("--port", type=int, default=config.port)
    parser.add_argument("--cert-dir", default=config.cert_dir,
                        help="where ca.pem is written (created if missing)")
    parser.add_argument("--trigger-url", default=config.trigger_url,
                        help="Paybridge's queue endpoint the trigger posts changes to")
    parser.add_argument("--trigger-api-key", default=config.trigger_api_key)
    parser.add_argument("--daily-limit", type=int, default=config.daily_limit,
                        help="daily API request allocation")
    parser.add_argument("--client-id", default=config.client_id,
                        help="integration user's client id (client_credentials grant)")
    parser.add_argument("--client-secret", default=config.client_secret)
    parser.add_argument("--username", default=None,
                        help="regular user for the password grant (with --password)")
    parser.add_argument("--password", default=None)
    parser.add_argument("--session-ttl", type=float, default=config.session_ttl,
                        help="seconds an access token stays valid")
    parser.add_argument("--metadata-dir", default=config.metadata_dir,
                        help="serve the objects and fields of this Salesforce DX project")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    for name in ("host", "port", "cert_dir", "trigger_url", "trigger_api_key", "daily_limit",
                 "client_id", "client_secret", "session_ttl", "metadata_dir"):
        setattr(config, name, getattr(args, name))
    if args.username and args.password:
        config.users = {args.username: args.password}
    elif args.username or args.password:
        parser.error("--username and --password go together")
    return config, bool(args.verbose)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Handled like Ctrl-C, so the server closes its socket and the trigger thread stops.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    config, verbose = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    serve(config, quiet=not verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())

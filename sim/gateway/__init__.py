"""Paybridge gateway emulator: a GoCardless-compatible Bacs Direct Debit API in one process.

Test equipment for end-to-end tests, the demo, the chaos suite and benchmarks. Start it with
``python -m sim.gateway`` or build it in-process with ``create_app(GatewayConfig(...))``.
"""

from .app import Simulator, create_app, serve
from .config import GatewayConfig, from_env, parse_args

__all__ = ["GatewayConfig", "Simulator", "create_app", "from_env", "parse_args", "serve"]

"""Gateway emulator configuration: defaults, ``GATEWAY_SIM_*`` environment variables and CLI.

Precedence: command-line option > environment variable > default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

ENV_PREFIX = "GATEWAY_SIM_"


@dataclass(frozen=True)
class GatewayConfig:
    """Everything that is fixed when the emulator starts.

    ``time_scale`` multiplies emulator-side durations (rate-limit windows, webhook retry
    waits, the auto-advance period): 0.1 runs them ten times faster. ``rate_limit`` 0 means
    no limit. ``auto_advance_seconds`` 0 disables auto-advance. ``webhook_url`` "" disables
    delivery (events are still listed by ``GET /events``). ``seed`` makes random faults
    reproducible.
    """

    host: str = "127.0.0.1"
    port: int = 8002
    access_token: str = "sandbox-token"
    webhook_url: str = "http://127.0.0.1:8000/webhooks/gocardless"
    webhook_secret: str = "paybridge-dev-webhook-secret"
    time_scale: float = 1.0
    rate_limit: int = 0
    rate_window: float = 60.0
    batch_size: int = 100
    auto_advance_seconds: float = 0.0
    seed: int | None = None
    webhook_timeout_s: float = 10.0
    webhook_max_retries: int = 8

    def validate(self) -> GatewayConfig:
        """Return self, or raise ``ValueError`` naming the first bad setting."""
        if self.time_scale <= 0:
            raise ValueError("time_scale must be greater than 0")
        if self.rate_limit < 0 or self.rate_window <= 0:
            raise ValueError("rate_limit must be >= 0 and rate_window > 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.auto_advance_seconds < 0:
            raise ValueError("auto_advance_seconds must be >= 0")
        return self


CLI_HELP = {
    "host": "address to listen on",
    "port": "port to listen on (0 picks a free one)",
    "access_token": "bearer token the API requires",
    "webhook_url": "where events are POSTed (empty: no delivery)",
    "webhook_secret": "HMAC-SHA256 key for the Webhook-Signature header",
    "time_scale": "multiplier for emulator-side durations (0.1 = ten times faster)",
    "rate_limit": "requests allowed per window (0: unlimited)",
    "rate_window": "rate-limit window in seconds, before time scaling",
    "batch_size": "maximum events per webhook delivery",
    "auto_advance_seconds": "advance every resource one happy-path step this often (0: off)",
    "seed": "seed for random faults, for reproducible runs",
}
CLI_OPTIONS = tuple(CLI_HELP)


def _converter(name: str) -> Callable[[str], Any]:
    """How to read option ``name`` from text (the type of its default)."""
    if name == "seed":
        return int
    return type(getattr(GatewayConfig, name))


def from_env(environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Defaults overridden by ``GATEWAY_SIM_<NAME>`` variables (e.g. GATEWAY_SIM_PORT)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for item in fields(GatewayConfig):
        raw = environ.get(ENV_PREFIX + item.name.upper())
        if raw is None:
            continue
        if raw == "":
            # Only the webhook URL has a meaningful empty value: delivery switched off.
            if item.name == "webhook_url":
                values[item.name] = ""
            continue
        values[item.name] = _converter(item.name)(raw)
    return replace(GatewayConfig(), **values)


def parse_args(argv: Sequence[str] | None = None,
               environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Build the configuration from the command line on top of ``from_env``."""
    base = from_env(environ)
    parser = argparse.ArgumentParser(
        prog="python -m sim.gateway",
        description="Paybridge gateway emulator (GoCardless-style Bacs Direct Debit API).",
    )
    for name in CLI_OPTIONS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=_converter(name),
            default=getattr(base, name),
            help=f"{CLI_HELP[name]} (env {ENV_PREFIX}{name.upper()}; default: %(default)s)",
        )
    args = parser.parse_args(argv)
    try:
        return replace(base, **{name: getattr(args, name) for name in CLI_OPTIONS}).validate()
    except ValueError as exc:
        parser.error(str(exc))
        raise

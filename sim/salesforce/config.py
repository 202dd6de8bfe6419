"""Settings of one emulated org: where it listens, who may log in, where the trigger calls.

Every field has a default that works out of the box for the demo; ``SimConfig.from_env``
reads ``SALESFORCE_SIM_*`` variables over those defaults and the command line overrides both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

ENV_PREFIX = "SALESFORCE_SIM_"

DEFAULT_CLIENT_ID = "paybridge"
DEFAULT_CLIENT_SECRET = "paybridge-dev-secret"
DEFAULT_USERNAME = "demo@example.com"
DEFAULT_PASSWORD = "demo"


@dataclass
class SimConfig:
    """One org's configuration.

    ``users`` maps username -> password for the password grant (regular users, whose changes
    fire the trigger). ``client_id``/``client_secret`` are the integration user's client
    credentials (its changes never fire the trigger). ``trigger_attempts`` counts the first
    try; the wait between tries starts at ``trigger_backoff`` seconds and doubles up to
    ``trigger_backoff_max``.
    """

    host: str = "127.0.0.1"
    port: int = 8443
    cert_dir: str = "var/sim-salesforce"
    trigger_url: str | None = None
    trigger_api_key: str | None = None
    daily_limit: int = 100_000
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    users: dict[str, str] = field(default_factory=lambda: {DEFAULT_USERNAME: DEFAULT_PASSWORD})
    session_ttl: float = 7200.0
    trigger_attempts: int = 6
    trigger_backoff: float = 0.25
    trigger_backoff_max: float = 4.0
    trigger_timeout: float = 10.0
    # getUpdated / getDeleted refuse a span with more ids than this (EXCEEDED_ID_LIMIT).
    replication_id_limit: int = 600_000
    # Salesforce's generic login hosts: they refuse the client-credentials grant (only the
    # org's My Domain host takes it). Any other host the emulator is reached by is its own.
    login_hosts: tuple[str, ...] = ("login.salesforce.com", "test.salesforce.com")
    # A Salesforce DX project (``paybridge salesforce metadata`` writes one) whose objects
    # and fields replace the built-in declaration (sim.salesforce.metadata_source).
    metadata_dir: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimConfig:
        """Defaults overlaid with ``SALESFORCE_SIM_<FIELD>`` (e.g. ``SALESFORCE_SIM_PORT``).

        ``SALESFORCE_SIM_USERNAME``/``SALESFORCE_SIM_PASSWORD`` replace the default regular
        user. Unparseable numbers raise ``ValueError`` naming the variable.
        """
        env = os.environ if environ is None else environ
        config = cls()
        for f in fields(cls):
            if f.name in ("users", "login_hosts"):
                continue
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            current = getattr(config, f.name)
            try:
                value: object = type(current)(raw) if current is not None else raw
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}: {raw!r} is not valid") from exc
            setattr(config, f.name, value)
        username = env.get(ENV_PREFIX + "USERNAME")
        password = env.get(ENV_PREFIX + "PASSWORD")
        if username and password:
            config.users = {username: password}
        return config

"""Per-process resources built from settings: database, Redis, partner clients.

Built lazily and once per process; a forked child calls ``after_fork`` so it never shares
the parent's connections.
"""

from __future__ import annotations

from functools import cached_property

import redis

from app.clients.crm_allowance import CrmAllowance
from app.clients.gateway import GatewayClient
from app.clients.salesforce import SalesforceClient
from app.config import Settings
from app.crm_pause import CrmPause
from app.db import Database
from app.ratelimit import GATEWAY_CATCH_UP, RateLimiter
from app.redis_conn import connect, start_embedded
from app.telemetry import Telemetry


class Runtime:
    def __init__(self, settings: Settings, *, validate: bool = True) -> None:
        if validate:  # only the doctor skips it, to report every problem itself
            settings.validate()
        self.settings = settings

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.effective_database_url)

    @cached_property
    def redis_url(self) -> str:
        return self.settings.redis_url or start_embedded(self.settings.home / "redis.db")

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.redis_url)

    @cached_property
    def gateway(self) -> GatewayClient:
        s = self.settings
        limiter = (RateLimiter(self.redis, "gateway", s.gateway_rate_limit, s.gateway_rate_window,
                               catch_up=GATEWAY_CATCH_UP)
                   if s.gateway_rate_limit > 0 else None)
        return GatewayClient(s.gateway_url, s.gateway_access_token, timeout=s.gateway_timeout,
                             limiter=limiter, telemetry=self.telemetry)

    @cached_property
    def crm(self) -> SalesforceClient:
        s = self.settings
        allowance = CrmAllowance(self.redis, self.crm_pause, reserve=s.salesforce_api_reserve,
                                 window=s.salesforce_api_window, burst=s.salesforce_api_burst,
                                 pause_seconds=s.salesforce_limit_pause)
        return SalesforceClient(
            s.salesforce_login_url, s.salesforce_client_id, s.salesforce_client_secret,
            ca_bundle=s.salesforce_ca_bundle, version=s.salesforce_api_version,
            timeout=s.salesforce_timeout, telemetry=self.telemetry, allowance=allowance,
            bulk_threshold=s.salesforce_bulk_threshold, bulk_wait=s.salesforce_bulk_wait)

    @cached_property
    def crm_pause(self) -> CrmPause:
        return CrmPause(self.redis)

    @cached_property
    def telemetry(self) -> Telemetry:
        return Telemetry(self.redis)

    def after_fork(self) -> None:
        if "db" in self.__dict__:
            self.db.after_fork()
        for name in ("redis", "gateway", "crm", "crm_pause", "telemetry"):
            self.__dict__.pop(name, None)

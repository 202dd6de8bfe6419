"""Per-process resources built from settings: database, Redis, partner clients.

Built lazily and once per process; a forked child calls ``after_fork`` so it never shares
the parent's connections.
"""

from __future__ import annotations

from functools import cached_property

import redis

from app.clients.gateway import GatewayClient
from app.clients.salesforce import SalesforceClient
from app.config import Settings
from app.crm_pause import CrmPause
from app.db import Database
from app.redis_conn import connect, start_embedded


class Runtime:
    def __init__(self, settings: Settings) -> None:
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
        return GatewayClient(s.gateway_url, s.gateway_access_token, timeout=s.gateway_timeout)

    @cached_property
    def crm(self) -> SalesforceClient:
        s = self.settings
        return SalesforceClient(
            s.salesforce_login_url, s.salesforce_client_id, s.salesforce_client_secret,
            ca_bundle=s.salesforce_ca_bundle, version=s.salesforce_api_version,
            timeout=s.salesforce_timeout)

    @cached_property
    def crm_pause(self) -> CrmPause:
        return CrmPause(self.redis)

    def after_fork(self) -> None:
        if "db" in self.__dict__:
            self.db.after_fork()
        for name in ("redis", "gateway", "crm", "crm_pause"):
            self.__dict__.pop(name, None)

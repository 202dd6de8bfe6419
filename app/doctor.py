"""``paybridge doctor``: is this deployment ready to keep a real org and gateway in step?

Each check reads, never writes: the configuration, the database and Redis, the gateway
token, the webhook secrets, and the Salesforce org (login, API version, remaining daily
allocation, and every object and field the mapping reads or writes, from describe). Each
answers pass, warn or fail, with what to fix. Secrets are never printed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from app.clients.errors import PartnerError
from app.config import DEV_WEBHOOK_SECRET, Settings
from app.mapping import (
    GATEWAY_ID_FIELD,
    LAST_EVENT_FIELD,
    OBJECTS,
    STATUS_FIELD,
    SYNC_ERROR_FIELD,
    ObjectMap,
)
from app.migrate import alembic_config
from app.runtime import Runtime

log = logging.getLogger(__name__)
PASS, WARN, FAIL = "pass", "warn", "fail"
MIN_SECRET = 16
# Client credentials are refused on these hosts: the flow needs the org's My Domain
# (Salesforce Help, "Configure a Connected App for the OAuth 2.0 Client Credentials Flow").
GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


@dataclass(frozen=True)
class Check:
    name: str
    outcome: str  # pass | warn | fail
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.outcome.upper():4} {self.name}: {self.detail}"
        return f"{text}\n     fix: {self.fix}" if self.fix else text


def _guard(name: str, probe: Callable[[], Check | list[Check]]) -> list[Check]:
    """A check that cannot even run fails with the reason, and the others still run."""
    try:
        found = probe()
    except PartnerError as exc:
        return [Check(name, FAIL, str(exc), "see the partner's message above")]
    except Exception as exc:  # noqa: BLE001 - the doctor reports every failure
        return [Check(name, FAIL, f"{type(exc).__name__}: {exc}")]
    return found if isinstance(found, list) else [found]


def _configuration(settings: Settings) -> Check:
    try:
        settings.validate()
    except RuntimeError as exc:
        return Check("configuration", FAIL, str(exc), "set the variables it names")
    if settings.env != "production":
        return Check("configuration", WARN, f"PAYBRIDGE_ENV={settings.env}: development "
                     "defaults are allowed", "set PAYBRIDGE_ENV=production for a real org")
    return Check("configuration", PASS, "settings are consistent")


def _database(rt: Runtime) -> Check:
    head = ScriptDirectory.from_config(alembic_config(rt.settings.effective_database_url))
    with rt.db.engine.connect() as conn:
        current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    wanted = head.get_current_head()
    if current != wanted:
        return Check("database", FAIL, f"schema at {current}, this release needs {wanted}",
                     "run `paybridge db upgrade`")
    return Check("database", PASS, f"{rt.db.dialect}, schema at {current}")


def _redis(rt: Runtime) -> Check:
    rt.redis.ping()
    return Check("redis", PASS, "reachable")


def _gateway(rt: Runtime) -> Check:
    host = urlparse(rt.settings.gateway_url).hostname or rt.settings.gateway_url
    kind = {"api.gocardless.com": "live", "api-sandbox.gocardless.com": "sandbox"}.get(
        host, "not GoCardless (an emulator?)")
    rt.gateway.list_events(limit=1)  # read access to events: webhooks' fetches, catch-up
    return Check("gateway token", PASS, f"{host} ({kind}) accepts GATEWAY_ACCESS_TOKEN")


def _webhook_secrets(settings: Settings) -> Check:
    secrets = {"GOCARDLESS_WEBHOOK_SECRET": settings.webhook_secret,
               "GOCARDLESS_WEBHOOK_SECRET_PREVIOUS": settings.webhook_secret_previous}
    problems = []
    for name, value in secrets.items():
        if name.endswith("PREVIOUS") and not value:
            continue
        if not value:
            problems.append(f"{name} is not set")
        elif value == DEV_WEBHOOK_SECRET:
            problems.append(f"{name} is the published development secret")
        elif len(value) < MIN_SECRET:
            problems.append(f"{name} is shorter than {MIN_SECRET} characters")
    if problems:
        return Check("webhook secret", FAIL, "; ".join(problems),
                     "copy the secret of the webhook endpoint from the GoCardless dashboard")
    return Check("webhook secret", PASS, "set (GoCardless cannot be asked whether it matches: "
                 "send a test webhook from the dashboard)")


def _salesforce_login(rt: Runtime) -> list[Check]:
    checks = []
    host = urlparse(rt.settings.salesforce_login_url).hostname or ""
    if host in GENERIC_LOGIN_HOSTS:
        checks.append(Check("salesforce login host", FAIL, f"{host} refuses the client "
                            "credentials flow", "set SALESFORCE_LOGIN_URL to the org's My "
                            "Domain, https://<domain>.my.salesforce.com"))
    rt.crm.login()
    checks.append(Check("salesforce login", PASS, f"{host}: client credentials accepted"))
    return checks


def _salesforce_version(rt: Runtime) -> Check:
    wanted = rt.settings.salesforce_api_version
    served = rt.crm.versions()
    if wanted not in served:
        return Check("salesforce API version", FAIL, f"v{wanted} is not served (newest: "
                     f"v{max(served, key=float) if served else '?'})",
                     "set SALESFORCE_API_VERSION to one the org serves")
    return Check("salesforce API version", PASS, f"v{wanted} served")


def _salesforce_allocation(rt: Runtime) -> Check:
    daily = rt.crm.limits().get("DailyApiRequests") or {}
    most, left = int(daily.get("Max") or 0), int(daily.get("Remaining") or 0)
    reserve = int(most * rt.settings.salesforce_api_reserve)
    detail = f"{left} of {most} daily API requests remain ({reserve} kept for the org's others)"
    if left <= reserve:
        return Check("salesforce allocation", WARN, detail,
                     "Paybridge pauses its CRM writes until the rolling 24 h frees calls")
    return Check("salesforce allocation", PASS, detail)


def _object(rt: Runtime, obj: ObjectMap) -> Check:
    name = f"salesforce {obj.sobject}"
    try:
        described = rt.crm.describe(obj.sobject)
    except PartnerError as exc:
        return Check(name, FAIL, f"cannot describe {obj.sobject}: {exc}",
                     "deploy the objects and fields the mapping needs (`paybridge salesforce "
                     "metadata OUTDIR`, then `sf project deploy start`), and give the "
                     "integration user access to them")
    fields = {f["name"]: f for f in described.get("fields") or []}
    # Read from the CRM (triggers send them); written back or when a record is made.
    written = set(obj.writeback.values()) | {GATEWAY_ID_FIELD, LAST_EVENT_FIELD,
                                             SYNC_ERROR_FIELD}
    if obj.has_status:
        written.add(STATUS_FIELD)
    written |= {f.crm for f in obj.fields if f.to_crm and not f.sensitive}
    optional = {f.crm for f in obj.fields if not f.to_crm}  # fields only some orgs have
    missing = sorted({f.crm for f in obj.fields} - optional - set(fields)
                     | written - set(fields))
    if missing:
        return Check(name, FAIL, f"missing fields: {', '.join(missing)}",
                     "deploy them (`paybridge salesforce metadata OUTDIR`, then `sf project "
                     "deploy start`) and grant the integration user field-level access")
    locked = sorted(f for f in written if not fields[f].get("updateable"))
    if locked:
        return Check(name, FAIL, f"not writable by the integration user: {', '.join(locked)}",
                     "grant edit access to these fields (field-level security)")
    absent = sorted(optional - set(fields))
    if absent:
        return Check(name, WARN, f"fields used when present are absent: {', '.join(absent)}")
    used = {f.crm for f in obj.fields} - optional | written
    return Check(name, PASS, f"{len(used)} mapped fields present, written ones writable")


def run(rt: Runtime, objects: Iterable[ObjectMap] | None = None) -> list[Check]:
    """Every check, in the order a person fixing them would go."""
    s = rt.settings
    checks = [_configuration(s)]
    checks += _guard("database", lambda: _database(rt))
    checks += _guard("redis", lambda: _redis(rt))
    checks += _guard("gateway token", lambda: _gateway(rt))
    checks.append(_webhook_secrets(s))
    login = _guard("salesforce login", lambda: _salesforce_login(rt))
    checks += login
    if any(c.name == "salesforce login" and c.outcome == PASS for c in login):
        checks += _guard("salesforce API version", lambda: _salesforce_version(rt))
        checks += _guard("salesforce allocation", lambda: _salesforce_allocation(rt))
        for obj in objects if objects is not None else OBJECTS.values():
            checks += _guard(f"salesforce {obj.sobject}", lambda o=obj: _object(rt, o))
    return checks

"""Settings: the only place that reads the environment.

One name, one default, one parser per setting. Nothing happens at import: ``Settings.from_env``
is called by ``create_app`` / the worker entry points, and ``validate`` refuses to start a
production process with development secrets.

Fail closed: a process that is not told otherwise is ``production``. Only the development
stack (``paybridge run`` / ``scripts/run``, which sets ``PAYBRIDGE_ENV=development`` for the
processes it starts) and the tests run on the published development secrets and the
emulators' addresses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from app.client_address import Network, parse_networks

ROOT = Path(__file__).resolve().parent.parent

DEV_GATEWAY_TOKEN = "sandbox-token"  # noqa: S105 - the gateway emulator's published dev token
DEV_WEBHOOK_SECRET = "paybridge-dev-webhook-secret"  # noqa: S105 - emulator's dev secret
DEV_SF_CLIENT_SECRET = "paybridge-dev-secret"  # noqa: S105 - Salesforce emulator's dev secret
DEV_SECRET_KEY = "paybridge-dev-session-key"  # noqa: S105
DEV_GATEWAY_URL = "http://127.0.0.1:8002"  # the gateway emulator of the development stack
DEV_SALESFORCE_URL = "https://127.0.0.1:8443"  # the Salesforce emulator of the same
# Shortest secrets accepted outside development: a session key signs cookies (HMAC-SHA1
# wants at least its 20-byte output; 32 leaves room), the partners' own secrets are longer
# than 16 (GoCardless tokens and webhook secrets ~40+, Salesforce consumer secrets 64).
MIN_SECRET_KEY = 32
MIN_PARTNER_SECRET = 16


class ConfigError(RuntimeError):
    """A configuration Paybridge refuses to run with; one line naming each variable."""


# Between the end of a bank-account request's deadline and gunicorn's WEB_TIMEOUT: time to
# record the gateway's answer and to answer the client.
DEADLINE_MARGIN = 5.0
# Each in-flight gateway call briefly takes a database connection of the worker's pool (5 +
# 5 overflow) to record its result; beyond this, threads would mostly wait for one.
MAX_GATEWAY_CONCURRENCY = 32

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 60.0}


def parse_duration(text: str, default_unit: str = "m") -> float:
    """'90s' -> 90.0, '5m' -> 300.0, '2h' -> 7200.0; a bare number is in ``default_unit``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h)")
    unit = match.group(2) or default_unit
    return float(match.group(1)) * _UNIT_SECONDS[unit]


def parse_schedule(text: str) -> tuple[float, ...]:
    """A retry schedule: comma-separated durations, minutes when no unit ('1,5,15' or '30s,2m')."""
    items = [part for part in text.split(",") if part.strip()]
    if not items:
        raise ValueError("a retry schedule needs at least one interval")
    return tuple(parse_duration(part) for part in items)


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _choice(*allowed: str):
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return value

    return parse


def _seconds(text: str) -> float:
    return parse_duration(text, default_unit="s")


@dataclass(frozen=True)
class Settings:
    env: str = field(default="production", metadata={"env": "PAYBRIDGE_ENV",
                     "parse": _choice("development", "test", "production")})
    home: Path = field(default=ROOT / "var", metadata={"env": "PAYBRIDGE_HOME", "parse": Path})
    database_url: str = field(default="", metadata={"env": "DATABASE_URL"})
    redis_url: str = field(default="", metadata={"env": "REDIS_URL"})
    secret_key: str = field(default=DEV_SECRET_KEY, metadata={"env": "SECRET_KEY"})
    log_format: str = field(default="json", metadata={"env": "LOG_FORMAT",
                            "parse": _choice("json", "text")})
    log_level: str = field(default="INFO", metadata={"env": "LOG_LEVEL"})
    max_body_bytes: int = field(default=5 * 1024 * 1024, metadata={"env": "MAX_BODY_BYTES",
                                "parse": int})
    # A bearer token /metrics and /readyz then require (empty: open, as on a private network).
    metrics_token: str = field(default="", metadata={"env": "METRICS_TOKEN"})
    # A scrape reuses the answer built less than this long ago by the same process, so a
    # scraper (or anyone) polling hard costs the database one count per period (0: off).
    metrics_cache_seconds: float = field(default=5.0, metadata={
        "env": "METRICS_CACHE_SECONDS", "parse": _seconds})
    # Requests per API key per API_RATE_WINDOW, shared by every web process through Redis
    # (0: no limit). A key may spend a tenth of it back to back. Generous: a CRM trigger
    # sends 200 changes a call, far more than the workers apply.
    intake_rate_limit: int = field(default=6000, metadata={"env": "INTAKE_RATE_LIMIT",
                                   "parse": int})
    bank_account_rate_limit: int = field(default=3000, metadata={
        "env": "BANK_ACCOUNT_RATE_LIMIT", "parse": int})
    api_rate_window: float = field(default=60.0, metadata={"env": "API_RATE_WINDOW",
                                   "parse": _seconds})
    # gunicorn's worker timeout (app/gunicorn_conf.py applies it): a request still running
    # then is killed wherever it is.
    web_timeout: float = field(default=30.0, metadata={"env": "WEB_TIMEOUT",
                               "parse": _seconds})
    # Everything one bank-account request does with the partners fits in this; it must end
    # DEADLINE_MARGIN before WEB_TIMEOUT, leaving time to record what the gateway did.
    bank_account_deadline: float = field(default=20.0, metadata={
        "env": "BANK_ACCOUNT_DEADLINE", "parse": _seconds})
    # How long an Idempotency-Key is remembered (its digest and its answer), like Stripe's.
    idempotency_key_ttl: float = field(default=86400.0, metadata={
        "env": "IDEMPOTENCY_KEY_TTL", "parse": _seconds})
    # Off by default: sort codes and account numbers are never stored anywhere.
    store_bank_details: bool = field(default=False, metadata={"env": "STORE_BANK_DETAILS",
                                     "parse": _bool})
    # Newer Vocalink modulus tables (valacdos-vX-YY.txt / scsubtab.txt); empty: the shipped copy.
    modulus_weights_path: str = field(default="", metadata={"env": "MODULUS_WEIGHTS_PATH"})
    modulus_substitutions_path: str = field(default="", metadata={
        "env": "MODULUS_SUBSTITUTIONS_PATH"})

    # API Queue processing
    api_queue_mode: str = field(default="immediate", metadata={
        "env": "API_QUEUE_MODE", "parse": _choice("immediate", "scheduled")})
    retry_schedule: tuple[float, ...] = field(
        default=(60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0),
        metadata={"env": "RETRY_SCHEDULE", "parse": parse_schedule})
    retry_jitter: float = field(default=0.1, metadata={"env": "RETRY_JITTER", "parse": float})
    # Row ids per RQ job; 200 fills one sObject Collections write-back call.
    batch_size: int = field(default=200, metadata={"env": "JOB_BATCH_SIZE", "parse": int})
    # How long a job's hold on its rows lasts without renewal. Renewed every quarter of it
    # while the job runs; it must outlast the worst partner call (checked in ``validate``).
    lease_seconds: float = field(default=90.0, metadata={"env": "LEASE_SECONDS",
                                 "parse": _seconds})
    dispatch_interval: float = field(default=1.0, metadata={"env": "DISPATCH_INTERVAL",
                                     "parse": _seconds})
    schedule_interval: float = field(default=60.0, metadata={"env": "SCHEDULE_INTERVAL",
                                     "parse": _seconds})
    redispatch_after: float = field(default=30.0, metadata={"env": "REDISPATCH_AFTER",
                                    "parse": _seconds})
    parent_wait_max: float = field(default=86400.0, metadata={"env": "PARENT_WAIT_MAX",
                                   "parse": _seconds})
    archive_retention: float = field(default=7 * 86400.0, metadata={
        "env": "ARCHIVE_RETENTION", "parse": _seconds})
    worker_class: str = field(default="simple", metadata={"env": "WORKER_CLASS",
                              "parse": _choice("simple", "fork")})
    job_timeout: int = field(default=900, metadata={"env": "JOB_TIMEOUT", "parse": int})

    # Gateway (GoCardless-style)
    gateway_url: str = field(default=DEV_GATEWAY_URL, metadata={"env": "GATEWAY_URL"})
    gateway_access_token: str = field(default=DEV_GATEWAY_TOKEN,
                                      metadata={"env": "GATEWAY_ACCESS_TOKEN"})
    gateway_timeout: float = field(default=10.0, metadata={"env": "GATEWAY_TIMEOUT",
                                   "parse": _seconds})
    # The gateway's allowance (GoCardless: about 1,000 requests a minute), shared by every
    # worker through Redis; 0 turns our own limiter off.
    gateway_rate_limit: int = field(default=1000, metadata={"env": "GATEWAY_RATE_LIMIT",
                                    "parse": int})
    gateway_rate_window: float = field(default=60.0, metadata={"env": "GATEWAY_RATE_WINDOW",
                                       "parse": _seconds})
    # Gateway calls one API Queue job keeps in flight at once (rows of unrelated records;
    # a record's rows, and rows linked to a record in the same job, stay one after another):
    # one worker then fills the allowance instead of waiting out each call's round trip.
    gateway_concurrency: int = field(default=8, metadata={"env": "GATEWAY_CONCURRENCY",
                                     "parse": int})
    webhook_secret: str = field(default=DEV_WEBHOOK_SECRET,
                                metadata={"env": "GOCARDLESS_WEBHOOK_SECRET"})
    # Accepted as well during a secret rotation.
    webhook_secret_previous: str = field(default="", metadata={
        "env": "GOCARDLESS_WEBHOOK_SECRET_PREVIOUS"})
    webhook_max_bytes: int = field(default=2 * 1024 * 1024, metadata={
        "env": "WEBHOOK_MAX_BYTES", "parse": int})
    # Webhooks are accepted only from these networks ("" = from anywhere), on top of the
    # signature; the address is the peer's, or X-Forwarded-For's behind trusted proxies.
    webhook_allowed_cidrs: tuple[Network, ...] = field(default=(), metadata={
        "env": "WEBHOOK_ALLOWED_CIDRS", "parse": parse_networks})
    # How many reverse proxies in front of the web app append to X-Forwarded-For; 0: the
    # header is ignored (a client could write anything in it).
    trusted_proxy_count: int = field(default=0, metadata={"env": "TRUSTED_PROXY_COUNT",
                                     "parse": int})
    # batch: a delivery's events in jobs of up to batch_size, a resource never split over
    # two (one RQ job per event cost intake most of its CPU); event: one job per event
    # (like a Platform Event); scheduled: the clock's sweep only. In every mode a job also
    # applies the events delivered with its own (webhooks.coalescing), so the CRM writes
    # stay batched.
    webhook_mode: str = field(default="batch", metadata={
        "env": "WEBHOOK_MODE", "parse": _choice("event", "batch", "scheduled")})
    webhook_keep_applied: float = field(default=0.0, metadata={
        "env": "WEBHOOK_KEEP_APPLIED", "parse": _seconds})
    # A parked event (it skips a stage) waits this long between looks; after
    # heal_after looks the gateway is asked for the resource's state.
    park_wait: float = field(default=30.0, metadata={"env": "PARK_WAIT", "parse": _seconds})
    heal_after: int = field(default=3, metadata={"env": "HEAL_AFTER", "parse": int})
    # How often the clock asks the gateway for events that never arrived (0 = off). Idle,
    # it costs one list call; each tick reads at most catchup_pages pages and the next tick
    # resumes where it stopped.
    catchup_interval: float = field(default=300.0, metadata={"env": "CATCHUP_INTERVAL",
                                    "parse": _seconds})
    catchup_overlap: float = field(default=3600.0, metadata={"env": "CATCHUP_OVERLAP",
                                   "parse": _seconds})
    catchup_pages: int = field(default=20, metadata={"env": "CATCHUP_PAGES", "parse": int})
    # GoCardless lists at most 500 items a page.
    catchup_page_size: int = field(default=500, metadata={"env": "CATCHUP_PAGE_SIZE",
                                   "parse": int})
    # Scheduled reconciliation (0 = off): a run starts when the last one started this long
    # ago; it applies the safe repairs unless RECONCILE_REPAIR is off. A run is one RQ job
    # on the admin queue, given RECONCILE_TIMEOUT.
    reconcile_interval: float = field(default=86400.0, metadata={"env": "RECONCILE_INTERVAL",
                                      "parse": _seconds})
    reconcile_repair: bool = field(default=True, metadata={"env": "RECONCILE_REPAIR",
                                   "parse": _bool})
    reconcile_timeout: int = field(default=6 * 3600, metadata={"env": "RECONCILE_TIMEOUT",
                                   "parse": int})

    # Salesforce
    salesforce_login_url: str = field(default=DEV_SALESFORCE_URL,
                                      metadata={"env": "SALESFORCE_LOGIN_URL"})
    salesforce_client_id: str = field(default="paybridge",
                                      metadata={"env": "SALESFORCE_CLIENT_ID"})
    salesforce_client_secret: str = field(default=DEV_SF_CLIENT_SECRET,
                                          metadata={"env": "SALESFORCE_CLIENT_SECRET"})
    salesforce_ca_bundle: str = field(default="", metadata={"env": "SALESFORCE_CA_BUNDLE"})
    salesforce_api_version: str = field(default="59.0",
                                        metadata={"env": "SALESFORCE_API_VERSION"})
    salesforce_timeout: float = field(default=20.0, metadata={"env": "SALESFORCE_TIMEOUT",
                                      "parse": _seconds})
    # Share of the daily API allocation left for the org's other integrations.
    salesforce_api_reserve: float = field(default=0.1, metadata={
        "env": "SALESFORCE_API_RESERVE", "parse": float})
    salesforce_limit_pause: float = field(default=300.0, metadata={
        "env": "SALESFORCE_LIMIT_PAUSE", "parse": _seconds})
    # Our share of the allocation is spent evenly over this period (Salesforce's rolling
    # 24 h), after a burst of this share of it for peaks.
    salesforce_api_window: float = field(default=86400.0, metadata={
        "env": "SALESFORCE_API_WINDOW", "parse": _seconds})
    salesforce_api_burst: float = field(default=0.05, metadata={
        "env": "SALESFORCE_API_BURST", "parse": float})
    # A whole-object read of more records than this is one Bulk API 2.0 query job (a few
    # calls) instead of SOQL pages (a call per 2,000 records); 0: always SOQL.
    salesforce_bulk_threshold: int = field(default=10_000, metadata={
        "env": "SALESFORCE_BULK_THRESHOLD", "parse": int})
    # How long such a job may take to complete before the read fails (transient) and the
    # job is aborted.
    salesforce_bulk_wait: float = field(default=600.0, metadata={
        "env": "SALESFORCE_BULK_WAIT", "parse": _seconds})
    # How CRM changes reach the API Queue: "push" (a trigger, Flow or the emulator calls
    # POST /api/v1/queue or /salesforce/outbound) or "poll" (the clock asks Salesforce for
    # records changed since a watermark: no code in the org).
    change_capture: str = field(default="push", metadata={
        "env": "CHANGE_CAPTURE", "parse": _choice("push", "poll")})
    # Idle polling costs one call per mapped object per interval.
    capture_poll_interval: float = field(default=60.0, metadata={
        "env": "CAPTURE_POLL_INTERVAL", "parse": _seconds})
    # How far before its watermark a poll starts again: Salesforce stamps SystemModstamp
    # when a transaction runs, but its records become visible only at commit.
    capture_overlap: float = field(default=300.0, metadata={
        "env": "CAPTURE_OVERLAP", "parse": _seconds})
    # The 18-character organization id Outbound Messages must carry (empty: refuse them all).
    salesforce_org_id: str = field(default="", metadata={"env": "SALESFORCE_ORG_ID"})
    # Gateway status -> CRM picklist label overrides, "confirmed=Collected,paid_out=Paid".
    status_labels: Mapping[str, str] = field(default_factory=dict, metadata={
        "env": "STATUS_LABELS", "parse": lambda t: dict(
            p.split("=", 1) for p in t.split(",") if "=" in p)})

    # Operations console and alerts
    session_lifetime: float = field(default=12 * 3600.0, metadata={
        "env": "SESSION_LIFETIME", "parse": _seconds})
    # Sign-in throttling: past a few free failures (per name, per address) one failure is
    # forgiven every this many seconds, the longest any try waits (app.console.throttle).
    signin_failure_decay: float = field(default=60.0, metadata={
        "env": "SIGNIN_FAILURE_DECAY", "parse": _seconds})
    alert_interval: float = field(default=60.0, metadata={"env": "ALERT_INTERVAL",
                                  "parse": _seconds})
    # A burst of failures is one alert: it goes out once a look finds no new ones, or when
    # the burst has lasted this long.
    alert_group_window: float = field(default=300.0, metadata={
        "env": "ALERT_GROUP_WINDOW", "parse": _seconds})
    # While a condition lasts, it is repeated this often.
    alert_repeat: float = field(default=3600.0, metadata={"env": "ALERT_REPEAT",
                                "parse": _seconds})
    alert_pending_age: float = field(default=3600.0, metadata={"env": "ALERT_PENDING_AGE",
                                     "parse": _seconds})  # 0 = off
    alert_salesforce_usage: float = field(default=0.8, metadata={
        "env": "ALERT_SALESFORCE_USAGE", "parse": float})  # share of the allocation; 0 = off
    alert_webhook_url: str = field(default="", metadata={"env": "ALERT_WEBHOOK_URL"})
    alert_email_to: str = field(default="", metadata={"env": "ALERT_EMAIL_TO"})
    alert_email_from: str = field(default="paybridge@localhost",
                                  metadata={"env": "ALERT_EMAIL_FROM"})
    smtp_host: str = field(default="", metadata={"env": "SMTP_HOST"})
    smtp_port: int = field(default=587, metadata={"env": "SMTP_PORT", "parse": int})
    smtp_username: str = field(default="", metadata={"env": "SMTP_USERNAME"})
    smtp_password: str = field(default="", metadata={"env": "SMTP_PASSWORD"})
    smtp_starttls: bool = field(default=True, metadata={"env": "SMTP_STARTTLS",
                                "parse": _bool})
    # Where the console is reached, for links in alerts ("https://paybridge.example.com").
    console_url: str = field(default="", metadata={"env": "CONSOLE_URL"})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata.get("env")
            if name and name in environ:
                parse = f.metadata.get("parse", str)
                try:
                    values[f.name] = parse(environ[name])
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from exc
        settings = cls(**values)
        return replace(settings, **overrides) if overrides else settings

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'paybridge.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def partner_call_budget(self) -> float:
        """The longest one step with a partner can take: our rate limiter's longest wait,
        then two requests (a call and its follow-up: the GET after a 409, the token refresh
        before a Salesforce call), each with its connect and read timeouts."""
        limiter_wait = 5.0 if self.gateway_rate_limit > 0 else 0.0
        gateway = limiter_wait + 2 * (min(3.05, self.gateway_timeout) + self.gateway_timeout)
        crm = 2 * (2 * self.salesforce_timeout)  # one float: connect and read each
        return max(gateway, crm)

    def validate(self) -> None:
        """Settings that contradict each other, and production with the emulators' published
        development secrets, refuse to start."""
        if self.lease_seconds <= self.partner_call_budget + 1:
            raise ConfigError(
                f"LEASE_SECONDS ({self.lease_seconds:g}s) must be longer than the worst partner "
                f"call ({self.partner_call_budget:g}s from GATEWAY_TIMEOUT, SALESFORCE_TIMEOUT "
                "and the gateway rate limiter's wait), or a call could outlive its lease")
        if not 1 <= self.catchup_page_size <= 500 or self.catchup_pages < 1:
            raise ConfigError("CATCHUP_PAGE_SIZE must be 1-500 (GoCardless's page limit) and "
                               "CATCHUP_PAGES at least 1")
        if self.bank_account_deadline + DEADLINE_MARGIN > self.web_timeout:
            raise ConfigError(
                f"BANK_ACCOUNT_DEADLINE ({self.bank_account_deadline:g}s) must end at least "
                f"{DEADLINE_MARGIN:g}s before WEB_TIMEOUT ({self.web_timeout:g}s, gunicorn's "
                "worker timeout), or gunicorn could kill a request between the gateway's answer "
                "and its record")
        if not 1 <= self.gateway_concurrency <= MAX_GATEWAY_CONCURRENCY:
            raise ConfigError(f"GATEWAY_CONCURRENCY must be 1-{MAX_GATEWAY_CONCURRENCY}")
        if self.trusted_proxy_count < 0:
            raise ConfigError("TRUSTED_PROXY_COUNT must be 0 or more")
        if self.env != "production":
            return
        problems = self._secret_problems()
        if not self.database_url:
            problems.append("DATABASE_URL is not set")
        if not self.redis_url:
            problems.append("REDIS_URL is not set")
        for name, value, dev in (("GATEWAY_URL", self.gateway_url, DEV_GATEWAY_URL),
                                 ("SALESFORCE_LOGIN_URL", self.salesforce_login_url,
                                  DEV_SALESFORCE_URL)):
            if value.rstrip("/") == dev:
                problems.append(f"{name} is the development emulator's address")
        if problems:
            raise ConfigError("refusing to start: " + "; ".join(problems) + " (development "
                              "defaults are only for the development stack, `paybridge run`)")

    def _secret_problems(self) -> list[str]:
        secrets = (
            ("SECRET_KEY", self.secret_key, DEV_SECRET_KEY, MIN_SECRET_KEY, True),
            ("GOCARDLESS_WEBHOOK_SECRET", self.webhook_secret, DEV_WEBHOOK_SECRET,
             MIN_PARTNER_SECRET, True),
            ("GOCARDLESS_WEBHOOK_SECRET_PREVIOUS", self.webhook_secret_previous,
             DEV_WEBHOOK_SECRET, MIN_PARTNER_SECRET, False),
            ("GATEWAY_ACCESS_TOKEN", self.gateway_access_token, DEV_GATEWAY_TOKEN,
             MIN_PARTNER_SECRET, True),
            ("SALESFORCE_CLIENT_SECRET", self.salesforce_client_secret, DEV_SF_CLIENT_SECRET,
             MIN_PARTNER_SECRET, True),
        )
        problems = []
        for name, value, dev, shortest, required in secrets:
            if not value:
                if required:
                    problems.append(f"{name} is not set")
            elif value == dev:
                problems.append(f"{name} is the published development value")
            elif len(value) < shortest:
                problems.append(f"{name} is shorter than {shortest} characters")
        return problems

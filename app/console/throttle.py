"""Sign-in throttling: every wrong password costs time, per user name and per client address.

Each dimension is a leaky bucket in Redis (GCRA, one Lua script, Redis's clock, so every
web process on every machine shares it): a few failures are free (``FREE``), then each one
waits for the one before it to be forgiven, one per ``SIGNIN_FAILURE_DECAY`` seconds. A try
that must wait is refused with ``Retry-After`` *before* the password is checked, and adds
nothing, so the wait never grows past one decay interval: hammering cannot turn the pause
into a lock. Every try reserves its slot atomically before the password check (concurrent
tries cannot slip past the limit) and a success gives it back.

A name can still be kept busy by whoever keeps guessing it. So a browser that signed in
successfully gets a signed device cookie naming that user (OWASP's "device cookie"); with
it, that user's tries go to the device's own bucket instead of the name's and the address's,
which strangers cannot fill. An IPv6 client counts by its /64 network (one host has many).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import secrets
from dataclasses import dataclass
from typing import Any

import redis
from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

log = logging.getLogger(__name__)
FREE = {"name": 5, "address": 20, "device": 5}
DEVICE_COOKIE = "paybridge_device"
DEVICE_DAYS = 30
DEVICE_NAMES = 5  # users remembered per browser (a shared desk)

_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local allowance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if ARGV[3] == 'refund' then
  tat = tat - interval
  if tat > now then
    redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000))
  else
    redis.call('DEL', KEYS[1])
  end
  return '0'
end
local wait = tat - now - allowance
if wait > 0 then return tostring(wait) end
tat = tat + interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1)
return '0'
"""


@dataclass(frozen=True)
class Attempt:
    """The buckets (key, kind) one sign-in try was charged to; none when it must wait (or
    Redis was unreachable)."""

    slots: tuple[tuple[str, str], ...]
    retry_after: float = 0.0


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]  # bounded keys for any input


def client_network() -> str:
    address = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="paybridge-known-device")


def _device() -> dict[str, Any] | None:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        value = _serializer().loads(raw, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return None
    return value if isinstance(value, dict) else None


def _buckets(name: str) -> dict[str, str]:
    device = _device()
    if device and name in device.get("names", []):
        return {f"paybridge:signin:device:{_digest(str(device.get('id')) + name)}": "device"}
    return {f"paybridge:signin:name:{_digest(name)}": "name",
            f"paybridge:signin:address:{_digest(client_network())}": "address"}


def _run(key: str, kind: str, mode: str) -> float:
    rt = current_app.extensions["paybridge"]
    interval = rt.settings.signin_failure_decay
    script = rt.redis.register_script(_SCRIPT)
    return float(script(keys=[key], args=[interval, (FREE[kind] - 1) * interval, mode]))


def begin(name: str) -> Attempt:
    """Reserve a try for ``name`` from this client, or say how long it must wait."""
    taken: list[tuple[str, str]] = []
    try:
        for key, kind in _buckets(name).items():
            wait = _run(key, kind, "take")
            if wait > 0:
                give_back(Attempt(tuple(taken)))  # refused: no bucket is charged
                log.warning("console sign-in throttled",
                            extra={"user": name[:100], "by": kind, "retry_after": wait})
                return Attempt((), retry_after=wait)
            taken.append((key, kind))
    except redis.RedisError:
        # Throttling is a brake, not a gate: while Redis is away, passwords still decide.
        log.error("console sign-in throttling unavailable: Redis unreachable")
        return Attempt(())
    return Attempt(tuple(taken))


def give_back(attempt: Attempt) -> None:
    """A right password (or a refused try) gives its slots back."""
    try:
        for key, kind in attempt.slots:
            _run(key, kind, "refund")
    except redis.RedisError:
        pass


def remember_device(response: Response, name: str) -> None:
    """The signed cookie that spares this browser the name's and the address's buckets."""
    device = _device() or {"id": secrets.token_urlsafe(16), "names": []}
    names = [n for n in device.get("names", []) if n != name] + [name]
    value = _serializer().dumps({"id": device["id"], "names": names[-DEVICE_NAMES:]})
    response.set_cookie(DEVICE_COOKIE, value, max_age=DEVICE_DAYS * 86400, httponly=True,
                        samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))

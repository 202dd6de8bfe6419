"""API fault injection, switchable at run time through ``/sim/faults``.

Contract (one ``FaultState`` per emulator, thread-safe):
- ``fail_next`` rules answer the next ``count`` matching requests with ``status`` and a
  GoCardless-shaped error. Without ``after_effect`` the request is not processed (a 5xx
  creates nothing); with ``after_effect: true`` it is processed first and its answer replaced
  by the error ("the call succeeded but the answer was lost").
- ``reject_next`` rules answer 422 ``validation_failed`` on ``field`` without processing.
- ``latency_ms`` delays every API request; a ``timeout_rate`` share of requests is delayed
  ``timeout_sleep_s`` (real seconds, not scaled) and then processed normally, like a gateway
  that is slow rather than down; an ``error_rate`` share answers 500 without processing.
- Rules match on ``path_prefix`` (default: any path) and ``method`` (default: any method).
``configure`` appends rules and replaces scalar settings; ``clear`` removes everything.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class FailRule:
    status: int
    count: int
    path_prefix: str = ""
    method: str | None = None
    after_effect: bool = False
    message: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and path.startswith(self.path_prefix) and (
            self.method is None or self.method == method
        )


@dataclass
class RejectRule:
    count: int
    field: str
    message: str
    path_prefix: str = ""
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and path.startswith(self.path_prefix) and (
            self.method is None or self.method == method
        )


@dataclass
class Decision:
    """What to do with one request: wait ``delay_s``, then maybe answer an injected error."""

    delay_s: float = 0.0
    fail: FailRule | None = None
    reject: RejectRule | None = None
    random_error: bool = False


def _number(body: dict[str, Any], name: str, low: float, high: float | None = None) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be between {low} and {high}" if high is not None
                         else f"{name} must be at least {low}")
    return float(value)


def _method(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("method must be a string")
    return value.upper()


class FaultState:
    """The current API faults and how many were injected."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.fail_next: list[FailRule] = []
            self.reject_next: list[RejectRule] = []
            self.latency_ms = 0.0
            self.timeout_rate = 0.0
            self.timeout_sleep_s = 30.0
            self.error_rate = 0.0

    def configure(self, body: dict[str, Any]) -> None:
        """Apply a ``POST /sim/faults`` body; raises ``ValueError`` on bad input."""
        fails = [self._fail_rule(item) for item in body.get("fail_next") or []]
        rejects = [self._reject_rule(item) for item in body.get("reject_next") or []]
        scalars = {}
        for name, high in (("latency_ms", None), ("timeout_rate", 1.0),
                           ("timeout_sleep_s", None), ("error_rate", 1.0)):
            if body.get(name) is not None:
                scalars[name] = _number(body, name, 0.0, high)
        with self._lock:
            self.fail_next.extend(fails)
            self.reject_next.extend(rejects)
            for name, value in scalars.items():
                setattr(self, name, value)

    @staticmethod
    def _fail_rule(item: Any) -> FailRule:
        if not isinstance(item, dict):
            raise ValueError("fail_next items must be objects")
        status = item.get("status", 503)
        count = item.get("count", 1)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError("fail_next status must be an HTTP error status (400-599)")
        if not isinstance(count, int) or count < 1:
            raise ValueError("fail_next count must be a positive integer")
        return FailRule(status, count, str(item.get("path_prefix") or ""),
                        _method(item.get("method")), bool(item.get("after_effect", False)),
                        item.get("message"))

    @staticmethod
    def _reject_rule(item: Any) -> RejectRule:
        if not isinstance(item, dict):
            raise ValueError("reject_next items must be objects")
        count = item.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ValueError("reject_next count must be a positive integer")
        return RejectRule(count, str(item.get("field") or "base"),
                          str(item.get("message") or "is invalid"),
                          str(item.get("path_prefix") or ""), _method(item.get("method")))

    def decide(self, method: str, path: str) -> Decision:
        """Draw the faults for one API request, consuming matching one-shot rules."""
        with self._lock:
            decision = Decision(delay_s=self.latency_ms / 1000.0)
            if self.timeout_rate and self._rng.random() < self.timeout_rate:
                decision.delay_s += self.timeout_sleep_s
                self.injected["timeout"] += 1
            for rule in self.fail_next:
                if rule.matches(method, path):
                    rule.count -= 1
                    decision.fail = rule
                    self.injected["fail_next"] += 1
                    break
            if decision.fail is None:
                for reject in self.reject_next:
                    if reject.matches(method, path):
                        reject.count -= 1
                        decision.reject = reject
                        self.injected["reject_next"] += 1
                        break
            if decision.fail is None and decision.reject is None and self.error_rate and (
                self._rng.random() < self.error_rate
            ):
                decision.random_error = True
                self.injected["error_rate"] += 1
            self.fail_next = [r for r in self.fail_next if r.count > 0]
            self.reject_next = [r for r in self.reject_next if r.count > 0]
            return decision

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "fail_next": [asdict(rule) for rule in self.fail_next],
                "reject_next": [asdict(rule) for rule in self.reject_next],
                "latency_ms": self.latency_ms,
                "timeout_rate": self.timeout_rate,
                "timeout_sleep_s": self.timeout_sleep_s,
                "error_rate": self.error_rate,
            }

"""Background auto-advance: every ``interval_s`` (times the time scale) each resource that is
not final for advancing moves one happy-path step, in the order mandates, payments,
subscriptions, refunds, payouts. An interval of 0 switches it off; ``set_interval`` takes
effect immediately.
"""

from __future__ import annotations

import logging
import threading

from .engine import Engine

ORDER = ("mandates", "payments", "subscriptions", "refunds", "payouts")
log = logging.getLogger("sim.gateway.autoadvance")


class AutoAdvancer:
    def __init__(self, engine: Engine, interval_s: float) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._wake = threading.Condition()
        self._closed = False
        self.ticks = 0
        self._thread = threading.Thread(target=self._run, name="gateway-auto-advance",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def set_interval(self, interval_s: float) -> None:
        if interval_s < 0:
            raise ValueError("auto_advance_seconds must be >= 0")
        with self._wake:
            self.interval_s = interval_s
            self._wake.notify_all()

    def tick(self) -> int:
        """Advance everything one step now; returns the number of events emitted."""
        store = self.engine.store
        emitted = 0
        with store.lock:
            snapshot = {t: [r for r in store.all(t) if self.engine.happy_action(r)] for t in ORDER}
            for records in snapshot.values():
                for record in records:
                    if self.engine.step(record)[1] is not None:
                        emitted += 1
        self.ticks += 1
        return emitted

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._closed:
                    return
                if self.interval_s <= 0:
                    self._wake.wait()
                    continue
                period = self.engine.clock.scaled(self.interval_s)
                if self._wake.wait(period) or self._closed:
                    continue
            try:
                self.tick()
            except Exception:
                log.exception("auto-advance tick failed")

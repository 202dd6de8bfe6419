"""One clock leads at a time; others stand by and take over when it stops.

Several clocks may run (one per machine, for availability). Every duty of a tick is safe to
run twice (dispatching never touches a live lease, the catch-up's saves are versioned,
pruning is idempotent), so the lead is about not doing the work twice: alerts sent once,
dispatch passes not doubled. It is a Redis key holding the leader's id with a time to live:
taken with SET NX, renewed only by its holder (a compare-and-renew script), so a clock that
froze past the TTL finds it has lost the lead instead of renewing another's.
"""

from __future__ import annotations

import logging
import uuid

import redis

log = logging.getLogger(__name__)
LEADER_KEY = "paybridge:clock:leader"

# Renew when the key still names us; otherwise take it only if nobody holds it.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class Leadership:
    def __init__(self, conn: redis.Redis, ttl_seconds: float, name: str | None = None) -> None:
        self.conn = conn
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.id = f"{name or 'clock'}:{uuid.uuid4().hex[:8]}"
        self._hold = conn.register_script(_HOLD)
        self.leading = False

    def hold(self) -> bool:
        """Take or keep the lead for another TTL; False while another clock holds it."""
        leading = bool(self._hold(keys=[LEADER_KEY], args=[self.id, self.ttl_ms]))
        if leading != self.leading:
            log.info("clock leads" if leading else "clock stands by",
                     extra={"clock": self.id})
        self.leading = leading
        return leading

    def release(self) -> None:
        """On a clean stop: hand the lead over at once instead of after the TTL."""
        if self.conn.get(LEADER_KEY) == self.id.encode():
            self.conn.delete(LEADER_KEY)
        self.leading = False

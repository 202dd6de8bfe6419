"""`.venv/bin/python -m bench.intake_cpu`: CPU per delivery of intake's pure-Python steps.

Decoding, validating and redacting the same signed bodies as bench.intake (100- and
500-event deliveries), each step timed on its own in this process: per-batch microseconds
of this process's CPU time (other work on the machine counts little), best of several
rounds; no database, no HTTP. Run it before and after a change to one of these steps: the
end-to-end figures of bench.intake mix them with Flask, PostgreSQL and RQ.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from app.redaction import redact_value
from bench.intake import bodies
from webhooks.schemas import BatchSchema, load_events

ROUNDS = 7


def _best_us(step: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for _ in range(repeat):
            step()
        best = min(best, (time.process_time() - start) / repeat)
    return best * 1e6


def _steps(body: bytes) -> dict[str, Callable[[], Any]]:
    document = json.loads(body)
    schema = BatchSchema()
    return {
        "json.loads": lambda: json.loads(body),
        "marshmallow BatchSchema.load": lambda: schema.load(document),
        "load_events (intake's path)": lambda: load_events(document),
        "redact_value of every event": lambda: [redact_value(e) for e in document["events"]],
    }


def main() -> None:
    for size, repeat in ((100, 50), (500, 10)):
        for name, step in _steps(bodies(1, size, "secret")[0][0]).items():
            print(f"{size}-event delivery  {name:<30} {_best_us(step, repeat):>9,.0f} us")


if __name__ == "__main__":
    main()

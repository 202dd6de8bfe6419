"""Named leases for tests: ``held(rt, "w1")`` is the same fenced lease every time a test
names it, as one job run would hold it."""

from __future__ import annotations

import weakref

from app.runtime import Runtime
from app.workrows.leases import Lease, new_lease

_book: weakref.WeakKeyDictionary[Runtime, dict[str, Lease]] = weakref.WeakKeyDictionary()


def held(rt: Runtime, name: str, seconds: float = 30.0) -> Lease:
    leases = _book.setdefault(rt, {})
    if name not in leases:
        leases[name] = new_lease(rt.db, name, seconds)
    leases[name].seconds = seconds
    return leases[name]

"""The bank-details sweep: after a run, search everything Paybridge could have written for
every account number, sort code and account pair, and IBAN the run used.

Everything means: every column of every row of every table (cast to text by the database),
SQLite's files (deleted rows linger in free pages and the WAL), every Redis key and value of
every type (RQ job data decompressed and unpickled), every record of every mapped object in
the CRM emulator (deleted ones too) and its trigger log, and every log file. The end-to-end
bank-account test and the chaos suite both run it; a hit names where it was found.
"""

from __future__ import annotations

import pickle
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from app.mapping import OBJECTS


@dataclass(frozen=True)
class Needles:
    """What must not be found. ``account``, ``pair`` and ``iban`` are searched everywhere;
    ``sort_code`` (six digits that other numbers can contain) only where values are exact:
    the database, Redis and the CRM, not log lines or raw database files."""

    account: list[str]
    pair: list[str]
    sort_code: list[str]
    iban: list[str]

    @classmethod
    def of(cls, used: Iterable[tuple[str, str]], ibans: Iterable[str] = ()) -> Needles:
        found = cls([], [], [], [])
        for sort_code, account in used:
            dashed = f"{sort_code[:2]}-{sort_code[2:4]}-{sort_code[4:]}"
            found.account.extend([account, account.zfill(8)])
            found.pair.extend([f"{sort_code}{account}", f"{sort_code} {account}",
                               f"{sort_code}/{account}", f"{dashed} {account}"])
            found.sort_code.extend([sort_code, dashed])
        for iban in ibans:
            compact = iban.replace(" ", "")
            spaced = " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
            found.iban.extend([compact, spaced])
        return found

    def everywhere(self) -> list[str]:
        return self.account + self.pair + self.iban

    def exact(self) -> list[str]:
        return self.everywhere() + self.sort_code


def database_text(engine: sa.Engine) -> Iterator[tuple[str, str]]:
    """(where, text) for every column of every row of every table."""
    with engine.connect() as conn:
        inspector = sa.inspect(conn)  # one connection: SQLite has a single writer
        tables = {t: [c["name"] for c in inspector.get_columns(t)]
                  for t in inspector.get_table_names()}
        for table, columns in tables.items():
            selectable = sa.table(table, *(sa.column(c) for c in columns))
            query = sa.select(*(sa.cast(selectable.c[c], sa.Text) for c in columns))
            for row in conn.execute(query):
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        yield f"{table}.{column}", str(value)


def database_files(engine: sa.Engine) -> Iterator[tuple[str, str]]:
    if engine.dialect.name != "sqlite":
        return
    path = Path(engine.url.database or "")
    for part in (path, Path(f"{path}-wal")):
        if part.exists():
            yield str(part), part.read_bytes().decode("latin-1")


def _unpacked(value: bytes) -> Iterator[bytes]:
    """A value, and what it holds if it is zlib-compressed and/or pickled (RQ job data)."""
    yield value
    try:
        value = zlib.decompress(value)
        yield value
    except zlib.error:
        pass
    try:
        unpickled = pickle.loads(value)  # noqa: S301 - the run's own Redis
    except Exception:  # noqa: BLE001 - not a pickle: the raw bytes were searched already
        return
    yield repr(unpickled).encode()


def redis_text(conn: redis.Redis) -> Iterator[tuple[str, bytes]]:
    """(key, bytes) for every key and every value of every type in the Redis database."""
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key)
        values: list[bytes] = [key]
        if kind == b"string":
            values.append(conn.get(key) or b"")
        elif kind == b"hash":
            values += [part for pair in conn.hgetall(key).items() for part in pair]
        elif kind == b"list":
            values += conn.lrange(key, 0, -1)
        elif kind == b"set":
            values += list(conn.smembers(key))
        elif kind == b"zset":
            values += [member for member, _ in conn.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            values += [part for _, fields in conn.xrange(key)
                       for pair in fields.items() for part in pair]
        for value in values:
            for unpacked in _unpacked(value):
                yield key.decode(errors="replace"), unpacked


def crm_text(crm_get: Callable[[str], Any]) -> Iterator[tuple[str, str]]:
    """``crm_get(path)``: the CRM emulator's JSON answer for a control path."""
    for obj in OBJECTS.values():
        for rec in crm_get(f"/sim/records/{obj.sobject}?include_deleted=true").get("records",
                                                                                   []):
            yield f"{obj.sobject} {rec.get('Id')}", str(rec)
    yield "trigger log", str(crm_get("/sim/trigger-log?changes=true"))


def log_text(log_dir: Path) -> Iterator[tuple[str, str]]:
    paths = sorted(log_dir.glob("*"))
    if not paths:
        raise AssertionError(f"no log files to search in {log_dir}")
    for path in paths:
        yield path.name, path.read_text(errors="replace")


def hits(source: Iterator[tuple[str, Any]], patterns: Sequence[str]) -> list[str]:
    # Not inside a longer number, nor a fraction (a timestamp's microseconds).
    compiled = [re.compile(rf"(?<![\d.]){re.escape(p)}(?!\d)") for p in patterns]
    found = []
    for where, text in source:
        text = text.decode("latin-1") if isinstance(text, bytes) else text
        found += [f"{where}: {p.pattern}" for p in compiled if p.search(text)]
    return found


def sweep(needles: Needles, *, engine: sa.Engine, redis_conn: redis.Redis,
          crm_get: Callable[[str], Any], log_dir: Path) -> list[str]:
    """Every place a needle was found (empty: nothing leaked)."""
    return (hits(database_text(engine), needles.exact())
            + hits(database_files(engine), needles.everywhere())
            + hits(redis_text(redis_conn), needles.exact())
            + hits(crm_text(crm_get), needles.exact())
            + hits(log_text(log_dir), needles.everywhere()))

"""The org's schema, built from its declared metadata, and Salesforce-style record ids.

The sObjects and their fields are declared in ``sim.salesforce.metadata``; every sObject
gets the standard fields every record has, then its own fields. Names of types and fields
are matched case-insensitively, as the real API does, and always reported back in their
canonical spelling.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from sim.salesforce import metadata
from sim.salesforce.metadata import FieldSpec, SObjectSpec

STANDARD_FIELDS: tuple[str, ...] = tuple(f.name for f in metadata.STANDARD_FIELDS)
# Maintained by the platform; an API write to one is refused.
SYSTEM_FIELDS = frozenset(f.name for f in metadata.STANDARD_FIELDS if f.read_only)

# Standard objects keep their well-known key prefixes; custom objects get a0A, a0B, ...
STANDARD_KEY_PREFIXES = {"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006"}
USER_KEY_PREFIX = "005"
ORG_KEY_PREFIX = "00D"

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


class SchemaError(ValueError):
    """The declared metadata is inconsistent (a bug in ``sim.salesforce.metadata``)."""


@dataclass(frozen=True)
class SObjectType:
    """One sObject: its canonical name, key prefix, fields and (optional) logical object.

    ``logical`` is the object name the org's trigger reports its changes under.
    """

    name: str
    key_prefix: str
    fields: tuple[str, ...]
    logical: str | None
    read_only: frozenset[str]
    specs: tuple[FieldSpec, ...] = ()  # declared metadata, in the order of ``fields``

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def canonical_field(self, name: str) -> str | None:
        """The field's canonical spelling, or None when the type has no such field."""
        lowered = name.lower()
        for candidate in self.fields:
            if candidate.lower() == lowered:
                return candidate
        return None

    def spec(self, name: str) -> FieldSpec | None:
        """The field's declared metadata (any case), or None when the type has no such field."""
        canonical = self.canonical_field(name)
        if canonical is None:
            return None
        return next(s for s in self.specs if s.name == canonical)

    @classmethod
    def declared(cls, spec: SObjectSpec) -> SObjectType:
        """The sObject as declared: standard fields first, then its own fields by name."""
        own = {f.name: f for f in spec.fields}
        if len(own) != len(spec.fields):
            raise SchemaError(f"{spec.name} declares a field twice")
        standard = [own.pop(f.name, f) for f in metadata.STANDARD_FIELDS]
        specs = tuple(standard) + tuple(own[name] for name in sorted(own))
        return cls(
            name=spec.name,
            key_prefix=spec.key_prefix,
            fields=tuple(f.name for f in specs),
            logical=spec.trigger_object,
            read_only=frozenset(f.name for f in specs if f.read_only),
            specs=specs,
        )


def _check(types: list[SObjectType]) -> None:
    names = {t.name for t in types}
    if len(names) != len(types) or len({t.key_prefix for t in types}) != len(types):
        raise SchemaError("sObject names and key prefixes must be unique")
    for t in types:
        if t.name in STANDARD_KEY_PREFIXES and t.key_prefix != STANDARD_KEY_PREFIXES[t.name]:
            raise SchemaError(f"{t.name} must keep its standard key prefix")
        for f in t.specs:
            where = f"{t.name}.{f.name}"
            if f.type not in metadata.FIELD_TYPES:
                raise SchemaError(f"{where}: unknown field type {f.type!r}")
            if (f.type == "reference") != (f.reference_to is not None):
                raise SchemaError(f"{where}: only a reference names (and must name) a target")
            if f.reference_to is not None and f.reference_to not in (
                names | metadata.PLATFORM_OBJECTS
            ):
                raise SchemaError(f"{where}: refers to unknown sObject {f.reference_to}")
            if (f.picklist or f.restricted) and f.type != "picklist":
                raise SchemaError(f"{where}: only a picklist declares values")


class Schema:
    """All sObject types of the org, looked up by name (any case) or by id prefix."""

    def __init__(self, types: list[SObjectType]) -> None:
        self._by_lower = {t.name.lower(): t for t in types}
        self._by_prefix = {t.key_prefix: t for t in types}

    @classmethod
    def declared(cls, specs: Iterable[SObjectSpec] = metadata.SOBJECTS) -> Schema:
        """The org's schema from its metadata declaration (checked for consistency)."""
        types = [SObjectType.declared(spec) for spec in specs]
        _check(types)
        return cls(types)

    @classmethod
    def from_mapping(cls) -> Schema:
        """Former name of ``declared()``, kept for callers (the schema no longer comes from
        the product's mapping table)."""
        return cls.declared()

    def get(self, name: str) -> SObjectType | None:
        return self._by_lower.get(name.lower())

    def for_id(self, record_id: str) -> SObjectType | None:
        return self._by_prefix.get(record_id[:3])

    def types(self) -> list[SObjectType]:
        return list(self._by_lower.values())


def checksum_suffix(id15: str) -> str:
    """The three characters that make a 15-character id case-insensitively unique."""
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_CHARS[bits]
    return suffix


def normalize_id(record_id: str) -> str | None:
    """An 18-character id for a 15- or 18-character one; None when it is not an id at all."""
    if not all(c in _BASE62 for c in record_id):
        return None
    if len(record_id) == 15:
        return record_id + checksum_suffix(record_id)
    if len(record_id) == 18 and checksum_suffix(record_id[:15]) == record_id[15:].upper():
        return record_id[:15] + checksum_suffix(record_id[:15])
    return None


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(_BASE62[rem])
    return "".join(reversed(digits))


class IdFactory:
    """Hands out unique 18-character ids per key prefix.

    Each process starts its counters at a random point so ids from an earlier run of the
    emulator (still held in some other system's database) are not handed out again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, itertools.count[int]] = {}

    def new(self, key_prefix: str) -> str:
        with self._lock:
            counter = self._counters.get(key_prefix)
            if counter is None:
                counter = self._counters[key_prefix] = itertools.count(random.randrange(62**7))
            number = next(counter)
        # prefix (3) + pod (2) + reserved (1) + 9 base62 digits = 15, then the checksum.
        id15 = key_prefix + "8d" + "0" + _base62(number, 9)
        return id15 + checksum_suffix(id15)

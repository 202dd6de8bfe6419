"""Records of the org and the DML that changes them.

Writes are done in two steps so sObject Collections can honour ``allOrNone``: ``plan_*``
validates a write (fields, values and lookups against the declared metadata, see
``sim.salesforce.validation``) and raises ``SfError`` without touching anything; ``apply``
performs a plan and returns the ``Change`` the trigger is told about. Callers hold the org
lock across both steps. Deletes are soft: the record stays (``IsDeleted`` true) so later
calls can tell "deleted" from "never existed", as the recycle bin does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sim.salesforce import errors, validation
from sim.salesforce.errors import SfError
from sim.salesforce.schema import IdFactory, Schema, SObjectType, normalize_id

# Keys a request body may carry next to the fields (Collections put type/id there).
_ENVELOPE_KEYS = frozenset({"attributes"})


def sf_now() -> str:
    """Current time the way the API prints datetimes: 2024-05-01T09:30:00.000+0000."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


@dataclass
class Record:
    sobject: SObjectType
    id: str
    values: dict[str, Any]  # every schema field, canonical names, None when unset

    @property
    def deleted(self) -> bool:
        return bool(self.values.get("IsDeleted"))


@dataclass
class Change:
    """One record change, as the trigger reports it."""

    logical: str | None
    record_id: str
    operation: str  # insert | update | delete
    fields: dict[str, Any]
    previous_fields: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "object": self.logical,
            "record_id": self.record_id,
            "operation": self.operation,
            "fields": self.fields,
        }
        if self.previous_fields is not None:
            body["previous_fields"] = self.previous_fields
        return body


@dataclass
class Plan:
    operation: str
    sobject: SObjectType
    record_id: str
    values: dict[str, Any] = field(default_factory=dict)


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class RecordStore:
    """All records, by id. ``lock_fault`` is asked once per planned write and answers True
    when the write must fail with UNABLE_TO_LOCK_ROW (the fault switch)."""

    def __init__(self, schema: Schema, ids: IdFactory) -> None:
        self.schema = schema
        self.ids = ids
        self._records: dict[str, Record] = {}
        # Seconds to backdate the next transaction's SystemModstamp (see sim.salesforce.capture).
        self.late_visible_seconds = 0.0

    def clear(self) -> None:
        self._records.clear()

    # -- lookups ---------------------------------------------------------------------------

    def sobject(self, name: str) -> SObjectType:
        found = self.schema.get(name)
        if found is None:
            raise errors.not_found()
        return found

    def find(self, record_id: str) -> Record | None:
        normal = normalize_id(record_id)
        return self._records.get(normal) if normal else None

    def existing(self, sobject: SObjectType, record_id: str) -> Record:
        """The live record of that type, else NOT_FOUND (never existed) / ENTITY_IS_DELETED."""
        record = self.find(record_id)
        if record is None or record.sobject is not sobject:
            raise errors.not_found()
        if record.deleted:
            raise errors.entity_deleted()
        return record

    def all_of(self, sobject: SObjectType, include_deleted: bool = False) -> list[Record]:
        return [
            r
            for r in self._records.values()
            if r.sobject is sobject and (include_deleted or not r.deleted)
        ]

    # -- planning ----------------------------------------------------------------------------

    def _clean_values(self, sobject: SObjectType, body: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, value in body.items():
            if key in _ENVELOPE_KEYS:
                continue
            canonical = sobject.canonical_field(key)
            if canonical is None:
                raise errors.invalid_field(key, sobject.name)
            if canonical in sobject.read_only:
                raise errors.read_only_field(canonical)
            spec = sobject.spec(canonical)
            assert spec is not None  # canonical_field found it
            stored = validation.stored_value(spec, value)
            problem = validation.field_error(spec, stored, self.find)
            if problem is not None:
                raise problem
            values[canonical] = stored
        return values

    def plan_insert(
        self, sobject: SObjectType, body: Mapping[str, Any], lock_fault: Callable[[], bool]
    ) -> Plan:
        if any(k.lower() == "id" for k in body):
            raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        values = self._clean_values(sobject, body)
        missing = validation.missing_required(sobject, values, inserting=True)
        if missing is not None:
            raise missing
        record_id = self.ids.new(sobject.key_prefix)
        if lock_fault():
            raise errors.unable_to_lock(record_id)
        return Plan("insert", sobject, record_id, values)

    def plan_update(
        self,
        sobject: SObjectType,
        record_id: str,
        body: Mapping[str, Any],
        lock_fault: Callable[[], bool],
    ) -> Plan:
        record = self.existing(sobject, record_id)
        # The record's own id may ride along in the body (Collections require it there).
        trimmed = {k: v for k, v in body.items() if k.lower() != "id"}
        values = self._clean_values(sobject, trimmed)
        missing = validation.missing_required(sobject, values, inserting=False)
        if missing is not None:
            raise missing
        if lock_fault():
            raise errors.unable_to_lock(record.id)
        return Plan("update", sobject, record.id, values)

    def plan_delete(
        self, sobject: SObjectType, record_id: str, lock_fault: Callable[[], bool]
    ) -> Plan:
        record = self.existing(sobject, record_id)
        if lock_fault():
            raise errors.unable_to_lock(record.id)
        return Plan("delete", sobject, record.id)

    # -- applying ------------------------------------------------------------------------------

    def apply(self, plan: Plan, user_id: str, stamp: str | None = None) -> Change:
        now = sf_now()
        sobject = plan.sobject
        if plan.operation == "insert":
            values: dict[str, Any] = dict.fromkeys(sobject.fields)
            values.update(
                Id=plan.record_id,
                OwnerId=user_id,
                IsDeleted=False,
                CreatedDate=now,
                CreatedById=user_id,
            )
            values.update(plan.values)
            previous = None
            record = Record(sobject, plan.record_id, values)
            self._records[plan.record_id] = record
        else:
            record = self._records[plan.record_id]
            if record.deleted:
                # An earlier write of the same call deleted it.
                raise errors.entity_deleted()
            previous = _compact(record.values)
            if plan.operation == "update":
                record.values.update(plan.values)
            else:
                record.values["IsDeleted"] = True
        record.values["LastModifiedDate"] = now
        record.values["LastModifiedById"] = user_id
        # A delete stamps SystemModstamp too: getDeleted's deletedDate "is obtained using the
        # SystemModstamp system field" (SOAP API, GetDeletedResult:
        # https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_getdeleted_getdeletedresult.htm).
        # SystemModstamp is taken when the transaction starts, so a slow one becomes visible
        # later than its stamp says: ``stamp`` models that (the late-visible switch).
        record.values["SystemModstamp"] = stamp or now
        if sobject.name == "Contact":
            parts = [record.values.get("FirstName"), record.values.get("LastName")]
            record.values["Name"] = " ".join(str(p) for p in parts if p) or None
        return Change(
            logical=sobject.logical,
            record_id=record.id,
            operation=plan.operation,
            fields=_compact(record.values),
            previous_fields=previous,
        )

    # -- rendering -----------------------------------------------------------------------------

    def render(
        self, record: Record, version: str, only: list[str] | None = None
    ) -> dict[str, Any]:
        """The record as the REST API returns it: attributes first, then the fields."""
        out: dict[str, Any] = {
            "attributes": {
                "type": record.sobject.name,
                "url": f"/services/data/{version}/sobjects/{record.sobject.name}/{record.id}",
            }
        }
        names = only if only is not None else list(record.sobject.fields)
        for name in names:
            out[name] = record.values.get(name)
        return out

    def resolve_fields(self, sobject: SObjectType, names: list[str]) -> list[str]:
        """Canonical names for a ``fields=`` list; INVALID_FIELD for an unknown one."""
        resolved = []
        for name in names:
            canonical = sobject.canonical_field(name.strip())
            if canonical is None:
                raise errors.invalid_field(name.strip(), sobject.name)
            resolved.append(canonical)
        return resolved

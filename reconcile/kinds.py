"""The kinds of difference reconciliation reports, and the repairs it suggests for them.

Safe repairs are the ones ``--repair`` applies by itself: each goes through a path Paybridge
already uses (a heal recorded in the status history, a queued update, a CRM write, a CRM
record made for a gateway resource). The rest wait for an admin, the note saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kinds of difference.
MISSING_AT_GATEWAY = "missing_at_gateway"  # the CRM's gateway id is unknown at the gateway
MISSING_IN_CRM = "missing_in_crm"  # a gateway resource no CRM record has
LINK_MISSING = "link_missing"  # metadata.crm_id names a record that lacks the gateway id
LINK_CONFLICT = "link_conflict"  # the two sides name different partners
DUPLICATE_AT_GATEWAY = "duplicate_at_gateway"  # two gateway resources claim one record
STATUS = "status"
FIELD = "field"
NOT_SYNCED = "not_synced"  # a CRM record never sent to the gateway
QUEUE_FAILED = "queue_failed"  # a queue item of the record is Failed
KINDS = (MISSING_AT_GATEWAY, MISSING_IN_CRM, LINK_MISSING, LINK_CONFLICT, DUPLICATE_AT_GATEWAY,
         STATUS, FIELD, NOT_SYNCED, QUEUE_FAILED)

# Repairs.
HEAL = "heal"  # the gateway's status onto the CRM record, in the status history
WRITE_BACK = "write_back"  # a gateway-owned field onto the CRM record
QUEUE_UPDATE = "queue_update"  # a CRM-owned field sent again through the API Queue
CREATE_CRM = "create_crm"  # a CRM record made for the gateway resource
WRITE_LINK = "write_link"  # the gateway id written onto the CRM record
QUEUE_INSERT = "queue_insert"  # backfill: the record queued as an insert
ADMIN = "admin"  # nothing automatic: the note says what to look at
SAFE = frozenset({HEAL, WRITE_BACK, QUEUE_UPDATE, CREATE_CRM, WRITE_LINK})


@dataclass(frozen=True)
class Finding:
    """One difference before it is stored (values already in display form, masked)."""

    object: str
    kind: str
    repair: str
    crm_id: str | None = None
    gateway_id: str | None = None
    field: str | None = None
    crm_value: str | None = None
    gateway_value: str | None = None
    note: str | None = None

    @property
    def key(self) -> str:
        """Stable within a run: the same difference found again is the same row."""
        return ":".join((self.object, self.kind, self.crm_id or "", self.gateway_id or "",
                         self.field or ""))[:200]

    @property
    def safe(self) -> bool:
        return self.repair in SAFE

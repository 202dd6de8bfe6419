"""The declarative table that ties each logical object to its CRM object and gateway resource.

One entry per logical object. Each says which Salesforce object holds it, which gateway
resource it becomes, how CRM fields map to gateway fields (with a converter where units
differ), which gateway answer fields are written back onto the CRM record, and which action
a delete/cancel becomes. The Salesforce emulator in ``sim/`` builds its schema from this
table, so the documented defaults and the emulator can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pycountry

# Written back on every object: the gateway id ("SMPC Id") and the last webhook event applied.
GATEWAY_ID_FIELD = "Gateway_Id__c"
STATUS_FIELD = "Status__c"
LAST_EVENT_FIELD = "Last_Event_Id__c"
SYNC_ERROR_FIELD = "Paybridge_Error__c"


class MappingError(ValueError):
    """A CRM value cannot be turned into a gateway value (names the CRM field)."""

    def __init__(self, crm_field: str, message: str) -> None:
        super().__init__(f"{crm_field}: {message}")
        self.crm_field = crm_field
        self.message = message


def pounds_to_pence(value: Any) -> int:
    """CRM currency fields hold pounds (12.34); the gateway wants integer pence (1234)."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError("is not a number") from exc
    if not amount.is_finite():
        raise ValueError("is not a number")
    pence = (amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if pence != amount * 100:
        raise ValueError("has more than two decimal places")
    return int(pence)


def country_code(value: Any) -> str:
    """GoCardless's ``country_code`` is ISO 3166-1 alpha-2. Salesforce's MailingCountryCode
    holds one (orgs with state and country picklists); MailingCountry is free text, so a
    country name or an alpha-2/alpha-3 code in it is looked up."""
    try:
        return str(pycountry.countries.lookup(str(value).strip()).alpha_2)
    except LookupError:
        raise ValueError("is not a country GoCardless knows: send its ISO 3166-1 code (GB) "
                         "or its name (United Kingdom)") from None


def country_name(code: Any) -> str:
    """The CRM's free-text country for a gateway ``country_code``."""
    found = pycountry.countries.get(alpha_2=str(code).upper())
    return str(found.name) if found is not None else str(code)


def pence_to_pounds(value: Any) -> float:
    return float(Decimal(int(value)) / 100)


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("is not a whole number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError("is not a whole number") from exc
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError("is not a whole number")
    return int(number)


@dataclass(frozen=True)
class FieldMap:
    """One CRM field and the gateway field it feeds.

    ``gateway`` is a dotted path into the gateway resource ("links.mandate"). ``link`` names
    the logical object whose *gateway id* the CRM lookup value must be resolved to.
    """

    crm: str
    gateway: str
    to_gateway: Callable[[Any], Any] | None = None
    link: str | None = None
    on_update: bool = True
    sensitive: bool = False
    # Written to the CRM when a record is made from a gateway resource. Off for a field
    # some orgs lack (MailingCountryCode exists only with state and country picklists).
    to_crm: bool = True


@dataclass(frozen=True)
class ObjectMap:
    name: str
    sobject: str
    resource: str  # gateway resource collection, e.g. "payments"
    fields: tuple[FieldMap, ...]
    # gateway answer field -> CRM field, written back after a successful call
    writeback: Mapping[str, str]
    writeback_converters: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    cancel_action: str | None = "cancel"  # None: a delete removes the resource (DELETE)
    delete_supported: bool = True
    has_status: bool = True
    defaults: Mapping[str, Any] = field(default_factory=dict)  # gateway field defaults
    # CRM field -> gateway fields to fill it from, in order, when a record is made from a
    # gateway resource whose mapped field is empty (the CRM requires the CRM field).
    crm_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def crm_fields(self) -> frozenset[str]:
        """Every CRM field the object carries (used by the emulator's schema)."""
        names = {f.crm for f in self.fields} | set(self.writeback.values())
        names |= {GATEWAY_ID_FIELD, LAST_EVENT_FIELD, SYNC_ERROR_FIELD}
        if self.has_status:
            names.add(STATUS_FIELD)
        return frozenset(names)

    @property
    def sensitive_crm_fields(self) -> frozenset[str]:
        return frozenset(f.crm for f in self.fields if f.sensitive)


_COMMON_WRITEBACK = {"id": GATEWAY_ID_FIELD}

OBJECTS: dict[str, ObjectMap] = {
    m.name: m
    for m in (
        ObjectMap(
            name="Customer",
            sobject="Contact",
            resource="customers",
            fields=(
                FieldMap("FirstName", "given_name"),
                FieldMap("LastName", "family_name"),
                FieldMap("Email", "email"),
                FieldMap("Phone", "phone_number"),
                FieldMap("MailingStreet", "address_line1"),
                FieldMap("MailingCity", "city"),
                FieldMap("MailingPostalCode", "postal_code"),
                # Both feed country_code; the first with a value wins: the org's ISO code
                # when it has one, else the free-text name looked up.
                FieldMap("MailingCountryCode", "country_code", country_code, to_crm=False),
                FieldMap("MailingCountry", "country_code", country_code),
            ),
            writeback=dict(_COMMON_WRITEBACK),
            cancel_action=None,
            has_status=False,
            # Salesforce requires Contact.LastName; a GoCardless customer that is a company
            # may have only company_name (given and family name are then optional).
            crm_fallbacks={"LastName": ("company_name",)},
        ),
        ObjectMap(
            name="BankAccount",
            sobject="Bank_Account__c",
            resource="customer_bank_accounts",
            fields=(
                FieldMap("Contact__c", "links.customer", link="Customer", on_update=False),
                FieldMap("Account_Holder_Name__c", "account_holder_name", on_update=False),
                FieldMap("Country_Code__c", "country_code", on_update=False),
                FieldMap("Currency__c", "currency", on_update=False),
                # Only ever sent when STORE_BANK_DETAILS is on; refused otherwise.
                FieldMap("Sort_Code__c", "branch_code", on_update=False, sensitive=True),
                FieldMap("Account_Number__c", "account_number", on_update=False, sensitive=True),
            ),
            writeback={
                **_COMMON_WRITEBACK,
                "bank_name": "Bank_Name__c",
                "account_number_ending": "Account_Number_Ending__c",
                "enabled": STATUS_FIELD,
            },
            writeback_converters={"enabled": lambda v: "Active" if v else "Disabled"},
            cancel_action="disable",
            defaults={"country_code": "GB", "currency": "GBP"},
        ),
        ObjectMap(
            name="Mandate",
            sobject="Mandate__c",
            resource="mandates",
            fields=(
                FieldMap(
                    "Bank_Account__c", "links.customer_bank_account", link="BankAccount",
                    on_update=False,
                ),
                FieldMap("Scheme__c", "scheme", on_update=False),
                FieldMap("Reference__c", "reference", on_update=False),
            ),
            writeback={
                **_COMMON_WRITEBACK,
                "status": STATUS_FIELD,
                "reference": "Reference__c",
                "next_possible_charge_date": "Next_Possible_Charge_Date__c",
            },
            defaults={"scheme": "bacs"},
        ),
        ObjectMap(
            name="Payment",
            sobject="Payment__c",
            resource="payments",
            fields=(
                FieldMap("Mandate__c", "links.mandate", link="Mandate", on_update=False),
                FieldMap("Amount__c", "amount", pounds_to_pence, on_update=False),
                FieldMap("Currency__c", "currency", on_update=False),
                FieldMap("Charge_Date__c", "charge_date", on_update=False),
                FieldMap("Description__c", "description", on_update=False),
                FieldMap("Reference__c", "reference", on_update=False),
            ),
            writeback={
                **_COMMON_WRITEBACK,
                "status": STATUS_FIELD,
                "charge_date": "Charge_Date__c",
                "reference": "Reference__c",
            },
            defaults={"currency": "GBP"},
        ),
        ObjectMap(
            name="Subscription",
            sobject="Subscription__c",
            resource="subscriptions",
            fields=(
                FieldMap("Mandate__c", "links.mandate", link="Mandate", on_update=False),
                FieldMap("Amount__c", "amount", pounds_to_pence),
                FieldMap("Currency__c", "currency", on_update=False),
                FieldMap("Name", "name"),
                FieldMap("Interval_Unit__c", "interval_unit", on_update=False),
                FieldMap("Interval__c", "interval", as_int, on_update=False),
                FieldMap("Day_Of_Month__c", "day_of_month", as_int, on_update=False),
                FieldMap("Start_Date__c", "start_date", on_update=False),
                FieldMap("Count__c", "count", as_int, on_update=False),
            ),
            writeback={
                **_COMMON_WRITEBACK,
                "status": STATUS_FIELD,
                "start_date": "Start_Date__c",
            },
            defaults={"currency": "GBP", "interval_unit": "monthly"},
        ),
        ObjectMap(
            name="Refund",
            sobject="Refund__c",
            resource="refunds",
            fields=(
                FieldMap("Payment__c", "links.payment", link="Payment", on_update=False),
                FieldMap("Amount__c", "amount", pounds_to_pence, on_update=False),
                FieldMap(
                    "Total_Amount_Confirmation__c", "total_amount_confirmation",
                    pounds_to_pence, on_update=False,
                ),
                FieldMap("Reference__c", "reference", on_update=False),
            ),
            writeback={**_COMMON_WRITEBACK, "status": STATUS_FIELD, "reference": "Reference__c"},
            cancel_action=None,
            delete_supported=False,
        ),
        # Payouts only ever arrive from the gateway (webhooks); nothing is queued for them.
        ObjectMap(
            name="Payout",
            sobject="Payout__c",
            resource="payouts",
            fields=(),
            writeback={
                **_COMMON_WRITEBACK,
                "status": STATUS_FIELD,
                "amount": "Amount__c",
                "arrival_date": "Arrival_Date__c",
                "reference": "Reference__c",
            },
            writeback_converters={"amount": pence_to_pounds},
            cancel_action=None,
            delete_supported=False,
        ),
    )
}

# Objects a CRM trigger may queue changes for (payouts are gateway-only).
QUEUEABLE_OBJECTS = tuple(name for name in OBJECTS if name != "Payout")

RESOURCE_TO_OBJECT = {m.resource: m.name for m in OBJECTS.values()}
SOBJECT_TO_OBJECT = {m.sobject: m.name for m in OBJECTS.values()}


def status_label(status: str, labels: Mapping[str, str] | None = None) -> str:
    """Gateway status -> CRM picklist label ("pending_submission" -> "Pending Submission")."""
    if labels and status in labels:
        return labels[status]
    return status.replace("_", " ").title()


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def to_gateway(
    obj: ObjectMap,
    crm_fields: Mapping[str, Any],
    resolve_link: Callable[[str, str], str],
    *,
    for_update: bool = False,
    only: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Build the gateway body for a CRM record.

    ``resolve_link(object_name, crm_id)`` returns the linked record's gateway id (or raises).
    ``only`` restricts an update to the CRM fields that changed. Empty CRM values are left
    out: the gateway applies its own defaults.
    """
    wanted = set(only) if only is not None else None
    body: dict[str, Any] = {} if for_update else dict(obj.defaults)
    fed: set[str] = set()  # gateway fields already fed by an earlier CRM field
    for fm in obj.fields:
        if for_update and not fm.on_update:
            continue
        if wanted is not None and fm.crm not in wanted:
            continue
        value = crm_fields.get(fm.crm)
        if value is None or value == "" or fm.gateway in fed:
            continue
        fed.add(fm.gateway)
        if fm.link:
            value = resolve_link(fm.link, str(value))
        elif fm.to_gateway:
            try:
                value = fm.to_gateway(value)
            except ValueError as exc:
                raise MappingError(fm.crm, str(exc)) from exc
        _set_path(body, fm.gateway, value)
    return body


def writeback_fields(
    obj: ObjectMap, resource: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """CRM fields to write back from a gateway resource (status mapped to its label)."""
    out: dict[str, Any] = {}
    for gw_field, crm_field in obj.writeback.items():
        if gw_field not in resource or resource[gw_field] is None:
            continue
        value = resource[gw_field]
        if gw_field in obj.writeback_converters:
            value = obj.writeback_converters[gw_field](value)
        elif gw_field == "status":
            value = status_label(str(value), labels)
        out[crm_field] = value
    return out

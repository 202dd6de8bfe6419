"""The emulated org's own metadata: which sObjects it has and every field on them.

This is the org's declaration, written the way an admin would set the org up (Salesforce
field API names and field types), and it is deliberately *not* derived from Paybridge's
mapping table: a field the product names wrongly is then missing here too, and the
cross-check in ``tests/unit/test_architecture.py`` fails.

Each sObject lists its own fields; the standard fields every record has (``Id``, ``Name``,
``OwnerId``, ``IsDeleted``, ``CreatedDate``, ``LastModifiedDate``, ``SystemModstamp``) are
added by ``sim.salesforce.schema`` unless the sObject declares its own version of one
(Contact's compound, read-only ``Name``).

Field types use the names the describe API uses: ``id``, ``string``, ``textarea``,
``email``, ``phone``, ``picklist``, ``currency``, ``double``, ``date``, ``datetime``,
``boolean`` and ``reference`` (with the sObject it points at). Every write is checked
against this declaration the way Salesforce checks it (``sim.salesforce.validation``):
required fields, text lengths, restricted picklist values, value types, lookups.

Lengths of Contact's standard fields are Salesforce's own (Field Reference Guide, Contact:
https://developer.salesforce.com/docs/atlas.en-us.sfFieldRef.meta/sfFieldRef/salesforce_field_reference_Contact.htm,
as mirrored in https://docs.skedulo.com/object-reference/standard-objects/contacts); custom
text fields are the admin's choice (255, the maximum for a Text field) and a standard
``Name`` of a custom object is Text(80).

``trigger_object`` is the object name the org's Apex trigger puts on each change it pushes
to Paybridge (``"object": "Customer"``); sObjects without one are not watched by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELD_TYPES = frozenset({
    "id", "string", "textarea", "email", "phone", "picklist", "currency", "double",
    "date", "datetime", "boolean", "reference",
})


@dataclass(frozen=True)
class FieldSpec:
    """One field: API name, type, and what the org declares about its values."""

    name: str
    type: str
    required: bool = False
    reference_to: str | None = None  # the target sObject of a reference field
    picklist: tuple[str, ...] = ()  # declared values of a picklist field
    read_only: bool = False  # maintained by the platform or computed (not createable)
    length: int | None = None  # maximum characters of a text-like field
    restricted: bool = False  # a restricted picklist: only the declared values are accepted
    label: str | None = None  # the label Salesforce names the field by in its messages

    @property
    def display_label(self) -> str:
        """The field's label: the declared one, else its API name without ``__c`` and with
        words split (``Charge_Date__c`` -> "Charge Date", ``LastName`` -> "Last Name")."""
        if self.label:
            return self.label
        base = self.name.removesuffix("__c").replace("_", " ")
        return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base)


@dataclass(frozen=True)
class SObjectSpec:
    name: str
    key_prefix: str
    fields: tuple[FieldSpec, ...]
    trigger_object: str | None = None


TEXT_MAX = 255  # the longest a Text field can be; the admin made every custom one that long
LONG_TEXT = 32_768  # a Long Text Area(32768)


def _text(name: str, length: int = TEXT_MAX, *, required: bool = False,
          read_only: bool = False, label: str | None = None) -> FieldSpec:
    return FieldSpec(name, "string", required=required, read_only=read_only, length=length,
                     label=label)


def _ref(name: str, target: str) -> FieldSpec:
    return FieldSpec(name, "reference", reference_to=target)


def _picklist(name: str, *values: str) -> FieldSpec:
    """A restricted picklist: the admin ticked "Restrict picklist to the values defined in
    the value set", so any other value is refused (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST)."""
    return FieldSpec(name, "picklist", picklist=values, restricted=True, length=TEXT_MAX)


STANDARD_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("Id", "id", read_only=True),
    _text("Name", 80),
    _ref("OwnerId", "User"),
    FieldSpec("IsDeleted", "boolean", read_only=True),
    FieldSpec("CreatedDate", "datetime", read_only=True),
    FieldSpec("LastModifiedDate", "datetime", read_only=True),
    FieldSpec("SystemModstamp", "datetime", read_only=True),
    # Who made and last changed the record: change capture tells its own writes apart by
    # LastModifiedById (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/system_fields.htm).
    FieldSpec("CreatedById", "reference", read_only=True, reference_to="User"),
    FieldSpec("LastModifiedById", "reference", read_only=True, reference_to="User"),
)

# Platform objects that records point at but that the org does not serve as sObjects.
PLATFORM_OBJECTS = frozenset({"User"})

# Fields the org's admin added to every object Paybridge keeps in step.
_SYNC_FIELDS: tuple[FieldSpec, ...] = (
    _text("Gateway_Id__c"),  # "SMPC Id": the Direct Debit gateway's id of the record
    _text("Last_Event_Id__c"),
    FieldSpec("Paybridge_Error__c", "textarea", length=LONG_TEXT),
)

_CURRENCY = _picklist("Currency__c", "GBP")


def _status(*values: str) -> FieldSpec:
    return _picklist("Status__c", *values)


SOBJECTS: tuple[SObjectSpec, ...] = (
    SObjectSpec(
        "Contact",
        key_prefix="003",
        trigger_object="Customer",
        fields=(
            # Contact.Name is compound (FirstName + LastName): computed, never written.
            _text("Name", 121, read_only=True, label="Full Name"),
            _text("FirstName", 40),
            _text("LastName", 80, required=True),
            FieldSpec("Email", "email", length=80),
            FieldSpec("Phone", "phone", length=40, label="Business Phone"),
            FieldSpec("MailingStreet", "textarea", length=255),
            _text("MailingCity", 40),
            _text("MailingPostalCode", 20, label="Mailing Zip/Postal Code"),
            _text("MailingCountry", 80),
            # Present in orgs with state and country/territory picklists enabled: the ISO
            # 3166-1 alpha-2 code beside the free-text name (Salesforce Help, "State and
            # Country/Territory Picklists").
            _text("MailingCountryCode", 2),
            *_SYNC_FIELDS,
        ),
    ),
    SObjectSpec(
        "Bank_Account__c",
        key_prefix="a0A",
        trigger_object="BankAccount",
        fields=(
            _ref("Contact__c", "Contact"),
            _text("Account_Holder_Name__c"),
            _text("Country_Code__c"),
            _CURRENCY,
            _text("Sort_Code__c"),
            _text("Account_Number__c"),
            _text("Bank_Name__c"),
            _text("Account_Number_Ending__c"),
            _status("Pending", "Active", "Disabled"),
            *_SYNC_FIELDS,
        ),
    ),
    SObjectSpec(
        "Mandate__c",
        key_prefix="a0B",
        trigger_object="Mandate",
        fields=(
            _ref("Bank_Account__c", "Bank_Account__c"),
            _picklist("Scheme__c", "bacs"),
            _text("Reference__c"),
            FieldSpec("Next_Possible_Charge_Date__c", "date"),
            _status(
                "Pending Customer Approval", "Pending Submission", "Submitted", "Active",
                "Suspended By Payer", "Failed", "Cancelled", "Expired", "Consumed", "Blocked",
            ),
            *_SYNC_FIELDS,
        ),
    ),
    SObjectSpec(
        "Payment__c",
        key_prefix="a0C",
        trigger_object="Payment",
        fields=(
            _ref("Mandate__c", "Mandate__c"),
            FieldSpec("Amount__c", "currency"),
            _CURRENCY,
            FieldSpec("Charge_Date__c", "date"),
            _text("Description__c"),
            _text("Reference__c"),
            _status(
                "Pending Customer Approval", "Pending Submission", "Submitted", "Confirmed",
                "Paid Out", "Cancelled", "Customer Approval Denied", "Failed", "Charged Back",
            ),
            *_SYNC_FIELDS,
        ),
    ),
    SObjectSpec(
        "Subscription__c",
        key_prefix="a0D",
        trigger_object="Subscription",
        fields=(
            _ref("Mandate__c", "Mandate__c"),
            FieldSpec("Amount__c", "currency"),
            _CURRENCY,
            _picklist("Interval_Unit__c", "weekly", "monthly", "yearly"),
            FieldSpec("Interval__c", "double"),
            FieldSpec("Day_Of_Month__c", "double"),
            FieldSpec("Start_Date__c", "date"),
            FieldSpec("Count__c", "double"),
            _status(
                "Pending Customer Approval", "Customer Approval Denied", "Active", "Paused",
                "Finished", "Cancelled",
            ),
            *_SYNC_FIELDS,
        ),
    ),
    SObjectSpec(
        "Refund__c",
        key_prefix="a0E",
        trigger_object="Refund",
        fields=(
            _ref("Payment__c", "Payment__c"),
            FieldSpec("Amount__c", "currency"),
            FieldSpec("Total_Amount_Confirmation__c", "currency"),
            _text("Reference__c"),
            # A refund's statuses (GoCardless API reference, Refunds, "status":
            # https://developer.gocardless.com/api-reference#core-endpoints-refunds): no
            # customer approval step, unlike payments and mandates.
            _status(
                "Created", "Pending Submission", "Submitted", "Paid", "Cancelled", "Bounced",
                "Funds Returned",
            ),
            *_SYNC_FIELDS,
        ),
    ),
    SObjectSpec(
        "Payout__c",
        key_prefix="a0F",
        trigger_object="Payout",
        fields=(
            FieldSpec("Amount__c", "currency"),
            FieldSpec("Arrival_Date__c", "date"),
            _text("Reference__c"),
            _status("Pending", "Paid", "Bounced"),
            *_SYNC_FIELDS,
        ),
    ),
)

"""The org metadata the mapping needs, as Salesforce DX source ready for
``sf project deploy start``: ``paybridge salesforce metadata OUTDIR``.

Every custom object and custom field ``app.mapping`` reads or writes, on the custom objects
and on standard ones (Contact), with a type that fits what Paybridge does with it: lookups
for links, Currency for amounts, Number for whole numbers, Date for gateway dates, restricted
picklists for the values the gateway sends (``Status__c`` from the lifecycle tables in
``webhooks.lifecycles`` with the labels of ``STATUS_LABELS``), Text(255) otherwise.

Layout: Salesforce DX Developer Guide, "Salesforce DX Project Structure and Source Format"
(https://developer.salesforce.com/docs/atlas.en-us.sfdx_dev.meta/sfdx_dev/sfdx_dev_source_file_format.htm):
``force-app/main/default/objects/<Object>/<Object>.object-meta.xml`` and
``.../fields/<Field>.field-meta.xml``, with ``sfdx-project.json``
(https://developer.salesforce.com/docs/atlas.en-us.sfdx_dev.meta/sfdx_dev/sfdx_dev_ws_config.htm)
and a ``manifest/package.xml`` (Metadata API Developer Guide, "Sample package.xml Manifest
Files"). Elements: Metadata API Developer Guide, CustomObject
(https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/customobject.htm)
and CustomField
(https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/customfield.htm).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from app.mapping import (
    OBJECTS,
    STATUS_FIELD,
    SYNC_ERROR_FIELD,
    ObjectMap,
    as_int,
    pence_to_pounds,
    pounds_to_pence,
    status_label,
)
from bankaccounts.partners import PLACEHOLDER_STATUS
from webhooks.lifecycles import lifecycle_for

API_VERSION = "59.0"
METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
SOURCE_DIR = Path("force-app/main/default/objects")
TEXT_LENGTH = 255  # the longest a Text field can be
LONG_TEXT_LENGTH = 32_768  # Long Text Area(32768): room for a whole sync error
NAME_LENGTH = 80  # a custom object's Text name field is always 80 characters
# Values the gateway sends for these fields (GoCardless API reference: currency, scheme,
# subscription interval_unit, https://developer.gocardless.com/api-reference).
GATEWAY_PICKLISTS: Mapping[str, tuple[str, ...]] = {
    "Currency__c": ("GBP",),
    "Scheme__c": ("bacs",),
    "Interval_Unit__c": ("weekly", "monthly", "yearly"),
}


@dataclass(frozen=True)
class FieldDef:
    """One custom field as the Metadata API's CustomField declares it."""

    name: str
    type: str  # Text, LongTextArea, Picklist, Currency, Number, Date, Lookup
    label: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    values: tuple[str, ...] = ()
    reference_to: str | None = None
    relationship_name: str | None = None


def label_of(api_name: str) -> str:
    """``Charge_Date__c`` -> "Charge Date"."""
    return api_name.removesuffix("__c").replace("_", " ")


def status_values(obj: ObjectMap, labels: Mapping[str, str]) -> tuple[str, ...]:
    """Every label ``Status__c`` can be written with, the usual line first."""
    lifecycle = lifecycle_for(obj.resource)
    if lifecycle is not None:
        order = lifecycle.preferred or tuple(sorted(lifecycle.statuses))
        found = [status_label(s, labels) for s in order]
    else:  # a bank account: enabled or not, and the placeholder before the gateway answers
        converter = next(c for g, c in obj.writeback_converters.items()
                         if obj.writeback.get(g) == STATUS_FIELD)
        found = [PLACEHOLDER_STATUS, converter(True), converter(False)]
    return tuple(dict.fromkeys(found))


def _field(obj: ObjectMap, name: str, labels: Mapping[str, str]) -> FieldDef:
    label = label_of(name)
    if name == STATUS_FIELD:
        return FieldDef(name, "Picklist", label, values=status_values(obj, labels))
    if name == SYNC_ERROR_FIELD:
        return FieldDef(name, "LongTextArea", label, length=LONG_TEXT_LENGTH)
    if name in GATEWAY_PICKLISTS:
        return FieldDef(name, "Picklist", label, values=GATEWAY_PICKLISTS[name])
    mapped = next((f for f in obj.fields if f.crm == name), None)
    converters = {obj.writeback_converters.get(g) for g, c in obj.writeback.items() if c == name}
    if mapped is not None:
        converters.add(mapped.to_gateway)
    if mapped is not None and mapped.link:
        target = OBJECTS[mapped.link].sobject
        # The child relationship the parent lists these records under (Contact.Bank_Accounts__r).
        child = label_of(obj.sobject).replace(" ", "_") + "s"
        return FieldDef(name, "Lookup", label, reference_to=target, relationship_name=child)
    if converters & {pounds_to_pence, pence_to_pounds}:
        return FieldDef(name, "Currency", label, precision=18, scale=2)
    if as_int in converters:
        return FieldDef(name, "Number", label, precision=18, scale=0)
    if name.endswith("_Date__c"):
        return FieldDef(name, "Date", label)
    return FieldDef(name, "Text", label, length=TEXT_LENGTH)


def custom_fields(obj: ObjectMap, labels: Mapping[str, str]) -> list[FieldDef]:
    """The custom fields ``obj`` needs on its sObject, by name (standard fields exist)."""
    return [_field(obj, n, labels) for n in sorted(obj.crm_fields) if n.endswith("__c")]


def _element(tag: str, value: object) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"    <{tag}>{escape(text)}</{tag}>\n"


def field_xml(field: FieldDef) -> str:
    """The CustomField, its elements in the order Salesforce retrieves them (by name)."""
    parts = {"externalId": _element("externalId", False),
             "label": _element("label", field.label), "required": _element("required", False),
             "type": _element("type", field.type)}
    if field.type == "Lookup":
        # A lookup that is not required must clear itself when its parent goes (SetNull).
        parts |= {"deleteConstraint": _element("deleteConstraint", "SetNull"),
                  "referenceTo": _element("referenceTo", field.reference_to),
                  "relationshipLabel": _element("relationshipLabel",
                                                label_of(field.relationship_name or "")),
                  "relationshipName": _element("relationshipName", field.relationship_name)}
    if field.length is not None:
        parts["length"] = _element("length", field.length)
    if field.precision is not None:
        parts |= {"precision": _element("precision", field.precision),
                  "scale": _element("scale", field.scale)}
    if field.type == "Text":
        parts["unique"] = _element("unique", False)
    if field.type == "LongTextArea":
        parts["visibleLines"] = _element("visibleLines", 3)
    if field.type == "Picklist":
        values = "".join(
            "            <value>\n"
            f"                <fullName>{escape(v)}</fullName>\n"
            "                <default>false</default>\n"
            f"                <label>{escape(v)}</label>\n"
            "            </value>\n" for v in field.values)
        parts["valueSet"] = ("    <valueSet>\n        <restricted>true</restricted>\n"
                             "        <valueSetDefinition>\n            <sorted>false</sorted>\n"
                             f"{values}        </valueSetDefinition>\n    </valueSet>\n")
    body = _element("fullName", field.name) + "".join(parts[k] for k in sorted(parts))
    return _document("CustomField", body)


def object_xml(obj: ObjectMap) -> str:
    label = label_of(obj.sobject)
    name_field = ("    <nameField>\n"
                  f"        <label>{escape(label)} Name</label>\n"
                  "        <type>Text</type>\n    </nameField>\n")
    return _document("CustomObject", "".join([
        _element("deploymentStatus", "Deployed"), _element("enableActivities", False),
        _element("enableReports", True), _element("label", label), name_field,
        _element("pluralLabel", label + "s"), _element("sharingModel", "ReadWrite"),
        _element("visibility", "Public")]))


def _document(root: str, body: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{METADATA_NS}">\n'
            f"{body}</{root}>\n")


def package_xml(objects: list[ObjectMap], labels: Mapping[str, str]) -> str:
    custom = sorted(o.sobject for o in objects if o.sobject.endswith("__c"))
    fields = sorted(f"{o.sobject}.{f.name}" for o in objects for f in custom_fields(o, labels))
    types = "".join(
        "    <types>\n" + "".join(f"        <members>{m}</members>\n" for m in members)
        + f"        <name>{kind}</name>\n    </types>\n"
        for kind, members in (("CustomField", fields), ("CustomObject", custom)))
    return _document("Package", types + _element("version", API_VERSION))


def sfdx_project() -> str:
    return json.dumps({
        "packageDirectories": [{"path": "force-app", "default": True}],
        "name": "paybridge-org-metadata", "namespace": "",
        "sfdcLoginUrl": "https://login.salesforce.com", "sourceApiVersion": API_VERSION,
    }, indent=2) + "\n"


def write(outdir: Path, labels: Mapping[str, str]) -> list[Path]:
    """Write the project under ``outdir``; returns the files written, relative to it."""
    objects = list(OBJECTS.values())
    files: dict[Path, str] = {Path("sfdx-project.json"): sfdx_project(),
                              Path("manifest/package.xml"): package_xml(objects, labels)}
    for obj in objects:
        folder = SOURCE_DIR / obj.sobject
        if obj.sobject.endswith("__c"):  # standard objects exist: only their fields are ours
            files[folder / f"{obj.sobject}.object-meta.xml"] = object_xml(obj)
        for field in custom_fields(obj, labels):
            files[folder / "fields" / f"{field.name}.field-meta.xml"] = field_xml(field)
    for relative, text in files.items():
        target = outdir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return sorted(files)

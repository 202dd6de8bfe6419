"""The org's schema read from Salesforce DX metadata source, as a deployment would set it up.

``python -m sim.salesforce --metadata-dir DIR`` (or ``SALESFORCE_SIM_METADATA_DIR``) serves
the objects and fields a project directory declares instead of the built-in declaration in
``sim.salesforce.metadata``: what a user deploys to a real org is then exactly what the
emulator serves.

Where the files are: Salesforce DX Developer Guide, "Salesforce DX Project Structure and
Source Format" (https://developer.salesforce.com/docs/atlas.en-us.sfdx_dev.meta/sfdx_dev/sfdx_dev_source_file_format.htm):
the package directories of ``sfdx-project.json``, each with
``**/objects/<Object>/<Object>.object-meta.xml`` and ``.../fields/<Field>.field-meta.xml``.
What the elements mean: Metadata API Developer Guide, CustomObject and CustomField
(https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/customfield.htm);
what type the describe call then reports for each field type: REST API Developer Guide,
sObject Describe / SOAP API "Field" (FieldType: string, textarea, picklist, currency,
double, date, reference, ...).

A standard object's file lists only the custom fields added to it; its standard fields are
the platform's (taken from the built-in declaration). Key prefixes are the org's choice at
deployment and the org's trigger is Apex, not metadata: both are kept from the built-in
declaration for the objects it knows.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree.ElementTree import Element  # noqa: S405 - the type only; parsing is defusedxml

from defusedxml import ElementTree

from sim.salesforce import metadata
from sim.salesforce.metadata import FieldSpec, SObjectSpec

NS = "{http://soap.sforce.com/2006/04/metadata}"
# CustomField type -> the describe type, and the length the platform gives it when the
# file names none (Email 80, Phone 40, Text Area 255, picklist values 255).
FIELD_TYPES: dict[str, tuple[str, int | None]] = {
    "Text": ("string", None), "LongTextArea": ("textarea", None), "TextArea": ("textarea", 255),
    "Email": ("email", 80), "Phone": ("phone", 40), "Picklist": ("picklist", 255),
    "Currency": ("currency", None), "Number": ("double", None), "Date": ("date", None),
    "DateTime": ("datetime", None), "Checkbox": ("boolean", None),
    "Lookup": ("reference", None),
}


class MetadataSourceError(ValueError):
    """The project directory cannot be read as an org schema (names the file)."""


def _text(element: Element, tag: str) -> str | None:
    found = element.find(NS + tag)
    return found.text.strip() if found is not None and found.text else None


def _field(path: Path) -> FieldSpec:
    root = ElementTree.parse(path).getroot()
    name, kind = _text(root, "fullName") or path.name.split(".")[0], _text(root, "type")
    if kind not in FIELD_TYPES:
        raise MetadataSourceError(f"{path}: field type {kind!r} is not one the emulator serves")
    described, default_length = FIELD_TYPES[kind]
    length = _text(root, "length")
    values = tuple(v for v in (_text(e, "fullName") for e in root.iter(NS + "value")) if v)
    value_set = root.find(NS + "valueSet")
    return FieldSpec(
        name, described, required=_text(root, "required") == "true",
        reference_to=_text(root, "referenceTo"), picklist=values,
        length=int(length) if length else default_length,
        restricted=value_set is not None and _text(value_set, "restricted") == "true",
        label=_text(root, "label"))


def _object_dirs(project: Path) -> list[Path]:
    config = project / "sfdx-project.json"
    if not config.is_file():
        raise MetadataSourceError(f"{project}: no sfdx-project.json")
    packages = json.loads(config.read_text(encoding="utf-8")).get("packageDirectories") or []
    return sorted(d for p in packages for d in (project / p["path"]).glob("**/objects/*")
                  if d.is_dir())


def load(project: str | Path) -> tuple[SObjectSpec, ...]:
    """The sObjects the project declares, as the emulator's schema declares them."""
    built_in = {s.name: s for s in metadata.SOBJECTS}
    prefixes = iter(f"a1{c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    specs = []
    for folder in _object_dirs(Path(project)):
        name = folder.name
        known = built_in.get(name)
        own = tuple(_field(p) for p in sorted((folder / "fields").glob("*.field-meta.xml")))
        if not name.endswith("__c"):
            if known is None:
                raise MetadataSourceError(f"{folder}: standard object {name} is not emulated")
            own = tuple(f for f in known.fields if not f.name.endswith("__c")) + own
        elif not (folder / f"{name}.object-meta.xml").is_file():
            raise MetadataSourceError(f"{folder}: no {name}.object-meta.xml")
        specs.append(SObjectSpec(
            name, key_prefix=known.key_prefix if known else next(prefixes), fields=own,
            trigger_object=known.trigger_object if known else None))
    return tuple(specs)

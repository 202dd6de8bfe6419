"""`paybridge salesforce metadata OUTDIR`: the org metadata the mapping needs, as Salesforce
DX source. Checked against the Metadata API's rules (well-formed, its namespace, the
required elements of CustomObject and CustomField, valid API names), against the mapping
(every mapped field, with a type that fits), and served by the Salesforce emulator: its
describe of the deployed files equals its built-in declaration for every mapped field."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element  # noqa: S405 - the type only; parsing is defusedxml

import pytest
import requests
from click.testing import CliRunner
from defusedxml import ElementTree

from app.cli import cli
from app.mapping import OBJECTS
from sim.salesforce import SimConfig, start_in_thread
from sim.salesforce.metadata_source import load
from sim.salesforce.schema import Schema
from tests.unit.test_architecture import mapping_problems

NS = "{http://soap.sforce.com/2006/04/metadata}"
# Custom API names: letters, digits and single underscores, starting with a letter, not
# ending in one, then __c; 40 characters before the suffix (Salesforce Help, "Custom Field
# Attributes" / "Custom Object Attributes").
CUSTOM_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)__c$")
NAME_MAX = 40
LABEL_MAX = 40  # a custom field's label
DELETE_CONSTRAINTS = {"SetNull", "Restrict", "Cascade"}
TEXT_MAX = 255
LONG_TEXT_RANGE = range(256, 131_073)
PRECISION_MAX = 18  # Number and Currency: digits in all, decimal places included
USER = {"grant_type": "password", "username": "demo@example.com", "password": "demo"}


def generate(outdir: Path, env: dict[str, str] | None = None) -> Path:
    answer = CliRunner().invoke(cli, ["salesforce", "metadata", str(outdir)], env=env)
    assert answer.exit_code == 0, answer.output
    assert "sf project deploy start" in answer.output
    return outdir


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("org-metadata"))


def _root(path: Path, kind: str) -> Element:
    root = ElementTree.parse(path).getroot()
    assert root.tag == NS + kind, f"{path.name}: root is {root.tag}"
    return root


def _value(element: Element, tag: str, where: str) -> str:
    found = element.find(NS + tag)
    assert found is not None and found.text, f"{where}: <{tag}> is required"
    return found.text


def _check_name(name: str, where: str) -> None:
    assert CUSTOM_NAME.match(name), f"{where}: {name!r} is not a valid custom API name"
    assert len(name.removesuffix("__c")) <= NAME_MAX, f"{where}: {name!r} is too long"


def _check_field(path: Path) -> tuple[str, str]:
    root = _root(path, "CustomField")
    where = path.name
    name = _value(root, "fullName", where)
    assert path.name == f"{name}.field-meta.xml", f"{where}: file and fullName differ"
    _check_name(name, where)
    assert len(_value(root, "label", where)) <= LABEL_MAX
    kind = _value(root, "type", where)
    if kind == "Text":
        assert 1 <= int(_value(root, "length", where)) <= TEXT_MAX
    elif kind == "LongTextArea":
        assert int(_value(root, "length", where)) in LONG_TEXT_RANGE
        assert int(_value(root, "visibleLines", where)) >= 1
    elif kind in ("Currency", "Number"):
        precision = int(_value(root, "precision", where))
        scale = int(_value(root, "scale", where))
        assert 1 <= precision <= PRECISION_MAX and 0 <= scale <= precision, where
    elif kind == "Picklist":
        value_set = root.find(NS + "valueSet")
        assert value_set is not None, f"{where}: a picklist needs a valueSet"
        definition = value_set.find(NS + "valueSetDefinition")
        assert definition is not None, f"{where}: valueSetDefinition is required"
        values = [_value(v, "fullName", where) for v in definition.findall(NS + "value")]
        assert values and len(values) == len(set(values)), f"{where}: values {values}"
        assert all(len(v) <= TEXT_MAX for v in values)
    elif kind == "Lookup":
        _value(root, "referenceTo", where)
        _check_name(_value(root, "relationshipName", where) + "__c", where)
        assert _value(root, "deleteConstraint", where) in DELETE_CONSTRAINTS
        assert _value(root, "required", where) == "false" or (
            _value(root, "deleteConstraint", where) != "SetNull")
    elif kind != "Date":  # a Date field has no type-specific elements
        pytest.fail(f"{where}: unexpected field type {kind}")
    return name, kind


def _check_object(path: Path) -> None:
    root = _root(path, "CustomObject")
    where = path.name
    for tag in ("label", "pluralLabel", "deploymentStatus", "sharingModel"):
        _value(root, tag, where)
    assert _value(root, "deploymentStatus", where) in {"Deployed", "InDevelopment"}
    name_field = root.find(NS + "nameField")
    assert name_field is not None, f"{where}: nameField is required"
    assert _value(name_field, "type", where) in {"Text", "AutoNumber"}
    _value(name_field, "label", where)


def test_the_files_follow_the_metadata_api_rules(project: Path) -> None:
    config = json.loads((project / "sfdx-project.json").read_text())
    assert [p["path"] for p in config["packageDirectories"]] == ["force-app"]
    objects = project / "force-app/main/default/objects"
    members: dict[str, set[str]] = {"CustomObject": set(), "CustomField": set()}
    for folder in sorted(objects.iterdir()):
        own = folder / f"{folder.name}.object-meta.xml"
        if folder.name.endswith("__c"):
            _check_name(folder.name, folder.name)
            _check_object(own)
            members["CustomObject"].add(folder.name)
        else:
            assert not own.exists(), f"{folder.name} is standard: only its fields are ours"
        for path in sorted((folder / "fields").iterdir()):
            name, _kind = _check_field(path)
            members["CustomField"].add(f"{folder.name}.{name}")
    manifest = _root(project / "manifest/package.xml", "Package")
    listed = {_value(t, "name", "package.xml"): {m.text for m in t.findall(NS + "members")}
              for t in manifest.findall(NS + "types")}
    assert listed == members
    assert re.fullmatch(r"\d+\.0", _value(manifest, "version", "package.xml"))
    assert {o.sobject for o in OBJECTS.values()} == {f.name for f in objects.iterdir()}


def test_every_mapped_field_is_there_with_a_type_that_fits(project: Path) -> None:
    schema = Schema.declared(load(project))
    problems = [p for obj in OBJECTS.values() for p in mapping_problems(obj, schema)]
    assert problems == []


def test_status_picklists_carry_the_configured_labels(tmp_path: Path) -> None:
    generate(tmp_path, env={"STATUS_LABELS": "paid_out=Paid,confirmed=Collected"})
    payment = Schema.declared(load(tmp_path)).get("Payment__c")
    assert payment is not None
    status = payment.spec("Status__c")
    assert status is not None and status.restricted
    assert {"Paid", "Collected"} <= set(status.picklist)
    assert not {"Paid Out", "Confirmed"} & set(status.picklist)


def _describe(url: str, ca: str, sobject: str) -> dict[str, dict[str, Any]]:
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (see FACTS)
    http.verify = ca
    token = http.post(f"{url}/services/oauth2/token", data=USER).json()["access_token"]
    answer = http.get(f"{url}/services/data/v59.0/sobjects/{sobject}/describe",
                      headers={"Authorization": f"Bearer {token}"})
    answer.raise_for_status()
    return {f["name"]: f for f in answer.json()["fields"]}


@pytest.fixture
def two_orgs(project: Path) -> Iterator[tuple[tuple[str, str], tuple[str, str]]]:
    """The emulator on the generated files, and on its built-in declaration."""
    deployed_url, deployed_ca, stop_deployed = start_in_thread(
        SimConfig(port=0, metadata_dir=str(project)))
    built_in_url, built_in_ca, stop_built_in = start_in_thread(SimConfig(port=0))
    yield (deployed_url, deployed_ca), (built_in_url, built_in_ca)
    stop_deployed()
    stop_built_in()


def test_the_emulator_serves_the_files_as_its_built_in_org(two_orgs: Any) -> None:
    deployed, built_in = two_orgs
    for obj in OBJECTS.values():
        served, declared = (_describe(*org, obj.sobject) for org in (deployed, built_in))
        for name in sorted(obj.crm_fields):
            assert name in served, f"{obj.sobject}.{name} is not served"
            got, want = served[name], declared[name]
            got["picklistValues"].sort(key=lambda v: v["value"])
            want["picklistValues"].sort(key=lambda v: v["value"])
            assert got == want, f"{obj.sobject}.{name}"

"""`paybridge doctor` against both emulators over HTTP(S): every check passes on a ready
stack, and each problem a user connecting a real org can have is named with its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

from app import doctor
from app.config import ROOT
from app.mapping import OBJECTS, FieldMap
from app.runtime import Runtime


def outcomes(checks: list[doctor.Check]) -> dict[str, str]:
    return {c.name: c.outcome for c in checks}


def test_a_ready_stack_passes_every_check_but_the_development_warning(emulators) -> None:
    rt, _, _ = emulators
    checks = doctor.run(rt)
    found = outcomes(checks)
    assert found.pop("configuration") == doctor.WARN  # PAYBRIDGE_ENV=test
    assert found.pop("webhook secret") == doctor.FAIL  # the published development secret
    assert set(found.values()) == {doctor.PASS}, [c.line() for c in checks]
    names = set(found)
    assert {f"salesforce {o.sobject}" for o in OBJECTS.values()} <= names
    assert {"database", "redis", "gateway token", "salesforce login",
            "salesforce API version", "salesforce allocation"} <= names


def test_each_problem_is_named_with_its_fix(emulators) -> None:
    rt, _, _ = emulators
    broken = Runtime(replace(rt.settings, salesforce_api_version="12.0",
                             webhook_secret="x" * 40, gateway_access_token="wrong"))
    customer = OBJECTS["Customer"]
    extra = replace(customer, fields=(*customer.fields, FieldMap("Loyalty_Tier__c", "x")))
    checks = {c.name: c for c in doctor.run(broken, objects=[extra])}
    assert checks["webhook secret"].outcome == doctor.PASS
    assert checks["gateway token"].outcome == doctor.FAIL
    assert checks["salesforce API version"].outcome == doctor.FAIL
    assert "SALESFORCE_API_VERSION" in checks["salesforce API version"].fix
    contact = checks["salesforce Contact"]
    assert contact.outcome == doctor.FAIL and "Loyalty_Tier__c" in contact.detail
    assert "paybridge salesforce metadata" in contact.fix
    # A refused login stops the org checks, with Salesforce's reason.
    refused = Runtime(replace(rt.settings, salesforce_client_secret="not-the-secret"))
    checks = {c.name: c for c in doctor.run(refused)}
    assert checks["salesforce login"].outcome == doctor.FAIL
    assert "not-the-secret" not in checks["salesforce login"].detail
    assert "salesforce Contact" not in checks
    for runtime in (broken, refused):
        runtime.db.dispose()


def test_the_command_exits_1_when_a_check_fails(emulators) -> None:
    rt, gw_url, sf_url = emulators
    s = rt.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update({"PAYBRIDGE_ENV": "test", "DATABASE_URL": s.effective_database_url,
                "REDIS_URL": rt.redis_url, "GATEWAY_URL": gw_url,
                "SALESFORCE_LOGIN_URL": sf_url, "SALESFORCE_CA_BUNDLE": s.salesforce_ca_bundle,
                "GATEWAY_TIMEOUT": "2", "SALESFORCE_TIMEOUT": "3", "LEASE_SECONDS": "20"})
    done = subprocess.run([sys.executable, "-m", "app.cli", "doctor"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "FAIL webhook secret" in done.stdout and "PASS salesforce Contact" in done.stdout
    assert "fix: copy the secret" in done.stdout

"""Fuzzing every endpoint of the OpenAPI document: never a 5xx, never accepted invalid data.

Schemathesis generates valid (positive) and invalid (negative) requests for each operation
from the document itself; a bounded example budget keeps it to seconds. Runs on the real
database and Redis with an admin key, so requests reach the handlers, not just the auth check.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection

from app.runtime import Runtime
from app.web import create_app

BUDGET = settings(max_examples=12, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_no_invalid_data_accepted(rt: Runtime, admin_headers: dict[str, str],
                                             mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", create_app(runtime=rt))
    checks = [not_a_server_error] + ([negative_data_rejection]
                                     if mode is GenerationMode.NEGATIVE else [])
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @BUDGET
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers={**(case.headers or {}), **admin_headers},
                                   checks=checks)

        try:
            run()
        except Unsatisfiable:
            continue  # negative mode: nothing in this operation can be made invalid
        fuzzed.append(operation.label)
    assert len(fuzzed) >= 8, fuzzed

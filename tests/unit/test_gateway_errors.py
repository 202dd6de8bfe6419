"""How gateway answers are classified: transient, permanent, invalid state, or success."""

from __future__ import annotations

import json

import pytest
import requests

from app.clients.errors import InvalidStateError, PermanentError, TransientError
from app.clients.gateway import GatewayClient, _conflicting_id, _retry_after


def answer(status: int, body: object = None, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else b""
    response.headers.update(headers)
    return response


CLIENT = GatewayClient("http://gateway.invalid", "token")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_and_rate_limits_are_transient(status: int) -> None:
    with pytest.raises(TransientError) as exc:
        CLIENT._check(answer(status, {"error": {"message": "busy"}}, **{"Retry-After": "7"}),
                      "POST", "/payments")
    assert exc.value.status == status and exc.value.retry_after == 7.0


def test_rate_limit_reset_counts_only_for_429() -> None:
    reset = "Wed, 21 Oct 2099 07:28:00 GMT"
    assert _retry_after(answer(503, {}, **{"RateLimit-Reset": reset})) is None
    assert _retry_after(answer(429, {}, **{"RateLimit-Reset": reset})) > 1000


def test_validation_errors_are_permanent_and_name_the_field() -> None:
    body = {"error": {"type": "validation_failed", "code": 422, "message": "Validation failed",
                      "errors": [{"field": "amount", "message": "must be greater than 0"}]}}
    with pytest.raises(PermanentError) as exc:
        CLIENT._check(answer(422, body), "POST", "/payments")
    assert "amount: must be greater than 0" in str(exc.value)
    assert not isinstance(exc.value, TransientError)


def test_invalid_state_carries_the_reason() -> None:
    body = {"error": {"type": "invalid_state", "code": 422, "message": "Cannot cancel",
                      "errors": [{"reason": "cancellation_failed", "message": "paid out"}]}}
    with pytest.raises(InvalidStateError) as exc:
        CLIENT._check(answer(422, body), "POST", "/payments/PM1/actions/cancel")
    assert exc.value.reason == "cancellation_failed"


def test_idempotent_creation_conflict_names_the_existing_resource() -> None:
    body = {"error": {"type": "invalid_state", "code": 409, "errors": [
        {"reason": "idempotent_creation_conflict",
         "links": {"conflicting_resource_id": "PM0042"}}]}}
    assert _conflicting_id(answer(409, body)) == "PM0042"
    assert _conflicting_id(answer(409, {"error": {"errors": []}})) is None


def test_unreachable_gateway_is_transient() -> None:
    client = GatewayClient("http://127.0.0.1:9", "token", timeout=1)
    with pytest.raises(TransientError, match="unreachable"):
        client.get("payments", "PM1")


def test_bank_details_in_gateway_messages_are_masked() -> None:
    body = {"error": {"message": "account 12-34-56 31926819 rejected", "errors": []}}
    with pytest.raises(PermanentError) as exc:
        CLIENT._check(answer(422, body), "POST", "/customer_bank_accounts")
    assert "31926819" not in str(exc.value)

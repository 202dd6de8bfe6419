"""How gateway answers are classified: transient, permanent, invalid state, or success."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

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


def conflict(*errors: dict[str, object], error_type: str = "invalid_state") -> dict[str, object]:
    return {"error": {"type": error_type, "code": 409, "message": "Conflict",
                      "errors": list(errors)}}


@pytest.mark.parametrize("body", [
    # the earlier request with this Idempotency-Key has not finished: no resource to link yet
    conflict({"reason": "idempotent_creation_conflict",
              "message": "A resource has already been created with this idempotency key"}),
    conflict({"reason": "idempotent_creation_conflict", "links": {}}),
    conflict({"reason": "conflict", "message": "Conflict"}),
    conflict(),
    conflict({"reason": "conflict"}, error_type="invalid_api_usage"),
    None,
], ids=["no-links", "empty-links", "generic-conflict", "no-reason", "api-usage", "no-body"])
def test_a_409_without_the_conflicting_resource_is_transient(body: object) -> None:
    with pytest.raises(TransientError) as exc:
        CLIENT._check(answer(409, body, **{"Retry-After": "3"}), "POST", "/payments")
    assert exc.value.status == 409 and exc.value.retry_after == 3.0
    assert not isinstance(exc.value, PermanentError)
    assert "POST /payments" in str(exc.value)


def test_other_409_refusals_stay_invalid_state() -> None:
    body = conflict({"reason": "bank_account_exists", "message": "exists",
                     "links": {"customer_bank_account": "BA123"}})
    with pytest.raises(InvalidStateError) as exc:
        CLIENT._check(answer(409, body), "POST", "/customer_bank_accounts")
    assert exc.value.reason == "bank_account_exists" and exc.value.status == 409
    assert not isinstance(exc.value, TransientError)


def test_an_unparseable_retry_after_is_ignored_not_raised() -> None:
    assert _retry_after(answer(503, {}, **{"Retry-After": "soon"})) is None
    with pytest.raises(TransientError) as exc:
        CLIENT._check(answer(503, {}, **{"Retry-After": "soon"}), "GET", "/payments")
    assert exc.value.retry_after is None


class _Gateway(BaseHTTPRequestHandler):
    """POST answers with the queued (status, body) pairs; GET /payments/<id> finds it."""

    answers: ClassVar[list[tuple[int, object]]] = []

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(*self.answers.pop(0))

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, {"payments": {"id": self.path.rsplit("/", 1)[-1]}})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_create_retries_a_conflict_in_progress_and_then_finds_the_payment(gateway: str) -> None:
    in_progress = conflict({"reason": "idempotent_creation_conflict",
                            "message": "A request with this key is in progress"})
    done = conflict({"reason": "idempotent_creation_conflict",
                     "links": {"conflicting_resource_id": "PM0042"}})
    _Gateway.answers[:] = [(409, in_progress), (409, done)]
    client = GatewayClient(gateway, "token", timeout=5)
    client.session.trust_env = False
    with pytest.raises(TransientError) as exc:
        client.create("payments", {"amount": 100}, "pb-key-1")
    assert exc.value.status == 409
    created = client.create("payments", {"amount": 100}, "pb-key-1")  # the retry
    assert created.already_existed and created.resource == {"id": "PM0042"}


# The 403 bodies GoCardless documents for a gated endpoint and a disabled feature (the
# reasons "forbidden" and "feature_disabled" of the API reference's "Errors").
def _refused(reason: str) -> dict:
    return {"error": {"type": "invalid_api_usage", "code": 403, "message": "Forbidden",
                      "errors": [{"reason": reason, "message": "not on this account"}],
                      "documentation_url": f"https://developer.gocardless.com/api-reference#{reason}"}}


@pytest.mark.parametrize(("reason", "method", "path", "names"), [
    ("forbidden", "POST", "/mandates", "payment pages"),
    ("forbidden", "POST", "/customer_bank_accounts", "Billing Requests"),
    ("forbidden", "POST", "/mandates/MD1/actions/reinstate", "reinstating mandates"),
    ("feature_disabled", "POST", "/payments", "custom payment references"),
    ("feature_disabled", "POST", "/refunds", "enable refunds"),
])
def test_a_gated_feature_is_permanent_and_named(reason: str, method: str, path: str,
                                                names: str) -> None:
    with pytest.raises(PermanentError) as exc:
        CLIENT._check(answer(403, _refused(reason)), method, path)
    assert names in str(exc.value) and not isinstance(exc.value, TransientError)


def test_a_403_gocardless_gives_no_gated_reason_for_stays_a_plain_refusal() -> None:
    with pytest.raises(PermanentError) as exc:
        CLIENT._check(answer(403, _refused("insufficient_permissions")), "POST", "/payments")
    assert "GoCardless:" not in str(exc.value)

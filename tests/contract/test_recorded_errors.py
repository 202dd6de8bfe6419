"""GoCardless's recorded error bodies replayed through Paybridge's GatewayClient and through
the official ``gocardless_pro`` client, from one local HTTP server: Paybridge must sort each
body into the class the official client's exception implies.

The official client raises one exception class per error ``type`` (and per status for 401,
403 and 429); what each means for a caller is GoCardless's API reference, "Errors"
(https://developer.gocardless.com/api-reference/#api-usage-errors): ``gocardless`` "the
request should be retried"; ``invalid_state`` "should not be allowed to retry the action";
``validation_failed`` "prompted to correct input"; ``invalid_api_usage`` an error in the
request (the rate limit included: "you may have reached your rate limit", retried after
``RateLimit-Reset``); ``idempotent_creation_conflict`` names the resource the first request
made (``links.conflicting_resource_id``), which the official client fetches and returns.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gocardless_pro
import pytest
from gocardless_pro import errors as gc
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.clients.errors import InvalidStateError, PartnerError, PermanentError, TransientError
from app.clients.gateway import GatewayClient
from tests.contract.recorded import recorded

ERRORS = recorded("errors")

# The official client's exception -> the Paybridge class that means the same to a caller.
JUDGED = {
    gc.ValidationFailedError: PermanentError,
    gc.InvalidApiUsageError: PermanentError,
    gc.AuthenticationError: PermanentError,
    gc.PermissionsError: PermanentError,
    gc.InvalidStateError: InvalidStateError,
    gc.GoCardlessInternalError: TransientError,
    gc.RateLimitError: TransientError,
}


class Replay:
    """Answers every request with the recorded error, except a GET of the resource an
    idempotent conflict names, which answers that resource (as GoCardless would)."""

    def __init__(self) -> None:
        self.example: dict[str, Any] = {}
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        existing = _conflicting_id(self.example["body"])
        if request.method == "GET" and existing and request.path.endswith("/" + existing):
            resource = request.path.strip("/").split("/")[0]
            body, status = {resource: {"id": existing, "status": "pending_submission"}}, 200
        else:
            body, status = self.example["body"], self.example["status"]
        return Response(json.dumps(body), status=status,
                        content_type="application/json")(environ, start_response)


def _conflicting_id(body: dict[str, Any]) -> str | None:
    for item in body["error"].get("errors") or []:
        found = (item.get("links") or {}).get("conflicting_resource_id")
        if found:
            return str(found)
    return None


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    server = Replay()
    yield server
    server.server.shutdown()
    server.server.server_close()


PAYMENT = {"amount": 100, "currency": "GBP", "links": {"mandate": "MD1"}}

# The calls Paybridge makes, each beside the official client's call of the same request.
CALLS: dict[str, tuple[Callable[[GatewayClient], Any], Callable[[Any], Any]]] = {
    "create": (lambda pb: pb.create("payments", PAYMENT, "key-1"),
               lambda off: off.payments.create(params=PAYMENT,
                                               headers={"Idempotency-Key": "key-1"})),
    "get": (lambda pb: pb.get("payments", "PM1"), lambda off: off.payments.get("PM1")),
    "update": (lambda pb: pb.update("payments", "PM1", {"metadata": {"crm_id": "a01"}}),
               lambda off: off.payments.update("PM1", params={"metadata": {"crm_id": "a01"}})),
    "action": (lambda pb: pb.action("mandates", "MD1", "reinstate"),
               lambda off: off.mandates.reinstate("MD1")),
}


def _official(replay: Replay, call: Callable[[Any], Any]) -> type[Exception] | None:
    client = gocardless_pro.Client(access_token="recorded", base_url=replay.base)
    try:
        call(client)
    except gc.ApiError as exc:
        return type(exc)
    return None


def _paybridge(replay: Replay, call: Callable[[GatewayClient], Any]) -> Any:
    try:
        return call(GatewayClient(replay.base, "recorded", timeout=5))
    except PartnerError as exc:
        return exc


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("name", sorted(set(ERRORS) - {"idempotent_creation_conflict"}))
def test_each_recorded_error_is_classified_as_the_official_client_classifies_it(
        replay: Replay, name: str, call: str) -> None:
    example = replay.example = ERRORS[name]
    ours, theirs = CALLS[call]
    official = _official(replay, theirs)
    assert official in JUDGED, f"{example['source']}: the official client raised {official}"
    got = _paybridge(replay, ours)
    assert type(got) is JUDGED[official], (name, call, official, got)
    assert got.status == example["status"]
    # The partner's own words reach the row (and an admin), never a bare status.
    assert example["body"]["error"]["message"] in got.message


def test_the_recorded_idempotent_conflict_returns_the_resource_the_first_request_made(
        replay: Replay) -> None:
    replay.example = ERRORS["idempotent_creation_conflict"]
    ours, theirs = CALLS["create"]
    client = gocardless_pro.Client(access_token="recorded", base_url=replay.base)
    official = theirs(client)
    created = _paybridge(replay, ours)
    assert not isinstance(created, PartnerError), created
    assert created.already_existed and created.resource["id"] == official.id == "PM00001078ZJJN"


def test_the_recorded_bank_account_exists_names_the_existing_account(replay: Replay) -> None:
    """GoCardless answers a duplicate bank account with ``validation_failed`` 409 naming the
    account in ``links.customer_bank_account``: permanent, and the link reaches the caller
    (bankaccounts reuses that account)."""
    replay.example = ERRORS["bank_account_exists"]
    got = _paybridge(replay, lambda pb: pb.create("customer_bank_accounts", {}, "key-2"))
    assert type(got) is PermanentError
    assert got.details["errors"][0]["links"] == {"customer_bank_account": "xyz"}


def test_every_recorded_error_names_where_it_came_from() -> None:
    assert ERRORS
    for name, example in ERRORS.items():
        assert example["source"].startswith("https://github.com/gocardless/"), name
        assert example["body"]["error"]["code"] == example["status"], name

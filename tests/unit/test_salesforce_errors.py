"""How the Salesforce token endpoint's answers are classified, against a real local HTTP server.

Only a genuine refusal of our credentials is permanent; an unavailable, throttled or
unreachable login service is transient (the queues retry it on the schedule), and no message
ever carries the client secret.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.clients.errors import PausedError, PermanentError, TransientError
from app.clients.salesforce import SalesforceClient

CLIENT_ID, SECRET = "paybridge-app", "s3cr3t-Client-Secret-0042"


@dataclass
class TokenAnswer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    forms: list[dict[str, list[str]]] = field(default_factory=list)

    def json(self, status: int, payload: object, **headers: str) -> None:
        self.status, self.body = status, json.dumps(payload).encode()
        self.headers = {"Content-Type": "application/json", **headers}


@pytest.fixture
def login() -> Iterator[tuple[str, TokenAnswer]]:
    """A login server whose token endpoint answers whatever the test sets."""
    answer = TokenAnswer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            answer.forms.append(urllib.parse.parse_qs(self.rfile.read(length).decode()))
            if answer.delay:
                time.sleep(answer.delay)
            status = 404 if self.path != "/services/oauth2/token" else answer.status
            self.send_response(status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def refused(url: str, *, timeout: float = 5.0) -> PermanentError | TransientError:
    client = SalesforceClient(url, CLIENT_ID, SECRET, timeout=timeout)
    with pytest.raises((PermanentError, TransientError)) as exc:
        client._login()
    return exc.value


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_login_service_failures_are_transient(login: tuple[str, TokenAnswer],
                                              status: int) -> None:
    url, answer = login
    answer.status, answer.body = status, b"<html>Service Unavailable</html>"
    error = refused(url)
    assert type(error) is TransientError
    assert error.status == status and error.retry_after is None
    assert f"HTTP {status}" in str(error) and SECRET not in str(error)
    assert answer.forms[0]["client_secret"] == [SECRET]  # it was sent, and not echoed back


def test_a_throttled_login_is_transient_and_honours_retry_after(
        login: tuple[str, TokenAnswer]) -> None:
    url, answer = login
    answer.json(429, {"error": "rate_limit_exceeded"}, **{"Retry-After": "42"})
    error = refused(url)
    assert type(error) is TransientError  # not a PausedError: the API allocation is untouched
    assert error.status == 429 and error.retry_after == 42.0
    assert SECRET not in str(error)


def test_retry_after_may_be_an_http_date_and_may_be_absent(
        login: tuple[str, TokenAnswer]) -> None:
    url, answer = login
    answer.status, answer.headers = 503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}
    error = refused(url)
    assert isinstance(error, TransientError) and error.retry_after > 1000
    answer.status, answer.headers = 429, {}
    error = refused(url)
    assert isinstance(error, TransientError) and error.retry_after is None
    answer.headers = {"Retry-After": "soon"}  # unparseable: retried on the schedule alone
    error = refused(url)
    assert isinstance(error, TransientError) and error.retry_after is None


@pytest.mark.parametrize(("status", "code", "description"), [
    (400, "invalid_client_id", "client identifier invalid"),
    (400, "invalid_client", "invalid client credentials"),
    (401, "invalid_client", "invalid client credentials"),
    (400, "invalid_grant", "no client credentials user enabled"),
    (400, "invalid_grant", "authentication failure"),
    (400, "unsupported_grant_type", "grant type not supported"),
    (400, "inactive_user", "user is inactive"),
    (400, "inactive_org", "organization is locked"),
])
def test_a_genuine_auth_refusal_is_permanent_and_names_the_cause(
        login: tuple[str, TokenAnswer], status: int, code: str, description: str) -> None:
    url, answer = login
    answer.json(status, {"error": code, "error_description": description})
    error = refused(url)
    assert isinstance(error, PermanentError) and not isinstance(error, TransientError)
    assert error.status == status
    message = str(error)
    assert code in message and description in message
    assert "SALESFORCE_CLIENT_SECRET" in message  # says what to check...
    assert SECRET not in message and SECRET not in repr(error.details)  # ...never its value


def test_a_secret_echoed_by_the_server_is_not_repeated(login: tuple[str, TokenAnswer]) -> None:
    url, answer = login
    answer.json(400, {"error": "invalid_client",
                      "error_description": f"bad secret {SECRET} for {CLIENT_ID}"})
    error = refused(url)
    assert isinstance(error, PermanentError)
    assert SECRET not in str(error) and SECRET not in repr(error.details)
    assert "invalid_client" in str(error)


@pytest.mark.parametrize(("status", "body"), [
    (400, {"error": "rate_limit_exceeded", "error_description": "ip/user login rate exceeded"}),
    (400, {"error": "temporarily_unavailable"}),
    (400, {"error": "server_error", "error_description": "internal error"}),
    (400, "<html>Bad Request</html>"),  # a proxy's answer, not Salesforce's refusal
    (403, "<html>Forbidden</html>"),
    (401, {"message": "no OAuth error code"}),
])
def test_anything_but_a_genuine_refusal_is_transient(
        login: tuple[str, TokenAnswer], status: int, body: object) -> None:
    url, answer = login
    if isinstance(body, str):
        answer.status, answer.body = status, body.encode()
    else:
        answer.json(status, body)
    error = refused(url)
    assert type(error) is TransientError
    assert error.status == status and SECRET not in str(error)
    if isinstance(body, dict) and "error" in body:  # Salesforce's own words are shown
        described = f": {body['error_description']}" if "error_description" in body else ""
        assert f"{body['error']}{described}" in str(error)


def test_a_wrong_login_url_is_not_taken_for_refused_credentials(
        login: tuple[str, TokenAnswer]) -> None:
    url, _ = login
    error = refused(url + "/not-salesforce")
    assert type(error) is TransientError and error.status == 404


def test_unreachable_and_hung_login_services_are_transient(
        login: tuple[str, TokenAnswer]) -> None:
    error = refused("http://127.0.0.1:9", timeout=1)
    assert type(error) is TransientError and "unreachable" in str(error)
    url, answer = login
    answer.delay = 1.0
    error = refused(url, timeout=0.2)
    assert type(error) is TransientError and "Timeout" in str(error)


def test_a_200_that_is_not_a_token_is_transient(login: tuple[str, TokenAnswer]) -> None:
    url, answer = login
    answer.status, answer.body = 200, b"<html>captive portal</html>"
    assert type(refused(url)) is TransientError
    answer.json(200, {"token_type": "Bearer"})
    assert type(refused(url)) is TransientError


def test_a_token_logs_in(login: tuple[str, TokenAnswer]) -> None:
    url, answer = login
    answer.json(200, {"access_token": "00Dxx!token", "instance_url": "https://org.example",
                      "token_type": "Bearer"})
    sf = SalesforceClient(url, CLIENT_ID, SECRET)._login()
    assert sf.session_id == "00Dxx!token" and sf.sf_instance == "org.example"
    assert answer.forms[0]["grant_type"] == ["client_credentials"]


def test_a_write_back_sees_the_login_outage_as_transient(
        login: tuple[str, TokenAnswer]) -> None:
    url, answer = login
    answer.json(503, {"error": "unavailable"}, **{"Retry-After": "30"})
    client = SalesforceClient(url, CLIENT_ID, SECRET)
    with pytest.raises(TransientError) as exc:
        client.get("Contact", "003000000000001")
    assert not isinstance(exc.value, PausedError) and exc.value.retry_after == 30.0

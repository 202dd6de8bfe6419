"""Every registered route outside the console refuses anonymous and wrong-role callers.

(The console's own pages are walked in tests/integration/console/test_access.py.)
"""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from app.auth import create_key
from app.runtime import Runtime
from app.web import create_app

PUBLIC = {"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"}
# What a CRM trigger key may do: send changes and bank details, read what it sent.
TRIGGER_MAY = {("POST", "/api/v1/queue"), ("POST", "/api/v1/bank-accounts"),
               ("GET", "/api/v1/records/<obj>/<record_id>/history"),
               ("GET", "/api/v1/bank-accounts/modulus")}


def api_routes(client: FlaskClient) -> list[tuple[str, str, str]]:
    out = []
    for rule in client.application.url_map.iter_rules():
        path = re.sub(r"<\w+:(\w+)>", r"<\1>", rule.rule)  # <string:obj> -> <obj>
        if not (path.startswith("/api/v1") or path.startswith("/webhooks")):
            continue
        if path in PUBLIC or path.startswith("/api/v1/docs"):
            continue
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "gocardless" if m.group(1) == "endpoint"
                     else ("Payment" if m.group(1) == "obj" else "1"), path)
        out += [(method, path, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


def key(rt: Runtime, role: str) -> dict[str, str]:
    with rt.db.transaction() as session:
        return {"Authorization": f"Bearer {create_key(session, f'walk-{role}', role)[1]}"}


def test_every_route_refuses_anonymous_and_wrong_role_callers(rt: Runtime) -> None:
    client = create_app(runtime=rt).test_client()
    routes = api_routes(client)
    assert len(routes) >= 15
    trigger, operations = key(rt, "trigger"), key(rt, "operations")
    problems = []
    for method, path, url in routes:
        if path.startswith("/webhooks"):
            status = client.open(url, method=method, json={"events": []}).status_code
            if status != 498:
                problems.append(f"unsigned {method} {path}: {status}")
            continue
        anonymous = client.open(url, method=method, json={}).status_code
        if anonymous != 401:
            problems.append(f"anonymous {method} {path}: {anonymous}")
        as_trigger = client.open(url, method=method, json={}, headers=trigger).status_code
        if (method, path) not in TRIGGER_MAY and as_trigger != 403:
            problems.append(f"trigger {method} {path}: {as_trigger}")
        as_operations = client.open(url, method=method, json={}, headers=operations).status_code
        if method != "GET" and as_operations != 403:
            problems.append(f"operations {method} {path}: {as_operations}")
    assert problems == []

"""Helpers shared by the HTTP modules: the org of the current app, bodies, answers."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, current_app, g, request

from sim.salesforce import errors
from sim.salesforce.auth import User
from sim.salesforce.org import Org

EXTENSION_KEY = "salesforce_sim"
VERSION_RE = re.compile(r"v\d{2}\.\d")


def current_org() -> Org:
    return current_app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


def current_user() -> User:
    """The user of the bearer token (set by the auth hook for every data API call)."""
    return g.sf_user  # type: ignore[no-any-return]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def no_content() -> Response:
    return Response(status=204)


def json_body(required: bool = True) -> Any:
    """The request's JSON body; JSON_PARSER_ERROR when it is missing or not JSON."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise errors.json_parser_error("The request body is empty.")
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.json_parser_error(f"Unexpected character: {exc}") from exc


def json_object(required: bool = True) -> dict[str, Any]:
    body = json_body(required)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise errors.json_parser_error(
            "Can not deserialize SObject out of START_ARRAY token"
            if isinstance(body, list)
            else "Expected a JSON object"
        )
    return body


def id_list(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]

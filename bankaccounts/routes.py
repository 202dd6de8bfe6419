"""The bank-account API: details go straight to the gateway and are never kept."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from flask.blueprints import BlueprintSetupState
from flask_smorest import Blueprint

from app import idempotency
from app.auth import require_key
from app.throttle import rate_limited
from bankaccounts import service, tables
from bankaccounts.schemas import BankAccountRequestSchema, BankAccountSchema, ModulusInfoSchema

blp = Blueprint("bank_accounts", __name__, url_prefix="/api/v1", description="Bank accounts")


@blp.record_once
def _load_tables(state: BlueprintSetupState) -> None:
    # A malformed MODULUS_*_PATH file stops the web app at start, not at the first request.
    tables.tables_for(state.app.extensions["paybridge"].settings)


def _rt() -> Any:
    return current_app.extensions["paybridge"]


@blp.route("/bank-accounts", methods=["POST"])
@require_key("trigger", "admin")
@rate_limited("bank-accounts", lambda s: s.bank_account_rate_limit)
@blp.arguments(BankAccountRequestSchema)
@blp.response(201, BankAccountSchema)
@blp.doc(parameters=[{"in": "header", "name": idempotency.HEADER, "required": False,
                      "schema": {"type": "string", "maxLength": 255}, "description":
                      "Send the same key when you retry (after a timeout, a 503 or 504): "
                      "you get the first request's answer (with Idempotent-Replayed: true), "
                      "never a second CRM record or gateway account. Kept for "
                      "IDEMPOTENCY_KEY_TTL."}])
@blp.alt_response(404, description="customer_not_found, record_not_found")
@blp.alt_response(409, description="customer_not_ready, record_mismatch, bank_account_exists, "
                  "idempotency_key_in_flight (the first request with this key is still "
                  "running: send again after Retry-After)")
@blp.alt_response(422, description="invalid_bank_details (nothing sent), gateway_rejected, "
                  "crm_rejected, idempotency_key_reused (a different request under this key)")
@blp.alt_response(502, description="gateway_error: the gateway refused Paybridge's credentials")
@blp.alt_response(429, description="rate_limited: this key's BANK_ACCOUNT_RATE_LIMIT is spent; "
                  "send again after Retry-After seconds")
@blp.alt_response(503, description="gateway_unavailable, crm_unavailable, storage_unavailable: "
                  "nothing kept, send again")
@blp.alt_response(504, description="deadline_exceeded: BANK_ACCOUNT_DEADLINE ran out waiting "
                  "for a partner; send again (with the same Idempotency-Key)")
def post_bank_account(body: dict[str, Any]) -> Any:
    """Register a bank account: checked, sent to the gateway, never stored."""
    header = request.headers.get(idempotency.HEADER)
    retry_key = (service.RetryKey(idempotency.checked_key(header), g.api_key_id)
                 if header is not None else None)
    answer, replayed = service.register(_rt(), body, retry_key)
    return answer, 201, {"Idempotent-Replayed": "true"} if replayed else {}


@blp.route("/bank-accounts/modulus", methods=["GET"])
@require_key("trigger", "admin")
@blp.response(200, ModulusInfoSchema)
def modulus_info() -> dict[str, Any]:
    """The UK modulus checking tables in use: version, files, rows."""
    return tables.info(_rt().settings)

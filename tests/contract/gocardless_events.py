"""What GoCardless publishes about its events, written down as data for contract tests.

Nothing here comes from Paybridge or from the emulator: the tables are transcribed from
GoCardless' own documentation, so a test comparing either of them with these tables checks
both against the partner, not against each other.

Sources
- Event actions, causes and origins: GoCardless API reference, "Event types" / "Event
  actions", https://developer.gocardless.com/api-reference/#event-types (each action's table
  of ``details[origin]`` / ``details[cause]``). Cross-checked against a machine-readable
  transcription of the same pages (github.com/karoo-ca/gocardless-events, schema.json).
- ``details[origin]`` values and the resources' ``status`` enums: the official client
  generated from GoCardless' API schema, gocardless-nodejs ``src/types/Types.ts``
  (``EventDetailsOrigin``, ``PaymentStatus``, ``MandateStatus``, ``RefundStatus``,
  ``SubscriptionStatus``, ``PayoutStatus``); the same texts are the docstrings of the
  ``gocardless_pro`` Python client. Origins documented as: bank (a report from the banks),
  gocardless (performed by GoCardless automatically), api (an API endpoint), customer (a
  customer), payer (a payer).
- ``links[new_mandate]`` on ``replaced``: the mandate ``replaced`` action text ("The event
  will include links[new_mandate] with the ID of the new mandate") and ``EventLinks`` /
  ``MandateLinks.new_mandate`` in the client types; a replaced mandate's own status becomes
  ``cancelled`` (GoCardless maintainer, github.com/gocardless/gocardless-nodejs/issues/228).
- Payment retries: ``gocardless_pro`` ``PaymentsService.retry``: "You will receive a
  resubmission_requested webhook, but after that retrying the payment follows the same
  process as its initial creation, so you will receive a submitted webhook, followed by a
  confirmed or failed event" -- so after ``resubmission_requested`` the payment is
  ``pending_submission`` again.

Not confirmed from a primary source (kept out of ``ACTIONS``; see ``REPORTED_ELSEWHERE``):
- payments ``surcharge_fee_credited`` (listed in Zuora's GoCardless reconciliation table)
  and ``sds_settlement_delayed`` (listed in a third-party AsyncAPI description);
- subscriptions ``scheduled_resume_cancelled`` (no source lists it; Paybridge has long
  treated it as informational, by symmetry with ``scheduled_pause_cancelled``);
- mandates ``suspended_by_payer`` as an action: the status exists, no event is documented
  for entering it;
- customers: the event-types pages document no customer action (no ``created``, no
  ``removed``); a third-party AsyncAPI description lists compliance actions (``approved``,
  ``under_review``, ``request_for_information_required``) that could not be confirmed.
- which events, if any, the replacement mandate itself gets (a ``created`` with origin
  gocardless and cause mandate_created, "Mandate created by a bulk change", is documented
  for mandates in general, but not tied to replacements).
"""

from __future__ import annotations

from types import MappingProxyType

SOURCE_URL = "https://developer.gocardless.com/api-reference/#event-types"

BANK, API, GOCARDLESS, CUSTOMER, PAYER = "bank", "api", "gocardless", "customer", "payer"
ORIGINS = frozenset({BANK, API, GOCARDLESS, CUSTOMER, PAYER})

Pairs = frozenset[tuple[str, str]]


def _pairs(**by_origin: str) -> Pairs:
    """``bank="cause other"`` keyword pairs -> {(origin, cause)} (keeps the tables terse)."""
    return frozenset((origin, cause) for origin, causes in by_origin.items()
                     for cause in causes.split())


# Causes a bank reports for payments and mandates being cancelled or failing (shared text).
_BANK_CANCELS = ("account_blocked_for_any_financial_transaction authorisation_disputed "
                 "bank_account_closed bank_account_transferred direct_debit_not_enabled "
                 "invalid_bank_details mandate_cancelled other payment_stopped refer_to_payer "
                 "return_on_odfi_request")

# resource type -> event action -> the documented (details.origin, details.cause) pairs.
ACTIONS: MappingProxyType[str, MappingProxyType[str, Pairs]] = MappingProxyType({
    resource: MappingProxyType(actions) for resource, actions in {
        "payments": {
            "created": _pairs(api="payment_created instalment_schedule_created",
                              gocardless="payment_created"),
            "customer_approval_granted": _pairs(customer="customer_approval_granted"),
            "customer_approval_denied": _pairs(customer="customer_approval_denied"),
            "submitted": _pairs(gocardless="payment_submitted"),
            "confirmed": _pairs(gocardless="payment_confirmed"),
            "paid_out": _pairs(gocardless="payment_paid_out"),
            "failed": _pairs(
                bank="account_blocked_for_any_financial_transaction authorisation_disputed "
                     "bank_account_closed bank_account_transferred bank_declined_payment "
                     "daily_payment_limit_reached direct_debit_not_enabled insufficient_funds "
                     "insufficient_payment_permissions invalid_bank_details mandate_cancelled "
                     "other payment_stopped payment_violated_mandate_parameters refer_to_payer "
                     "return_on_odfi_request test_failure",
                gocardless="other"),
            "late_failure_settled": _pairs(gocardless="late_failure_settled"),
            "charged_back": _pairs(bank="authorisation_disputed mandate_cancelled other "
                                        "refund_requested return_on_odfi_request"),
            "chargeback_cancelled": _pairs(bank="payment_confirmed",
                                           gocardless="payment_confirmed"),
            "chargeback_settled": _pairs(gocardless="chargeback_settled"),
            "cancelled": _pairs(
                api="bank_account_closed instalment_schedule_cancelled mandate_cancelled "
                    "payment_cancelled",
                bank=_BANK_CANCELS + " mandate_suspended_by_payer",
                gocardless="initial_one_off_payment_failed instalment_schedule_cancelled "
                           "mandate_cancelled mandate_expired"),
            "resubmission_requested": _pairs(api="payment_retried",
                                             gocardless="payment_autoretried"),
            "surcharge_fee_debited": _pairs(gocardless="surcharge_fee_debited"),
        },
        "mandates": {
            "created": _pairs(api="mandate_created", gocardless="mandate_created"),
            "customer_approval_granted": _pairs(customer="customer_approval_granted"),
            "customer_approval_skipped": _pairs(customer="customer_approval_skipped"),
            "submitted": _pairs(gocardless="mandate_submitted", bank="bank_account_transferred"),
            "active": _pairs(gocardless="mandate_activated", bank="mandate_activated"),
            "reinstated": _pairs(gocardless="mandate_reinstated", bank="mandate_reinstated"),
            "transferred": _pairs(bank="bank_account_transferred", api="mandate_transferred"),
            "cancelled": _pairs(api="bank_account_closed mandate_cancelled", bank=_BANK_CANCELS,
                                gocardless="initial_one_off_payment_failed mandate_cancelled"),
            "failed": _pairs(bank="authorisation_disputed bank_account_closed "
                                  "bank_account_transferred direct_debit_not_enabled "
                                  "invalid_bank_details mandate_cancelled other payment_stopped "
                                  "refer_to_payer return_on_odfi_request"),
            "expired": _pairs(bank="mandate_cancelled",
                              gocardless="mandate_cancelled mandate_expired"),
            "resubmission_requested": _pairs(api="resubmission_requested",
                                             bank="bank_account_transferred"),
            "replaced": _pairs(gocardless="scheme_identifier_changed"),
            "consumed": _pairs(gocardless="mandate_consumed"),
            "blocked": _pairs(gocardless="mandate_blocked mandate_blocked_by_gocardless"),
        },
        "refunds": {
            "created": _pairs(api="payment_refunded refund_created"),
            "paid": _pairs(gocardless="refund_paid"),
            "refund_settled": _pairs(gocardless="refund_settled"),
            "failed": _pairs(gocardless="refund_failed"),
            "funds_returned": _pairs(gocardless="refund_funds_returned"),
        },
        "subscriptions": {
            "created": _pairs(api="subscription_created"),
            "customer_approval_granted": _pairs(customer="customer_approval_granted"),
            "customer_approval_denied": _pairs(customer="customer_approval_denied"),
            "payment_created": _pairs(gocardless="payment_created"),
            "amended": _pairs(api="subscription_amended"),
            "paused": _pairs(api="subscription_paused", gocardless="subscription_paused"),
            "resumed": _pairs(api="subscription_resumed", gocardless="subscription_resumed"),
            "scheduled_pause": _pairs(api="scheduled_pause"),
            "scheduled_pause_cancelled": _pairs(api="scheduled_pause_cancelled"),
            "scheduled_resume": _pairs(api="scheduled_resume"),
            "finished": _pairs(gocardless="subscription_finished"),
            "cancelled": _pairs(
                api="bank_account_closed mandate_cancelled plan_cancelled subscription_cancelled",
                bank=_BANK_CANCELS + " mandate_suspended_by_payer",
                gocardless="initial_one_off_payment_failed mandate_cancelled mandate_expired"),
        },
        # No "created": GoCardless announces a payout only once it is paid.
        "payouts": {
            "paid": _pairs(gocardless="payout_paid"),
            "fx_rate_confirmed": _pairs(gocardless="payout_fx_rate_confirmed"),
            "tax_exchange_rates_confirmed": _pairs(
                gocardless="payout_tax_exchange_rates_confirmed"),
        },
        # The event-types pages document no customer action (see the module docstring).
        "customers": {},
    }.items()
})

# The ``status`` enum of each resource type (the official client's types).
STATUSES: MappingProxyType[str, frozenset[str]] = MappingProxyType({
    "payments": frozenset({
        "pending_customer_approval", "pending_submission", "submitted", "confirmed",
        "paid_out", "cancelled", "customer_approval_denied", "failed", "charged_back"}),
    "mandates": frozenset({
        "pending_customer_approval", "pending_submission", "submitted", "active", "failed",
        "cancelled", "expired", "consumed", "blocked", "suspended_by_payer"}),
    "refunds": frozenset({
        "created", "pending_submission", "submitted", "paid", "cancelled", "bounced",
        "funds_returned"}),
    "subscriptions": frozenset({
        "pending_customer_approval", "customer_approval_denied", "active", "finished",
        "cancelled", "paused"}),
    "payouts": frozenset({"pending", "paid", "bounced"}),
})

# Actions other sources mention but the event-types pages do not (see the module docstring).
REPORTED_ELSEWHERE: MappingProxyType[str, frozenset[str]] = MappingProxyType({
    "payments": frozenset({"surcharge_fee_credited", "sds_settlement_delayed"}),
    "subscriptions": frozenset({"scheduled_resume_cancelled"}),
    "mandates": frozenset({"suspended_by_payer"}),
})

# Documented status effects the contract tests hold both sides to.
STATUS_AFTER = MappingProxyType({
    ("payments", "resubmission_requested"): "pending_submission",  # PaymentsService.retry
    ("mandates", "replaced"): "cancelled",  # gocardless-nodejs issue 228
    # Inferred, not stated: "failed: the refund did not reach your customer" and the status
    # "bounced: the refund has failed to be paid".
    ("refunds", "failed"): "bounced",
})

"""The emulator's own lifecycle tables (GoCardless statuses and event actions).

For each resource type:
- ``INITIAL`` is the status a new resource starts in (``pending_customer_approval`` instead
  when customer approval is switched on for that type);
- ``TRANSITIONS[type][action]`` says from which statuses an action is legal, the status it
  leads to (``None`` = unchanged: the event is informative only) and the default event
  details (origin, cause, description);
- ``HAPPY_PATH[type][status]`` is the next action along the happy path, used by
  ``/sim/advance`` and auto-advance. A status missing there is final for advancing.

Event ``details.origin`` is "api" (caused by an API call), "gateway" (the gateway's own
processing), "bank" (the banking scheme) or "customer" (the payer).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Transition:
    """A legal move: ``sources`` -> ``target`` with the event details it emits."""

    sources: frozenset[str]
    target: str | None
    origin: str
    cause: str
    description: str
    extra: dict[str, object] = field(default_factory=dict)


def _t(sources: str, target: str | None, origin: str, cause: str, description: str,
       **extra: object) -> Transition:
    return Transition(frozenset(sources.split()), target, origin, cause, description, extra)


INITIAL: dict[str, str] = {
    "mandates": "pending_submission",
    "payments": "pending_submission",
    "subscriptions": "active",
    "refunds": "created",
    "payouts": "pending",
}

APPROVABLE = ("mandates", "payments", "subscriptions")

CREATED: dict[str, tuple[str, str, str]] = {
    "customers": ("api", "customer_created", "Customer created via the API."),
    "mandates": ("api", "mandate_created", "Mandate created via the API."),
    "payments": ("api", "payment_created", "Payment created via the API."),
    "subscriptions": ("api", "subscription_created", "Subscription created via the API."),
    "refunds": ("api", "refund_created", "The refund has been created."),
    "payouts": ("gateway", "payout_created", "Payout created for paid-out payments."),
}

BANK = "bank"
GATEWAY = "gateway"
API = "api"
CUSTOMER = "customer"

TRANSITIONS: dict[str, dict[str, Transition]] = {
    "payments": {
        "customer_approval_granted": _t("pending_customer_approval", "pending_submission",
                                        CUSTOMER, "customer_approval_granted",
                                        "The customer granted approval for this payment."),
        "customer_approval_denied": _t("pending_customer_approval", "customer_approval_denied",
                                       CUSTOMER, "customer_approval_denied",
                                       "The customer denied approval for this payment."),
        "submitted": _t("pending_submission", "submitted", GATEWAY, "payment_submitted",
                        "Payment submitted to the banks. It can no longer be cancelled."),
        "confirmed": _t("submitted", "confirmed", GATEWAY, "payment_confirmed",
                        "The banks returned no error in time, so the payment is confirmed."),
        "paid_out": _t("confirmed", "paid_out", GATEWAY, "payment_paid_out",
                       "The payment has been paid out by the gateway."),
        "failed": _t("submitted confirmed paid_out", "failed", BANK, "insufficient_funds",
                     "The customer's account had insufficient funds to make this payment.",
                     reason_code="ARUDD-0", will_attempt_retry=False),
        "late_failure_settled": _t("failed", None, GATEWAY, "late_failure_settled",
                                   "This late failure has been deducted from a payout."),
        "charged_back": _t("paid_out", "charged_back", BANK, "authorisation_disputed",
                           "The customer disputed the payment with their bank.",
                           reason_code="DDICA-1"),
        "chargeback_cancelled": _t("charged_back", "paid_out", BANK, "chargeback_cancelled",
                                   "The customer's bank cancelled the chargeback."),
        "chargeback_settled": _t("charged_back", None, GATEWAY, "chargeback_settled",
                                 "This chargeback has been deducted from a payout."),
        "cancelled": _t("pending_customer_approval pending_submission", "cancelled", API,
                        "payment_cancelled", "The payment was cancelled."),
        "resubmission_requested": _t("failed", "pending_submission", API, "payment_retried",
                                     "An attempt to collect this payment has been requested."),
    },
    "mandates": {
        "customer_approval_granted": _t("pending_customer_approval", "pending_submission",
                                        CUSTOMER, "customer_approval_granted",
                                        "The customer granted approval for this mandate."),
        "submitted": _t("pending_submission", "submitted", GATEWAY, "mandate_submitted",
                        "The mandate has been submitted to the banks."),
        "active": _t("submitted", "active", GATEWAY, "mandate_activated",
                     "The banks raised no objection in time, so the mandate is now active."),
        "reinstated": _t("submitted cancelled expired", "active", GATEWAY, "mandate_reinstated",
                         "The mandate has been reinstated and is active again."),
        "failed": _t("pending_submission submitted", "failed", BANK, "invalid_bank_details",
                     "The bank account details could not be used to set up a mandate.",
                     reason_code="AUDDIS-5"),
        "cancelled": _t("pending_customer_approval pending_submission submitted active "
                        "suspended_by_payer", "cancelled", BANK, "bank_account_closed",
                        "The mandate was cancelled at the customer's bank.",
                        reason_code="ADDACS-B"),
        "expired": _t("active", "expired", GATEWAY, "mandate_expired",
                      "The mandate expired after a long period without payments."),
        "consumed": _t("active", "consumed", GATEWAY, "mandate_consumed",
                       "The mandate has been used for its only permitted payment."),
        "blocked": _t("pending_customer_approval pending_submission submitted active",
                      "blocked", GATEWAY, "mandate_blocked",
                      "The mandate was blocked because the payer matched a block."),
        "suspended_by_payer": _t("active", "suspended_by_payer", CUSTOMER,
                                 "mandate_suspended_by_payer",
                                 "The payer suspended the mandate at their bank."),
        "transferred": _t("active", None, BANK, "bank_account_transferred",
                          "The customer's bank account was transferred to a new bank."),
        "replaced": _t("active", None, GATEWAY, "scheme_identifier_changed",
                       "The mandate has been moved to a new scheme identifier."),
        "resubmission_requested": _t("cancelled expired", "pending_submission", API,
                                     "mandate_reinstated",
                                     "A request to reinstate this mandate has been made."),
    },
    "subscriptions": {
        "customer_approval_granted": _t("pending_customer_approval", "active", CUSTOMER,
                                        "customer_approval_granted",
                                        "The customer granted approval for this subscription."),
        "customer_approval_denied": _t("pending_customer_approval", "customer_approval_denied",
                                       CUSTOMER, "customer_approval_denied",
                                       "The customer denied approval for this subscription."),
        "payment_created": _t("active", None, GATEWAY, "payment_created",
                              "A payment has been created by this subscription."),
        "paused": _t("active", "paused", API, "subscription_paused",
                     "The subscription has been paused."),
        "resumed": _t("paused", "active", API, "subscription_resumed",
                      "The subscription has been resumed."),
        "finished": _t("active", "finished", GATEWAY, "subscription_finished",
                       "The subscription has created all of its payments."),
        "cancelled": _t("pending_customer_approval active paused", "cancelled", API,
                        "subscription_cancelled", "The subscription was cancelled."),
    },
    "refunds": {
        "pending_submission": _t("created", "pending_submission", GATEWAY, "refund_queued",
                                 "The refund is waiting to be submitted to the banks."),
        "submitted": _t("pending_submission", "submitted", GATEWAY, "refund_submitted",
                        "The refund has been submitted to the banks."),
        "paid": _t("submitted", "paid", GATEWAY, "refund_paid",
                   "The refund has been paid to the customer."),
        "refund_settled": _t("paid", None, GATEWAY, "refund_settled",
                             "The refund has been deducted from a payout."),
        "cancelled": _t("created pending_submission", "cancelled", GATEWAY, "refund_cancelled",
                        "The refund was cancelled before submission."),
        "bounced": _t("submitted paid", "bounced", BANK, "refund_bounced",
                      "The customer's bank returned the refund."),
        "funds_returned": _t("paid bounced", "funds_returned", BANK, "refund_funds_returned",
                             "The refunded funds have been returned to the merchant."),
    },
    "payouts": {
        "paid": _t("pending", "paid", GATEWAY, "payout_paid",
                   "The payout has been sent to the merchant's bank account."),
        "bounced": _t("paid", "bounced", BANK, "payout_bounced",
                      "The merchant's bank returned the payout."),
    },
}

HAPPY_PATH: dict[str, dict[str, str]] = {
    "payments": {
        "pending_customer_approval": "customer_approval_granted",
        "pending_submission": "submitted",
        "submitted": "confirmed",
        "confirmed": "paid_out",
    },
    "mandates": {
        "pending_customer_approval": "customer_approval_granted",
        "pending_submission": "submitted",
        "submitted": "active",
    },
    "subscriptions": {"pending_customer_approval": "customer_approval_granted"},
    "refunds": {"created": "pending_submission", "pending_submission": "submitted",
                "submitted": "paid"},
    "payouts": {"pending": "paid"},
}

LIFECYCLE_TYPES = tuple(TRANSITIONS)

MANDATE_CHARGEABLE = frozenset(
    {"pending_customer_approval", "pending_submission", "submitted", "active"}
)
MANDATE_CASCADE = frozenset({"cancelled", "failed", "expired", "blocked"})
PAYMENT_CANCELLABLE = TRANSITIONS["payments"]["cancelled"].sources
SUBSCRIPTION_CANCELLABLE = TRANSITIONS["subscriptions"]["cancelled"].sources

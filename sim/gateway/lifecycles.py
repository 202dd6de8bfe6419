"""The emulator's own lifecycle tables: GoCardless statuses, event actions, causes, origins.

Every rule follows GoCardless' published API reference, not Paybridge's code:
- actions and their (origin, cause) pairs: "Event types",
  https://developer.gocardless.com/api-reference/#event-types;
- statuses and ``details.origin`` values: the resources' ``status`` enums and
  ``EventDetailsOrigin`` in the official clients (gocardless-nodejs src/types/Types.ts;
  the same texts are the gocardless_pro docstrings).

For each resource type:
- ``INITIAL`` is the status a new resource starts in (``pending_customer_approval`` instead
  when customer approval is switched on for that type);
- ``CREATED`` is the ``created`` event's default details, for the types GoCardless announces
  with a ``created`` event (not customers, not payouts: the event types list neither);
- ``TRANSITIONS[type][step]`` says from which statuses a step is legal, the status it leads
  to (``None`` = unchanged) and the event it emits: the step's name is the event action, its
  ``origin``/``cause`` the default details and ``others`` the further documented pairs a
  caller may choose. A ``silent`` step moves the status without any event, where GoCardless
  moves it without announcing it (a refund's pending_submission / submitted, a payout
  bouncing);
- ``HAPPY_PATH[type][status]`` is the next step along the happy path, used by
  ``/sim/advance`` and auto-advance. A status missing there is final for advancing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# details.origin values GoCardless documents (EventDetailsOrigin): who caused the event.
BANK = "bank"
GOCARDLESS = "gocardless"
API = "api"
CUSTOMER = "customer"
PAYER = "payer"
ORIGINS = frozenset({BANK, GOCARDLESS, API, CUSTOMER, PAYER})


@dataclass(frozen=True)
class Transition:
    """A legal move: ``sources`` -> ``target`` with the event details it emits."""

    sources: frozenset[str]
    target: str | None
    origin: str
    cause: str
    description: str
    extra: dict[str, object] = field(default_factory=dict)
    others: frozenset[tuple[str, str]] = frozenset()
    silent: bool = False

    @property
    def details(self) -> frozenset[tuple[str, str]]:
        """Every (origin, cause) pair this step may be announced with."""
        return self.others | {(self.origin, self.cause)}


def _t(sources: str, target: str | None, origin: str, cause: str, description: str,
       others: str = "", **extra: object) -> Transition:
    """``others`` lists further documented pairs as "origin:cause origin:cause"."""
    pairs = frozenset((o, c) for o, c in (pair.split(":", 1) for pair in others.split()))
    return Transition(frozenset(sources.split()), target, origin, cause, description, extra,
                      pairs)


def _silent(sources: str, target: str) -> Transition:
    return Transition(frozenset(sources.split()), target, "", "", "", silent=True)


INITIAL: dict[str, str] = {
    "mandates": "pending_submission",
    "payments": "pending_submission",
    "subscriptions": "active",
    "refunds": "created",
    "payouts": "pending",
}

APPROVABLE = ("mandates", "payments", "subscriptions")

CREATED: dict[str, tuple[str, str, str]] = {
    "mandates": (API, "mandate_created", "Mandate created via the API."),
    "payments": (API, "payment_created", "Payment created via the API."),
    "subscriptions": (API, "subscription_created", "Subscription created via the API."),
    "refunds": (API, "refund_created",
                "The refund has been created and will be submitted in the next batch."),
}
# Further documented pairs of a created event (subscription payments come from GoCardless).
CREATED_OTHERS: dict[str, frozenset[tuple[str, str]]] = {
    "payments": frozenset({(GOCARDLESS, "payment_created")}),
    "mandates": frozenset({(GOCARDLESS, "mandate_created")}),
    "refunds": frozenset({(API, "payment_refunded")}),
}

# Mandate cascades: the cause a payment / subscription cancelled by its mandate reports.
# Documented: mandate_cancelled and mandate_expired (origin gocardless); a failed or blocked
# mandate has no cause of its own in the lists, so those report mandate_cancelled.
CASCADE_CAUSE = {"expired": "mandate_expired"}
CASCADE_DEFAULT_CAUSE = "mandate_cancelled"

TRANSITIONS: dict[str, dict[str, Transition]] = {
    "payments": {
        "customer_approval_granted": _t("pending_customer_approval", "pending_submission",
                                        CUSTOMER, "customer_approval_granted",
                                        "The customer granted approval for this payment."),
        "customer_approval_denied": _t("pending_customer_approval", "customer_approval_denied",
                                       CUSTOMER, "customer_approval_denied",
                                       "The customer denied approval for this payment."),
        "submitted": _t("pending_submission", "submitted", GOCARDLESS, "payment_submitted",
                        "Payment submitted to the banks. As a result it can no longer be "
                        "cancelled."),
        "confirmed": _t("submitted", "confirmed", GOCARDLESS, "payment_confirmed",
                        "Enough time has passed since the payment was submitted for the banks "
                        "to return an error, so this payment is now confirmed."),
        "paid_out": _t("confirmed", "paid_out", GOCARDLESS, "payment_paid_out",
                       "The payment has been paid out by GoCardless."),
        # Bacs ARUDD-0 is documented as refer_to_payer ("The customer's bank wasn't able to
        # pay the Direct Debit").
        "failed": _t("submitted confirmed paid_out", "failed", BANK, "refer_to_payer",
                     "The customer's bank wasn't able to pay the Direct Debit.",
                     "bank:insufficient_funds bank:bank_account_closed "
                     "bank:invalid_bank_details bank:mandate_cancelled "
                     "bank:authorisation_disputed bank:other gocardless:other",
                     reason_code="ARUDD-0", will_attempt_retry=False),
        "late_failure_settled": _t("failed", None, GOCARDLESS, "late_failure_settled",
                                   "This late failure has been deducted from a payout."),
        "charged_back": _t("paid_out", "charged_back", BANK, "authorisation_disputed",
                           "The customer has disputed that the amount taken differs from the "
                           "amount they were notified of.", "bank:other",
                           reason_code="DDICA-1"),
        # Documented with cause payment_confirmed: the chargeback was reversed.
        "chargeback_cancelled": _t("charged_back", "paid_out", BANK, "payment_confirmed",
                                   "The chargeback for this payment was reversed.",
                                   "gocardless:payment_confirmed"),
        "chargeback_settled": _t("charged_back", None, GOCARDLESS, "chargeback_settled",
                                 "This chargeback has been deducted from a payout."),
        "cancelled": _t("pending_customer_approval pending_submission", "cancelled", API,
                        "payment_cancelled", "The payment was cancelled at your request.",
                        "gocardless:mandate_cancelled gocardless:mandate_expired "
                        "api:mandate_cancelled api:bank_account_closed"),
        # PaymentsService.retry (gocardless_pro): after resubmission_requested "retrying the
        # payment follows the same process as its initial creation" -> pending_submission.
        "resubmission_requested": _t("failed", "pending_submission", API, "payment_retried",
                                     "An attempt to retry this payment was requested.",
                                     "gocardless:payment_autoretried"),
    },
    "mandates": {
        "customer_approval_granted": _t("pending_customer_approval", "pending_submission",
                                        CUSTOMER, "customer_approval_granted",
                                        "The customer granted approval for this mandate."),
        "submitted": _t("pending_submission", "submitted", GOCARDLESS, "mandate_submitted",
                        "The mandate has been submitted to the banks."),
        "active": _t("submitted", "active", GOCARDLESS, "mandate_activated",
                     "The time window after submission for the banks to refuse a mandate has "
                     "ended without any errors being received, so this mandate is now active."),
        "reinstated": _t("submitted cancelled expired", "active", GOCARDLESS,
                         "mandate_reinstated",
                         "The mandate has been reinstated and is active again."),
        "failed": _t("pending_submission submitted", "failed", BANK, "invalid_bank_details",
                     "The specified bank account does not exist or was closed.",
                     "bank:bank_account_closed bank:direct_debit_not_enabled",
                     reason_code="AUDDIS-5"),
        "cancelled": _t("pending_customer_approval pending_submission submitted active "
                        "suspended_by_payer", "cancelled", BANK, "bank_account_closed",
                        "The customer's account was closed at their bank.",
                        "api:mandate_cancelled api:bank_account_closed bank:mandate_cancelled "
                        "gocardless:mandate_cancelled", reason_code="ADDACS-B"),
        "expired": _t("active", "expired", GOCARDLESS, "mandate_expired",
                      "The mandate expired after a long period without payments."),
        "consumed": _t("active", "consumed", GOCARDLESS, "mandate_consumed",
                       "The mandate has been used for its only permitted payment."),
        "blocked": _t("pending_customer_approval pending_submission submitted active",
                      "blocked", GOCARDLESS, "mandate_blocked",
                      "The mandate was blocked because the payer matched a block."),
        # The status exists (MandateStatus) but no event is documented for entering it.
        "suspended_by_payer": _silent("active", "suspended_by_payer"),
        "transferred": _t("active", None, BANK, "bank_account_transferred",
                          "The customer's bank account was transferred to a different bank or "
                          "building society.", "api:mandate_transferred"),
        # "The mandate has been cancelled and replaced by a new mandate ... The event will
        # include links[new_mandate]" (event types); its status becomes cancelled
        # (github.com/gocardless/gocardless-nodejs/issues/228). The engine creates the new one.
        "replaced": _t("active", "cancelled", GOCARDLESS, "scheme_identifier_changed",
                       "The creditor has changed to a different scheme identifier so this "
                       "mandate has been cancelled and replaced by a new one."),
        "resubmission_requested": _t("cancelled expired", "pending_submission", API,
                                     "resubmission_requested",
                                     "An attempt to reinstate this mandate was requested."),
    },
    "subscriptions": {
        "customer_approval_granted": _t("pending_customer_approval", "active", CUSTOMER,
                                        "customer_approval_granted",
                                        "The customer granted approval for this subscription."),
        "customer_approval_denied": _t("pending_customer_approval", "customer_approval_denied",
                                       CUSTOMER, "customer_approval_denied",
                                       "The customer denied approval for this subscription."),
        "payment_created": _t("active", None, GOCARDLESS, "payment_created",
                              "Payment created by a subscription."),
        "paused": _t("active", "paused", API, "subscription_paused",
                     "The subscription has been paused."),
        "resumed": _t("paused", "active", API, "subscription_resumed",
                      "The subscription has been resumed."),
        "finished": _t("active", "finished", GOCARDLESS, "subscription_finished",
                       "The subscription has finished."),
        "cancelled": _t("pending_customer_approval active paused", "cancelled", API,
                        "subscription_cancelled", "The subscription was cancelled.",
                        "gocardless:mandate_cancelled gocardless:mandate_expired"),
    },
    # Refund events are only created, paid, refund_settled, failed and funds_returned; the
    # pending_submission / submitted / cancelled statuses are reached without an event.
    "refunds": {
        "pending_submission": _silent("created", "pending_submission"),
        "submitted": _silent("pending_submission", "submitted"),
        "cancelled": _silent("created pending_submission", "cancelled"),
        "paid": _t("submitted", "paid", GOCARDLESS, "refund_paid",
                   "The refund has been paid to your customer."),
        "refund_settled": _t("paid", None, GOCARDLESS, "refund_settled",
                             "The refund has been deducted from a payout."),
        "failed": _t("submitted paid", "bounced", GOCARDLESS, "refund_failed",
                     "The refund did not reach your customer. The funds will be returned to "
                     "you."),
        "funds_returned": _t("bounced", "funds_returned", GOCARDLESS, "refund_funds_returned",
                             "The refund has been credited in a payout."),
    },
    # Payout events are paid, fx_rate_confirmed and tax_exchange_rates_confirmed; a new payout
    # is not announced, and a bounce is announced on the creditor (bounced_payout), which the
    # emulator does not model.
    "payouts": {
        "paid": _t("pending", "paid", GOCARDLESS, "payout_paid",
                   "GoCardless has transferred the payout to the creditor's bank account."),
        "bounced": _silent("paid", "bounced"),
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


def statuses(resource_type: str) -> frozenset[str]:
    """Every status a resource of this type can have in the emulator."""
    found = {INITIAL[resource_type]}
    if resource_type in APPROVABLE:
        found.add("pending_customer_approval")
    for transition in TRANSITIONS[resource_type].values():
        found |= transition.sources
        if transition.target:
            found.add(transition.target)
    return frozenset(found)


def event_details(resource_type: str) -> dict[str, frozenset[tuple[str, str]]]:
    """Event action -> every (origin, cause) pair the emulator may announce it with."""
    found: dict[str, frozenset[tuple[str, str]]] = {}
    if resource_type in CREATED:
        origin, cause, _ = CREATED[resource_type]
        found["created"] = CREATED_OTHERS.get(resource_type, frozenset()) | {(origin, cause)}
    for action, transition in TRANSITIONS.get(resource_type, {}).items():
        if not transition.silent:
            found[action] = transition.details
    return found

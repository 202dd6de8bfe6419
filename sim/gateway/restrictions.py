"""Features GoCardless gates per merchant, refused the way GoCardless refuses them.

The whole API is open in GoCardless's sandbox; in live, some endpoints need approval:
- ``payment_pages``: "Unless your payment pages have been approved as scheme rules compliant
  by our sponsor bank you must use the Billing Requests API to create customers, bank
  accounts and mandates" (https://developer.gocardless.com/api-reference/#restrictions); the
  endpoints named as restricted are Create a customer bank account, Create a mandate and
  Reinstate a mandate (the gocardless-pro client libraries' release notes, e.g.
  https://github.com/gocardless/gocardless-pro-php/releases/tag/v8.1.4).
- ``custom_payment_references``: a payment ``reference`` of the merchant's own choosing
  depends on the GoCardless package (the payments endpoint's ``reference`` attribute).
- ``refunds``: refunds are disabled for new merchants until GoCardless enables them (the
  refunds endpoint: "disabled by default").

A refused request is answered 403 ``invalid_api_usage`` with the documented reason
``forbidden`` ("You were authenticated, but you do not have permission to access that
resource") for an unapproved endpoint, and ``feature_disabled`` ("You are trying to use a
feature which hasn't been enabled on your account") for a package feature; the official
clients read a 403 as ``PermissionsError``. Switched on per emulator with ``POST
/sim/settings {"restricted": [...]}``; none is on by default, as in the sandbox.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError

FEATURES = ("payment_pages", "custom_payment_references", "refunds")


# The documented texts of the two reasons (GoCardless API reference, "Errors"): generic, so
# the caller has to know which feature its request needed.
FORBIDDEN = "You were authenticated, but you do not have permission to access that resource."
DISABLED = ("You are trying to use a feature which hasn't been enabled on your account. "
            "Please contact support if you would like to enable it.")


def _refuse(reason: str) -> ApiError:
    message = FORBIDDEN if reason == "forbidden" else DISABLED
    return ApiError(403, "invalid_api_usage", message, [{"reason": reason, "message": message}],
                    reason)


def check_create(restricted: set[str], resource_type: str, data: dict[str, Any]) -> None:
    if "payment_pages" in restricted and resource_type in ("customer_bank_accounts",
                                                           "mandates"):
        raise _refuse("forbidden")
    if ("custom_payment_references" in restricted and resource_type == "payments"
            and data.get("reference")):
        raise _refuse("feature_disabled")
    if "refunds" in restricted and resource_type == "refunds":
        raise _refuse("feature_disabled")


def check_action(restricted: set[str], resource_type: str, action: str) -> None:
    if "payment_pages" in restricted and (resource_type, action) == ("mandates", "reinstate"):
        raise _refuse("forbidden")

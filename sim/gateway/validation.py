"""Request-body validation producing GoCardless ``validation_failed`` errors.

A ``Validator`` reads one envelope (e.g. the object under ``"payments"``), collects every
problem, and ``check()`` raises one 422 listing them all, as GoCardless does. Messages
describe the rule, never the submitted value.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .errors import FieldError, invalid_api_usage, validation_failed

METADATA_MAX_KEYS = 3
METADATA_KEY_MAX = 50
METADATA_VALUE_MAX = 500


def envelope(body: Any, name: str) -> dict[str, Any]:
    """Return ``body[name]`` as a dict, or raise 400 ``invalid_document_structure``."""
    if not isinstance(body, dict) or not isinstance(body.get(name), dict):
        raise invalid_api_usage(
            400,
            "invalid_document_structure",
            f"Invalid document structure: expected a JSON object under '{name}'",
        )
    return body[name]


def action_data(body: Any) -> dict[str, Any]:
    """The optional ``{"data": {...}}`` body of an action endpoint (``null`` allowed)."""
    if body is None:
        return {}
    if isinstance(body, dict):
        data = body.get("data")
        if data is None:
            return {}
        if isinstance(data, dict):
            return data
    raise invalid_api_usage(
        400, "invalid_document_structure", "Invalid document structure: expected 'data' object"
    )


class Validator:
    """Collects field errors for one envelope."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name = name
        self.data = data
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str, pointer: str | None = None) -> None:
        self.errors.append(FieldError(field, message, pointer or f"/{self.name}/{field}"))

    def check(self) -> None:
        """Raise 422 if anything was wrong."""
        if self.errors:
            raise validation_failed(self.errors)

    def present(self, field: str) -> bool:
        return self.data.get(field) is not None

    def string(self, field: str, required: bool = False, max_len: int | None = None) -> str | None:
        value = self.data.get(field)
        if value is None or value == "":
            if required:
                self.add(field, "is required")
            return None
        if not isinstance(value, str):
            self.add(field, "must be a string")
            return None
        if max_len is not None and len(value) > max_len:
            self.add(field, f"is too long (maximum is {max_len} characters)")
            return None
        return value

    def integer(self, field: str, required: bool = False, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        value = self.data.get(field)
        if value is None:
            if required:
                self.add(field, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(field, "must be an integer")
            return None
        if minimum is not None and value < minimum:
            message = "must be greater than 0" if minimum == 1 else f"must be at least {minimum}"
            self.add(field, message)
            return None
        if maximum is not None and value > maximum:
            self.add(field, f"must be at most {maximum}")
            return None
        return value

    def boolean(self, field: str) -> bool | None:
        value = self.data.get(field)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.add(field, "must be true or false")
            return None
        return value

    def choice(self, field: str, options: tuple[str, ...], required: bool = False,
               default: str | None = None) -> str | None:
        value = self.string(field, required=required)
        if value is None:
            return default if not required else None
        if value not in options:
            self.add(field, "must be one of " + ", ".join(options))
            return None
        return value

    def date(self, field: str) -> date | None:
        value = self.string(field)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.add(field, "must be a date in the format YYYY-MM-DD")
            return None

    def country_code(self, field: str = "country_code", required: bool = False) -> str | None:
        value = self.string(field, required=required)
        if value is not None and (len(value) != 2 or not value.isalpha() or not value.isupper()):
            self.add(field, "must be an ISO 3166-1 alpha-2 code")
            return None
        return value

    def currency(self, field: str = "currency", required: bool = True) -> str | None:
        value = self.string(field, required=required)
        if value is not None and value != "GBP":
            self.add(field, "must be GBP for the Bacs scheme")
            return None
        return value

    def metadata(self) -> dict[str, str]:
        """GoCardless metadata: up to 3 string pairs, keys <= 50 and values <= 500 chars."""
        value = self.data.get("metadata")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add("metadata", "must be an object")
            return {}
        if len(value) > METADATA_MAX_KEYS:
            self.add("metadata", f"must have at most {METADATA_MAX_KEYS} keys")
            return {}
        for key, item in value.items():
            if len(key) > METADATA_KEY_MAX:
                self.add("metadata", f"keys must be at most {METADATA_KEY_MAX} characters")
                return {}
            if not isinstance(item, str):
                self.add("metadata", "values must be strings")
                return {}
            if len(item) > METADATA_VALUE_MAX:
                self.add("metadata", f"values must be at most {METADATA_VALUE_MAX} characters")
                return {}
        return dict(value)

    def link(self, name: str, required: bool = True) -> str | None:
        """An id under ``links``; existence is checked by the caller."""
        links = self.data.get("links")
        pointer = f"/{self.name}/links/{name}"
        if links is not None and not isinstance(links, dict):
            self.add("links", "must be an object", f"/{self.name}/links")
            return None
        value = (links or {}).get(name)
        if value is None or value == "":
            if required:
                self.add(name, "is required", pointer)
            return None
        if not isinstance(value, str):
            self.add(name, "must be a string", pointer)
            return None
        return value

    def link_error(self, name: str, message: str) -> None:
        self.add(name, message, f"/{self.name}/links/{name}")

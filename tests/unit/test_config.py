import pytest

from app.config import Settings


def test_defaults_are_embedded_and_immediate() -> None:
    s = Settings.from_env(environ={})
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.redis_url == ""
    assert s.api_queue_mode == "immediate"
    assert s.store_bank_details is False


def test_environment_is_parsed_with_named_errors() -> None:
    s = Settings.from_env(environ={"RETRY_SCHEDULE": "1,5", "API_QUEUE_MODE": "scheduled",
                                   "STORE_BANK_DETAILS": "on", "STATUS_LABELS": "paid_out=Paid"})
    assert s.retry_schedule == (60.0, 300.0)
    assert s.api_queue_mode == "scheduled" and s.store_bank_details
    assert s.status_labels == {"paid_out": "Paid"}
    with pytest.raises(ValueError, match="API_QUEUE_MODE"):
        Settings.from_env(environ={"API_QUEUE_MODE": "sometimes"})


def test_production_refuses_development_secrets() -> None:
    s = Settings.from_env(environ={"PAYBRIDGE_ENV": "production"})
    with pytest.raises(RuntimeError, match="GATEWAY_ACCESS_TOKEN"):
        s.validate()

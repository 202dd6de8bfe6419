import pytest

from app.config import DEV_WEBHOOK_SECRET, ConfigError, Settings


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


REAL = {"SECRET_KEY": "k" * 48, "GOCARDLESS_WEBHOOK_SECRET": "w" * 40,
        "GATEWAY_ACCESS_TOKEN": "live_" + "t" * 40, "SALESFORCE_CLIENT_SECRET": "c" * 64,
        "DATABASE_URL": "postgresql://db/paybridge", "REDIS_URL": "redis://cache:6379/0",
        "GATEWAY_URL": "https://api.gocardless.com",
        "SALESFORCE_LOGIN_URL": "https://acme.my.salesforce.com"}


def test_a_start_with_nothing_set_is_production_and_refuses_every_development_secret() -> None:
    # The Procfile as written sets no PAYBRIDGE_ENV: that must fail closed, not open.
    s = Settings.from_env(environ={})
    assert s.env == "production"
    with pytest.raises(ConfigError) as caught:
        s.validate()
    line = str(caught.value)
    assert "\n" not in line
    for name in ("SECRET_KEY", "GOCARDLESS_WEBHOOK_SECRET", "GATEWAY_ACCESS_TOKEN",
                 "SALESFORCE_CLIENT_SECRET", "DATABASE_URL", "REDIS_URL", "GATEWAY_URL",
                 "SALESFORCE_LOGIN_URL"):
        assert name in line
    assert "paybridge run" in line  # where the development defaults belong


@pytest.mark.parametrize(("name", "value", "says"), [
    ("SECRET_KEY", "short", "shorter than 32"),
    ("GOCARDLESS_WEBHOOK_SECRET", "", "not set"),
    ("GOCARDLESS_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET, "development"),
    ("GOCARDLESS_WEBHOOK_SECRET_PREVIOUS", DEV_WEBHOOK_SECRET, "development"),
    ("GOCARDLESS_WEBHOOK_SECRET_PREVIOUS", "old", "shorter than 16"),
    ("GATEWAY_ACCESS_TOKEN", "tok", "shorter than 16"),
    ("SALESFORCE_CLIENT_SECRET", "", "not set"),
])
def test_each_missing_development_or_weak_secret_is_named(name: str, value: str,
                                                          says: str) -> None:
    s = Settings.from_env(environ={**REAL, name: value})
    with pytest.raises(ConfigError, match=f"{name} (is )?[^;]*{says}"):
        s.validate()


def test_real_secrets_start_and_the_development_stack_keeps_its_defaults() -> None:
    Settings.from_env(environ=REAL).validate()
    Settings.from_env(environ={"PAYBRIDGE_ENV": "development"}).validate()
    Settings.from_env(environ={"PAYBRIDGE_ENV": "test"}).validate()
    # An unused previous secret may stay unset.
    assert Settings.from_env(environ=REAL).webhook_secret_previous == ""

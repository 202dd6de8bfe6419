import random

import pytest

from app.config import parse_duration, parse_schedule
from app.retry import next_delay

SCHEDULE = (60.0, 300.0, 900.0)


def test_escalates_through_the_schedule_then_gives_up() -> None:
    assert [next_delay(n, SCHEDULE, jitter=0) for n in (1, 2, 3)] == [60.0, 300.0, 900.0]
    assert next_delay(4, SCHEDULE, jitter=0) is None


def test_jitter_stays_within_its_share_and_varies() -> None:
    rng = random.Random(7)
    delays = [next_delay(2, SCHEDULE, jitter=0.1, rng=rng) for _ in range(200)]
    assert all(270.0 <= d <= 330.0 for d in delays)
    assert len({round(d, 3) for d in delays}) > 50


def test_retry_after_is_a_floor_not_a_replacement() -> None:
    assert next_delay(1, SCHEDULE, jitter=0, retry_after=120) == 120
    assert next_delay(2, SCHEDULE, jitter=0, retry_after=5) == 300


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        next_delay(0, SCHEDULE)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("250ms", 0.25), ("3", 180),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_schedule_parsing_defaults_to_minutes_like_smarterpay() -> None:
    assert parse_schedule("1,5,15") == (60.0, 300.0, 900.0)
    assert parse_schedule("30s, 2m") == (30.0, 120.0)
    with pytest.raises(ValueError):
        parse_schedule("")
    with pytest.raises(ValueError):
        parse_schedule("soon")

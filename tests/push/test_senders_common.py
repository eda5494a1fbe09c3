"""The rules every sender shares: Retry-After and the time left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from invitations.push.senders.common import parse_retry_after, seconds_left


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(" 0 ") == 0.0


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    seconds = parse_retry_after(format_datetime(when, usegmt=True))
    assert seconds is not None and 115 <= seconds <= 120


def test_a_retry_after_in_the_past_is_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_no_or_junk_retry_after_is_none() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


def test_seconds_left() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert seconds_left(now + timedelta(seconds=2.5), now=now) == 2.5
    assert seconds_left(now - timedelta(seconds=1), now=now) == -1.0

"""Numbers read from the environment: a bad value names its variable (callsite/settings/env.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ImproperlyConfigured

from callsite.settings.env import env_float, env_int


def test_unset_or_empty_gives_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLSITE_X", raising=False)
    assert env_int("CALLSITE_X", 9) == 9
    monkeypatch.setenv("CALLSITE_X", " ")
    assert env_float("CALLSITE_X", 2.5) == 2.5


def test_a_number_is_read_as_the_type_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLSITE_X", " 12 ")
    assert env_int("CALLSITE_X", 9) == 12
    monkeypatch.setenv("CALLSITE_X", "0.25")
    assert env_float("CALLSITE_X", 1) == 0.25


@pytest.mark.parametrize(
    ("value", "read", "expected"),
    [
        ("ten", env_int, "CALLSITE_X must be a whole number, not 'ten'."),
        ("1.5", env_int, "CALLSITE_X must be a whole number, not '1.5'."),
        ("fast", env_float, "CALLSITE_X must be a number, not 'fast'."),
    ],
)
def test_a_bad_value_stops_the_server_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, read: Callable[[str, int], float], expected: str
) -> None:
    monkeypatch.setenv("CALLSITE_X", value)
    with pytest.raises(ImproperlyConfigured) as error:
        read("CALLSITE_X", 1)
    assert str(error.value) == expected

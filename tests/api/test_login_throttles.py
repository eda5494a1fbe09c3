"""Password guessing is limited per account and per client address on every login path: the
token endpoint (signed-in callers too), the browser login and the admin login. A locked-out
login answers 429 with Retry-After (API.md "Errors"); what is already signed in keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.callflow import error_of
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = 10  # LOGIN_FAILURE_LIMIT's default
COOLOFF = 30 * 60


def token_login(username: str, password: str, *, ip: str = "127.0.0.1", **extra: Any) -> Any:
    return APIClient().post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=ip,
        **extra,
    )


def page_login(path: str, username: str, password: str, *, ip: str = "127.0.0.1") -> Any:
    return Client().post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def assert_locked_out(res: Any) -> None:
    assert res.status_code == 429, (res.status_code, res.content[:300])
    assert int(res["Retry-After"]) == COOLOFF


def test_guessing_one_accounts_password_from_many_addresses_locks_that_account(
    users: dict[str, Any],
) -> None:
    for i in range(LIMIT - 1):
        error_of(token_login("alice", "guess", ip=f"10.0.0.{i}"), 401, "not_authenticated")
    # The failure that reaches the limit is answered with the lockout already.
    assert_locked_out(token_login("alice", "guess", ip="10.0.0.99"))
    # The right password, from a fresh address: still refused until the cool-off passes.
    res = token_login("alice", PASSWORD, ip="10.9.9.9")
    assert_locked_out(res)
    error = error_of(res, 429, "throttled")
    assert error["details"]["retry_after"] == COOLOFF
    # Other accounts are not affected.
    assert token_login("bob", PASSWORD, ip="10.9.9.9").status_code == 200


def test_guessing_many_accounts_from_one_address_locks_that_address(users: dict[str, Any]) -> None:
    names = list(users)
    for i in range(LIMIT):
        token_login(names[i % len(names)], "guess", ip="192.0.2.7")
    assert_locked_out(token_login("judy", PASSWORD, ip="192.0.2.7"))
    assert token_login("judy", PASSWORD, ip="192.0.2.8").status_code == 200


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_the_browser_and_admin_logins_are_limited_the_same_way(
    path: str, users: dict[str, Any]
) -> None:
    users["alice"].is_staff = True
    users["alice"].save()
    for i in range(LIMIT - 1):
        res = page_login(path, "alice", "guess", ip=f"10.1.0.{i}")
        assert res.status_code == 200  # the form again, with its error
    assert_locked_out(page_login(path, "alice", "guess", ip="10.1.0.99"))
    assert_locked_out(page_login(path, "alice", PASSWORD, ip="10.1.9.9"))
    # The token endpoint shares the count: it is the same account.
    assert_locked_out(token_login("alice", PASSWORD, ip="10.1.9.9"))


def test_a_locked_out_account_stays_signed_in_where_it_already_is(
    users: dict[str, Any], client_for: Any
) -> None:
    signed_in = client_for("alice")
    for i in range(LIMIT):
        token_login("alice", "guess", ip=f"10.2.0.{i}")
    assert_locked_out(token_login("alice", PASSWORD))
    assert signed_in.get("/api/me/").status_code == 200


@pytest.fixture
def tight_token_throttle(throttle_rates: Callable[..., None]) -> None:
    throttle_rates(TokenThrottle="3/min")


def test_the_token_throttle_counts_signed_in_callers_too(
    users: dict[str, Any], client_for: Any, tight_token_throttle: None
) -> None:
    caller = client_for("alice")
    for _ in range(3):
        caller.post("/api/auth/token/", {"username": "bob", "password": "x"}, format="json")
    res = caller.post("/api/auth/token/", {"username": "bob", "password": "x"}, format="json")
    error_of(res, 429, "throttled")
    assert int(res["Retry-After"]) >= 1


def test_a_new_x_forwarded_for_is_not_a_new_bucket(
    users: dict[str, Any], tight_token_throttle: None
) -> None:
    for i in range(3):
        token_login("bob", PASSWORD, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    error_of(token_login("bob", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99"), 429, "throttled")


def test_behind_one_trusted_proxy_the_address_it_saw_is_the_key(
    users: dict[str, Any], tight_token_throttle: None, settings: Any
) -> None:
    settings.NUM_PROXIES = 1
    # The proxy (REMOTE_ADDR 127.0.0.1) appends the address it saw; the client wrote the rest.
    for i in range(3):
        token_login("bob", PASSWORD, HTTP_X_FORWARDED_FOR=f"spoof-{i}, 198.51.100.1")
    error_of(
        token_login("bob", PASSWORD, HTTP_X_FORWARDED_FOR="spoof-x, 198.51.100.1"), 429, "throttled"
    )
    assert token_login("bob", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200

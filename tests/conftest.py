"""Shared fixtures: users, authenticated API clients, throttle rates, and a clean channel layer
per test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from invitations import tokens

DEMO = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
)
PASSWORD = "pw-for-tests"

IS_POSTGRES = bool(os.environ.get("DATABASE_URL", "").startswith("postgres"))


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if IS_POSTGRES:
        return
    why = "needs PostgreSQL (row locks, or one server shared by processes): `make test-postgres`"
    skip = pytest.mark.skip(reason=why)
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def users(db: Any) -> dict[str, Any]:
    model = get_user_model()
    made = {}
    for name in DEMO:
        user = model.objects.create_user(name, password=PASSWORD, first_name=name.title())
        made[name] = user
    return made


@pytest.fixture
def client_for(users: dict[str, Any]) -> Any:
    """client_for("alice") -> an APIClient authenticated with a token of alice's."""
    clients: dict[str, APIClient] = {}

    def make(name: str) -> APIClient:
        if name not in clients:
            token, _ = tokens.issue(user=users[name], device_id="tests")
            c = APIClient()
            c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            clients[name] = c
        return clients[name]

    return make


@pytest.fixture
def throttle_rates(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``throttle_rates(PairThrottle="6/min", ...)``: those throttles' rates for this test, their
    counters empty before and after. (DRF binds THROTTLE_RATES when a class is defined, so
    override_settings cannot reach them; tests/settings.py lifts the limits for other tests.)"""
    from django.core.cache import cache

    from invitations.api import throttles

    def set_rates(**rates: str) -> None:
        for name, rate in rates.items():
            throttle = getattr(throttles, name)
            monkeypatch.setattr(throttle, "THROTTLE_RATES", {throttle.scope: rate})
        cache.clear()

    yield set_rates
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test gets an empty in-memory channel layer (the Redis ones use their own prefix)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()

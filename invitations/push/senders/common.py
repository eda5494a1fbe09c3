"""What every HTTP sender shares: time left, Retry-After, TLS trust, the async client, the logger,
and ``HTTPSender``: settings with keyword overrides, ``from_settings()``, the POST, ``close()``.

Kept apart from ``base.py`` (the fixed interface) so providers share one reading of the rules that
must not drift between them: a push is never sent once its deadline has passed, and a
``Retry-After`` is read the same way everywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self

import httpx
from django.conf import settings

from .base import Outcome, PushResult

logger = logging.getLogger("invitations.push")

# A provider that hangs must not hold a delivery slot past any useful deadline.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def setting(name: str, given: str | None = None, default: str = "") -> str:
    """``given`` when the caller passed one, else ``settings.<name>``; empty means ``default``."""
    value = given if given is not None else getattr(settings, name, None)
    return str(value or default)


def seconds_left(expires_at: datetime, *, now: datetime | None = None) -> float:
    return (expires_at - (now or datetime.now(UTC))).total_seconds()


def expired_result() -> PushResult:
    return PushResult(Outcome.FAILED, detail="expired")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, seconds_left(when))


def verify_for(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """httpx's ``verify``: the system trust (certifi) by default, only ``ca_bundle`` when given."""
    if not ca_bundle:
        return True
    return ssl.create_default_context(cafile=ca_bundle)


class CABundleError(ValueError):
    """A ``*_CA_BUNDLE`` setting that names no readable bundle."""


class LoopClient:
    """An ``httpx.AsyncClient`` made on first use, per event loop.

    A client's pooled connections belong to the loop that opened them; a sender shared across
    loops (tests, ``async_to_sync``) gets a fresh client in a new loop instead of a broken one.
    """

    def __init__(self, *, ca_bundle: str | None, http2: bool = False, base_url: str = "") -> None:
        self._ca_bundle = ca_bundle
        self._options: dict[str, Any] = {"http2": http2, "base_url": base_url, "timeout": TIMEOUT}
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A client of a finished loop is dropped: its sockets close with their loop.
            try:
                verify = verify_for(self._ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise CABundleError(f"CA bundle {self._ca_bundle!r}: {exc}") from exc
            self._client = httpx.AsyncClient(verify=verify, **self._options)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()
        self._loop = None


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def transient(response: httpx.Response, detail: str) -> PushResult:
    return PushResult(
        Outcome.RETRY,
        status=response.status_code,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        detail=detail,
    )


def unreachable(provider: str, exc: Exception) -> PushResult:
    """A connection error, timeout or protocol error: the provider may be fine a moment later.
    Except a certificate it does not trust: that is the CA bundle setting (or an impostor)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return config_error(provider, f"TLS: {cause.verify_message}")
        cause = cause.__cause__ or cause.__context__
    logger.warning("push %s: provider unreachable: %r", provider, exc)
    return PushResult(Outcome.RETRY, detail=f"unreachable: {type(exc).__name__}")


def config_error(provider: str, detail: str, status: int | None = None) -> PushResult:
    # Loud on purpose: every push to this provider fails until an operator fixes the settings.
    logger.error("push %s: configuration error (%s): %s", provider, status, detail)
    return PushResult(Outcome.CONFIG_ERROR, status=status, detail=detail)


class HTTPSender:
    """The frame of a provider's sender over one ``LoopClient``.

    Built with no arguments from settings (``from_settings()``); a keyword given wins over its
    setting. A subclass names its ``provider`` and its ``options``: each option ``name`` reads
    ``settings.<settings_prefix>_<NAME>`` unless given as a keyword, and lands in ``config``;
    ``ca_bundle`` (empty: the system's CAs) and ``base_url`` also set up the client. ``_post``
    sends and hands the answer to the subclass's ``_result``, turning a failed connection or an
    unreadable CA bundle into a result.
    """

    provider: ClassVar[str]
    settings_prefix: ClassVar[str]
    options: ClassVar[tuple[str, ...]]
    defaults: ClassVar[dict[str, str]] = {}  # an option's value when neither is given
    http2: ClassVar[bool] = False

    def __init__(self, **given: str | None) -> None:
        names = (*self.options, "ca_bundle")
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option {', '.join(unknown)}")
        self.config = {
            name: setting(
                f"{self.settings_prefix}_{name.upper()}",
                given.get(name),
                self.defaults.get(name, ""),
            )
            for name in names
        }
        self._ca_bundle = self.config["ca_bundle"] or None
        base_url = self.config.get("base_url", "")
        self._http = LoopClient(ca_bundle=self._ca_bundle, http2=self.http2, base_url=base_url)

    @classmethod
    def from_settings(cls) -> Self:
        return cls()

    def _result(self, response: httpx.Response) -> PushResult:
        raise NotImplementedError

    async def _post(self, url: str, **kwargs: Any) -> PushResult:
        try:
            response = await self._http.get().post(url, **kwargs)
        except httpx.HTTPError as exc:
            return unreachable(self.provider, exc)
        except CABundleError as exc:
            return config_error(self.provider, str(exc))
        return self._result(response)

    async def close(self) -> None:
        await self._http.aclose()

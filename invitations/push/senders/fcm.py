"""FCM HTTP v1: a data-only, high-priority Android message per device.

The OAuth2 access token comes from google-auth's service-account credentials (a JWT assertion
posted to the file's ``token_uri``). google-auth's refresh is synchronous (requests), so it runs in
a thread, once at a time under a lock, and the token is reused until google-auth considers it
close to expiry. The message itself is posted with an ``httpx.AsyncClient``.

FCM ``data`` values must be strings: every top-level field of API.md's payload becomes one entry,
strings as they are and anything else (``v``, ``inviter``, ...) as compact JSON, so an app reads
``data["type"]`` and ``data["call_id"]`` directly and parses ``data["inviter"]``.

Settings: ``FCM_SERVICE_ACCOUNT_FILE``, ``FCM_BASE_URL`` (default Google's), ``FCM_CA_BUNDLE``
(optional; for the token endpoint too).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import requests
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request
from google.oauth2 import service_account
from requests.adapters import HTTPAdapter

from .base import Outcome, PushMessage, PushResult
from .common import (
    HTTPSender,
    config_error,
    expired_result,
    json_body,
    seconds_left,
    transient,
    unreachable,
)

PROVIDER = "fcm"
DEFAULT_BASE_URL = "https://fcm.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
MAX_DATA_BYTES = 4096  # FCM's limit for a message's data: keys and values, in bytes


class PinnedCAAdapter(HTTPAdapter):
    """Trust exactly ``ca_bundle`` for the token endpoint. ``Session.verify`` is not enough:
    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` from the environment override it."""

    def __init__(self, ca_bundle: str) -> None:
        self.ca_bundle = ca_bundle
        super().__init__()

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = self.ca_bundle
        return super().send(request, *args, **kwargs)


def fcm_data(payload: dict[str, Any]) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in payload.items()
    }


def error_codes(data: dict[str, Any]) -> tuple[str, str, set[str], str]:
    """(status, message, FCM errorCodes, fields in violation) of a v1 error body."""
    error = data.get("error")
    if not isinstance(error, dict):
        return "", "", set(), ""
    codes: set[str] = set()
    fields: list[str] = []
    for item in error.get("details") or []:
        if not isinstance(item, dict):
            continue
        if item.get("errorCode"):
            codes.add(str(item["errorCode"]))
        for violation in item.get("fieldViolations") or []:
            if isinstance(violation, dict):
                fields.append(str(violation.get("field", "")))
    return str(error.get("status", "")), str(error.get("message", "")), codes, " ".join(fields)


class FCMSender(HTTPSender):
    """FCM HTTP v1, with its OAuth2 token from the service account."""

    provider = PROVIDER
    settings_prefix = "FCM"
    options = ("service_account_file", "base_url")
    defaults = {"base_url": DEFAULT_BASE_URL}

    def __init__(self, **given: str | None) -> None:
        super().__init__(**given)
        self._credentials: service_account.Credentials | None = None
        self._session: requests.Session | None = None
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _load(self) -> service_account.Credentials:
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_file(
                self.config["service_account_file"], scopes=[SCOPE]
            )
        )
        session = requests.Session()
        if self._ca_bundle:
            session.mount("https://", PinnedCAAdapter(self._ca_bundle))
        self._session = session
        return credentials

    async def access_token(self) -> str:
        """A valid OAuth2 token; refreshed off the event loop, by one caller at a time."""
        loop = asyncio.get_running_loop()
        if loop not in self._locks:
            self._locks = {loop: asyncio.Lock()}  # an asyncio.Lock serves one loop
        async with self._locks[loop]:
            if self._credentials is None:
                if not self.config["service_account_file"]:
                    raise google_exceptions.DefaultCredentialsError(
                        "FCM_SERVICE_ACCOUNT_FILE is not set"
                    )
                self._credentials = await asyncio.to_thread(self._load)
            credentials = self._credentials
            if not credentials.valid:
                await asyncio.to_thread(credentials.refresh, Request(self._session))
            return str(credentials.token)

    async def send(self, message: PushMessage) -> PushResult:
        left = seconds_left(message.expires_at)
        if left <= 0:
            return expired_result()
        if not message.token:
            return PushResult(Outcome.DEAD, detail="no registration token")
        data = fcm_data(message.payload)
        if sum(len(k.encode()) + len(v.encode()) for k, v in data.items()) > MAX_DATA_BYTES:
            return PushResult(Outcome.FAILED, detail="payload too large")
        try:
            token = await self.access_token()
        except google_exceptions.TransportError as exc:
            return unreachable(PROVIDER, exc)
        except (google_exceptions.GoogleAuthError, OSError, ValueError) as exc:
            # RefreshError (the token endpoint refused our assertion), a missing or bad file.
            return config_error(PROVIDER, f"OAuth: {exc}")
        project = self._credentials.project_id if self._credentials else ""
        if not project:
            return config_error(PROVIDER, "the service-account file has no project_id")
        android: dict[str, Any] = {
            "priority": "HIGH",
            "ttl": f"{int(left)}s",
            "collapse_key": message.collapse_id,
        }
        if message.app_id:
            # FCM refuses the message if the token belongs to another app.
            android["restricted_package_name"] = message.app_id
        body = {"message": {"token": message.token, "data": data, "android": android}}
        return await self._post(
            f"/v1/projects/{project}/messages:send",
            json=body,
            headers={"authorization": f"Bearer {token}"},
        )

    def _result(self, response: httpx.Response) -> PushResult:
        status = response.status_code
        if status == 200:
            return PushResult(
                Outcome.SENT, status=status, detail=str(json_body(response).get("name", ""))
            )
        error_status, text, codes, fields = error_codes(json_body(response))
        detail = ",".join(sorted(codes)) or error_status or text[:200]
        if status == 404 or "UNREGISTERED" in codes:
            return PushResult(Outcome.DEAD, status=status, detail=detail or "UNREGISTERED")
        if status == 400 and ("message.token" in fields or "registration token" in text.lower()):
            return PushResult(Outcome.DEAD, status=status, detail=detail)
        if status in (401, 403):
            if status == 401 and self._credentials is not None:
                self._credentials.token = None  # refreshed before the next push
            return config_error(PROVIDER, detail, status)
        if status == 429 or status >= 500:
            return transient(response, detail)
        return PushResult(Outcome.FAILED, status=status, detail=detail)

    async def close(self) -> None:
        await super().close()
        if self._session is not None:
            self._session.close()
            self._session = None
            self._credentials = None  # reloaded with a new session if the sender is used again

"""Bad input: every limit of API.md, and everything else a client can get wrong.

Given any malformed request, then the answer is the one error envelope with the right status and
code, never a 500, and the database is exactly as it was before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from invitations.models import Call
from tests.callflow import act, db_state, error_of, ok, start_call, who

pytestmark = pytest.mark.django_db

EVERY_ACTION = ("invite", "cancel", "accept", "reject", "quit", "end")


def refused(res: Any, field: str | None = None, status: int = 400, code: str = "validation_error"):
    """A 400 validation_error naming the field (API.md: field errors in ``details``)."""
    error = error_of(res, status, code)
    if field is not None:
        assert field in error.get("details", {}), error
    return error


@pytest.fixture
def unchanged() -> Iterator[None]:
    """Wrap a test in 'the database is the same before and after'."""
    before = db_state()
    yield
    assert db_state() == before


def post_call(client: APIClient, **body: Any) -> Any:
    return client.post("/api/calls/", body, format="json")


def post_raw(client: APIClient, path: str, **body: Any) -> Any:
    """POST JSON encoded by hand: json.dumps escapes lone surrogates ("\\ud800"), which are valid
    JSON a client may send, where the test client's renderer would refuse to encode them."""
    return client.post(path, json.dumps(body), content_type="application/json")


# --- invitees: 1..9, duplicates removed, yourself 400, unknown users ------------------------------


def test_nine_invitees_are_allowed(client_for: Any) -> None:
    names = ["bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
    call = start_call(client_for("alice"), *names)
    assert len(call["participants"]) == 10


def test_ten_invitees_are_refused(client_for: Any, unchanged: None) -> None:
    names = ["bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory"]
    refused(post_call(client_for("alice"), invitees=names), "invitees")


@pytest.mark.parametrize("invitees", [[], None, "bob", {"bob": 1}, 7, [""], ["  "], [1], [None]])
def test_invitees_must_be_a_non_empty_list_of_usernames(
    client_for: Any, unchanged: None, invitees: Any
) -> None:
    refused(post_call(client_for("alice"), invitees=invitees), "invitees")


def test_invitees_are_required(client_for: Any, unchanged: None) -> None:
    refused(post_call(client_for("alice"), type="audio"), "invitees")


def test_duplicates_are_removed_before_counting(client_for: Any) -> None:
    # nine distinct names given twelve times over is still nine invitees
    names = ["bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
    call = start_call(client_for("alice"), *(names + ["bob", "bob", "carol"]))
    assert [p["user"] for p in call["participants"]] == ["alice", *names]


def test_duplicates_do_not_ring_twice(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", "bob")
    assert [p["user"] for p in call["participants"]] == ["alice", "bob"]


def test_inviting_yourself_is_refused(client_for: Any, unchanged: None) -> None:
    refused(post_call(client_for("alice"), invitees=["alice"]), "invitees")
    refused(post_call(client_for("alice"), invitees=["bob", "alice"]), "invitees")


def test_unknown_users_go_to_errors_and_the_rest_ring(client_for: Any) -> None:
    res = post_call(client_for("alice"), invitees=["bob", "nobody", "ghost"])
    assert res.status_code == 201
    body = res.json()
    assert body["errors"] == [
        {"user": "nobody", "reason": "not_found"},
        {"user": "ghost", "reason": "not_found"},
    ]
    assert [p["user"] for p in body["call"]["participants"]] == ["alice", "bob"]


def test_inactive_users_count_as_unknown(users: dict[str, Any], client_for: Any) -> None:
    users["carol"].is_active = False
    users["carol"].save()
    body = post_call(client_for("alice"), invitees=["bob", "carol"]).json()
    assert body["errors"] == [{"user": "carol", "reason": "not_found"}]


def test_when_no_invitee_exists_nothing_is_created(client_for: Any, unchanged: None) -> None:
    refused(post_call(client_for("alice"), invitees=["nobody", "ghost"]), "invitees")
    assert Call.objects.count() == 0


def test_adding_only_unknown_users_to_a_call_is_refused(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    before = db_state()
    refused(act(client_for("alice"), call["id"], "invite", invitees=["ghost"]), "invitees")
    refused(act(client_for("alice"), call["id"], "invite", invitees=[]), "invitees")
    refused(act(client_for("alice"), call["id"], "invite"), "invitees")
    refused(act(client_for("alice"), call["id"], "invite", invitees=["alice"]), "invitees")
    assert db_state() == before


# --- timeout 1..600, whole seconds only -----------------------------------------------------------


@pytest.mark.parametrize("seconds", [1, 600, 59])
def test_timeouts_in_range_are_accepted(client_for: Any, seconds: int) -> None:
    assert start_call(client_for("alice"), "bob", timeout=seconds)["timeout"] == seconds


@pytest.mark.parametrize(
    "seconds",
    [0, -1, 601, 10**30, True, False, "30", "", 30.0, 1.5, [30], {"s": 30}],
    ids=repr,
)
def test_timeouts_out_of_range_or_of_the_wrong_type_are_refused(
    client_for: Any, unchanged: None, seconds: Any
) -> None:
    refused(post_call(client_for("alice"), invitees=["bob"], timeout=seconds), "timeout")


def test_a_null_timeout_means_the_default(client_for: Any) -> None:
    assert start_call(client_for("alice"), "bob", timeout=None)["timeout"] == 60


# --- type: video | audio --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["VIDEO", "Audio", "screen", "", 1, True, ["audio"], {"a": 1}])
def test_the_call_type_is_video_or_audio(client_for: Any, unchanged: None, kind: Any) -> None:
    refused(post_call(client_for("alice"), invitees=["bob"], type=kind), "type")


# --- extended_data: a string of at most 2048 bytes in UTF-8 ---------------------------------------

# "é" is 2 bytes, "€" 3 and "😀" 4 in UTF-8: the limit counts bytes, not characters.
AT_LIMIT = ["a" * 2048, "é" * 1024, "€" * 682 + "ab", "😀" * 512]
OVER_LIMIT = ["a" * 2049, "é" * 1024 + "a", "€" * 683, "😀" * 512 + "a", "😀" * 1000]


@pytest.mark.parametrize("data", AT_LIMIT, ids=lambda d: f"{len(d)}chars")
def test_extended_data_up_to_2048_utf8_bytes_is_kept_verbatim(client_for: Any, data: str) -> None:
    call = start_call(client_for("alice"), "bob", extended_data=data)
    assert call["extended_data"] == data and who(call, "bob")["extended_data"] == data
    reread = client_for("bob").get(f"/api/calls/{call['id']}/").json()
    assert reread["extended_data"] == data


@pytest.mark.parametrize("data", OVER_LIMIT, ids=lambda d: f"{len(d)}chars")
def test_extended_data_over_2048_utf8_bytes_is_refused(
    client_for: Any, unchanged: None, data: str
) -> None:
    refused(post_call(client_for("alice"), invitees=["bob"], extended_data=data), "extended_data")


@pytest.mark.parametrize(
    "data", [1, True, ["x"], {"k": "v"}, "nul\x00byte", "\ud800lone"], ids=repr
)
def test_extended_data_must_be_a_storable_string(
    client_for: Any, unchanged: None, data: Any
) -> None:
    # A lone surrogate ("\ud800" is valid JSON) cannot be encoded in UTF-8, and PostgreSQL
    # cannot store NUL: both are the client's mistake, not the server's.
    res = post_raw(client_for("alice"), "/api/calls/", invitees=["bob"], extended_data=data)
    refused(res, "extended_data")


@pytest.mark.parametrize("action", EVERY_ACTION)
def test_every_action_checks_extended_data(client_for: Any, action: str) -> None:
    call = start_call(client_for("alice"), "bob")
    if action in ("quit", "end"):
        ok(client_for("bob"), call["id"], "accept")
    actor = "bob" if action in ("accept", "reject") else "alice"
    extra = {"invitees": ["carol"]} if action == "invite" else {}
    before = db_state()
    res = act(client_for(actor), call["id"], action, extended_data="x" * 2049, **extra)
    refused(res, "extended_data")
    assert db_state() == before


# --- reason: at most 32 characters ----------------------------------------------------------------


def test_a_reason_of_32_characters_is_kept(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    after = ok(client_for("bob"), call["id"], "reject", reason="é" * 32)
    assert who(after, "bob")["reason"] == "é" * 32


@pytest.mark.parametrize("reason", ["r" * 33, "", "   ", 5, ["busy"], "a\x00b", "\udfff"], ids=repr)
def test_a_bad_reason_is_refused(client_for: Any, reason: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    before = db_state()
    refused(
        post_raw(client_for("bob"), f"/api/calls/{call['id']}/reject/", reason=reason), "reason"
    )
    assert db_state() == before


# --- device_id, usernames: strings a database can hold --------------------------------------------


@pytest.mark.parametrize("device", ["d" * 65, 12, ["x"], "a\x00", "\ud83d"], ids=repr)
def test_a_bad_device_id_is_refused(client_for: Any, device: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    before = db_state()
    res = post_raw(client_for("bob"), f"/api/calls/{call['id']}/accept/", device_id=device)
    refused(res, "device_id")
    res = post_raw(client_for("carol"), "/api/calls/", invitees=["dave"], device_id=device)
    refused(res, "device_id")
    assert db_state() == before


@pytest.mark.parametrize("name", ["bo\x00b", "\ud800", "x" * 151], ids=repr)
def test_an_unstorable_username_is_refused_not_a_500(client_for: Any, name: str) -> None:
    refused(post_raw(client_for("alice"), "/api/calls/", invitees=[name]), "invitees")
    call = start_call(client_for("alice"), "bob")
    before = db_state()
    res = post_raw(client_for("alice"), f"/api/calls/{call['id']}/invite/", invitees=[name])
    refused(res, "invitees")
    res = post_raw(client_for("alice"), f"/api/calls/{call['id']}/cancel/", invitees=[name])
    refused(res, "invitees")
    assert db_state() == before


def test_a_huge_invitee_list_is_refused_quickly(client_for: Any, unchanged: None) -> None:
    import time

    started = time.monotonic()
    refused(post_call(client_for("alice"), invitees=[f"u{i}" for i in range(100_000)]), "invitees")
    assert time.monotonic() - started < 2


# --- the body itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b"{'invitees': ['bob']}", b"\xff\xfe", b"[1,", b"nul"])
def test_malformed_json_is_a_validation_error(client_for: Any, unchanged: None, raw: bytes) -> None:
    res = client_for("alice").post("/api/calls/", raw, content_type="application/json")
    refused(res)


@pytest.mark.parametrize("raw", ["[]", '["bob"]', '"bob"', "42", "null", "true"])
@pytest.mark.parametrize("path", ["/api/calls/", "/api/auth/token/"])
def test_a_body_that_is_not_an_object_is_refused(
    client_for: Any, unchanged: None, raw: str, path: str
) -> None:
    res = client_for("alice").post(path, raw, content_type="application/json")
    if raw == "null":
        # JSON null is "no body": the endpoint then says what is missing
        refused(res)
    else:
        refused(res, "non_field_errors")


@pytest.mark.parametrize("action", EVERY_ACTION)
def test_every_action_refuses_a_non_object_body(client_for: Any, action: str) -> None:
    call = start_call(client_for("alice"), "bob")
    before = db_state()
    res = client_for("bob").post(
        f"/api/calls/{call['id']}/{action}/", "[1, 2]", content_type="application/json"
    )
    refused(res, "non_field_errors")
    assert db_state() == before


def test_a_wrong_content_type_is_415_in_the_envelope(client_for: Any, unchanged: None) -> None:
    res = client_for("alice").post(
        "/api/calls/", json.dumps({"invitees": ["bob"]}), content_type="text/plain"
    )
    error_of(res, 415, "unsupported_media_type")


def test_an_empty_body_on_an_action_uses_the_defaults(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    res = client_for("bob").post(f"/api/calls/{call['id']}/reject/")
    assert res.status_code == 200
    assert who(res.json()["call"], "bob")["reason"] == "declined"


def test_unknown_fields_are_ignored(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", colour="blue")
    assert "colour" not in call


# --- method, authentication, URL ------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("put", "/api/calls/"),
        ("delete", "/api/calls/"),
        ("patch", "/api/me/"),
        ("post", "/api/me/"),
        ("post", "/api/users/"),
        ("get", "/api/calls/{id}/accept/"),
        ("delete", "/api/calls/{id}/"),
        ("get", "/api/auth/token/"),
    ],
)
def test_a_wrong_method_is_405_in_the_envelope(client_for: Any, method: str, path: str) -> None:
    call = start_call(client_for("alice"), "bob")
    before = db_state()
    res = getattr(client_for("bob"), method)(path.format(id=call["id"]), {}, format="json")
    error_of(res, 405, "method_not_allowed")
    assert db_state() == before


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/me/"),
        ("get", "/api/users/"),
        ("get", "/api/calls/"),
        ("post", "/api/calls/"),
        ("get", "/api/calls/{id}/"),
        ("post", "/api/calls/{id}/accept/"),
        ("post", "/api/calls/{id}/end/"),
        ("get", "/api/rtc/ice-servers/"),
        ("delete", "/api/auth/token/"),
    ],
)
@pytest.mark.parametrize("credentials", [None, "Token nonsense", "Token ", "Basic Ym9iOnB3"])
def test_without_valid_credentials_everything_is_401(
    client_for: Any, method: str, path: str, credentials: str | None
) -> None:
    call = start_call(client_for("alice"), "bob")
    before = db_state()
    anon = APIClient()
    if credentials is not None:
        anon.credentials(HTTP_AUTHORIZATION=credentials)
    res = getattr(anon, method)(path.format(id=call["id"]), {"invitees": ["bob"]}, format="json")
    error_of(res, 401, "not_authenticated")
    assert db_state() == before


@pytest.mark.parametrize(
    "path", ["/api/nothing/", "/api/calls/x/y/z/", "/api/calls", "/api/", "/api/me"]
)
def test_an_unknown_api_url_is_404_in_the_envelope(client_for: Any, path: str) -> None:
    error_of(client_for("alice").get(path), 404, "not_found")
    error_of(client_for("alice").post(path, {}, format="json"), 404, "not_found")
    error_of(APIClient().get(path), 404, "not_found")


def test_token_login_with_wrong_credentials_is_401(users: dict[str, Any], unchanged: None) -> None:
    c = APIClient()
    res = c.post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    error_of(res, 401, "not_authenticated")
    res = c.post("/api/auth/token/", {"username": "alice"}, format="json")
    refused(res, "password")
    # no user can be called that (PostgreSQL cannot even store it): wrong credentials, not a 500
    res = c.post("/api/auth/token/", {"username": "al\x00ice", "password": "x"}, format="json")
    error_of(res, 401, "not_authenticated")


# --- throttling -----------------------------------------------------------------------------------


@pytest.fixture
def tight_throttles(throttle_rates: Callable[..., None]) -> None:
    throttle_rates(InvitationThrottle="3/min", TokenThrottle="2/min")


def test_starting_calls_too_fast_is_throttled_with_the_envelope(
    client_for: Any, tight_throttles: None
) -> None:
    c = client_for("alice")
    for _ in range(3):
        call = start_call(c, "bob")
        ok(c, call["id"], "cancel")
    before = db_state()
    res = post_call(c, invitees=["bob"])
    error = error_of(res, 429, "throttled")
    assert int(res["Retry-After"]) >= 1
    assert error["details"]["retry_after"] == int(res["Retry-After"])
    assert db_state() == before
    # the limit is per user: carol still may call
    assert post_call(client_for("carol"), invitees=["dave"]).status_code == 201


def test_inviting_into_a_call_counts_towards_the_same_throttle(
    client_for: Any, tight_throttles: None
) -> None:
    c = client_for("alice")
    call = start_call(c, "bob")
    assert act(c, call["id"], "invite", invitees=["carol"]).status_code == 200
    assert act(c, call["id"], "invite", invitees=["dave"]).status_code == 200
    before = db_state()
    error_of(act(c, call["id"], "invite", invitees=["erin"]), 429, "throttled")
    assert db_state() == before


def test_password_guessing_on_the_token_endpoint_is_throttled(
    users: dict[str, Any], tight_throttles: None
) -> None:
    c = APIClient()
    for _ in range(2):
        c.post("/api/auth/token/", {"username": "alice", "password": "x"}, format="json")
    res = c.post("/api/auth/token/", {"username": "alice", "password": "x"}, format="json")
    error_of(res, 429, "throttled")


# --- no 500 anywhere, whatever the JSON -----------------------------------------------------------

WEIRD = [None, 0, -1, 1.5, True, "", "x", [], [None], {}, {"a": []}, "😀" * 3000, 10**40]


@pytest.mark.parametrize("action", EVERY_ACTION)
def test_any_json_value_in_any_field_is_never_a_500(client_for: Any, action: str) -> None:
    call = start_call(client_for("alice"), "bob", "carol")
    ok(client_for("bob"), call["id"], "accept")
    fields = ("invitees", "extended_data", "reason", "device_id", "timeout", "type")
    for actor in ("alice", "carol"):
        for name in fields:
            for value in WEIRD:
                before = db_state()
                res = act(client_for(actor), call["id"], action, **{name: value})
                assert res.status_code < 500, (action, name, value, res.content)
                if res.status_code >= 400:
                    error_of(res, res.status_code, res.json()["error"]["code"])
                    assert db_state() == before, (action, name, value)
                else:
                    return  # the call moved on; the other fields were covered up to here


@pytest.mark.parametrize(
    "query",
    [
        "state=",
        "state=RINGING",
        "state=ringing&state=",
        "missed=maybe",
        "missed=",
        "page=0",
        "page=x",
        "page=99",
        "search=%00",
        "state=%00",
    ],
)
def test_odd_query_strings_are_never_a_500(client_for: Any, query: str) -> None:
    for path in ("/api/calls/", "/api/users/"):
        res = client_for("alice").get(f"{path}?{query}")
        assert res.status_code < 500, (path, query, res.content)
        if res.status_code >= 400:
            error_of(res, res.status_code, res.json()["error"]["code"])


@override_settings(DEBUG=False)
def test_errors_never_leak_a_traceback(client_for: Any) -> None:
    res = client_for("alice").post("/api/calls/", b"{", content_type="application/json")
    assert b"Traceback" not in res.content


def test_a_form_encoded_body_is_415_not_half_parsed(client_for: Any, unchanged: None) -> None:
    # A form can only carry strings: "timeout=5" would arrive as "5" and confuse the checks.
    res = client_for("alice").post("/api/calls/", {"invitees": "bob", "timeout": "5"})
    error_of(res, 415, "unsupported_media_type")

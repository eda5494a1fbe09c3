"""The OpenAPI document: valid, complete, and true to what the API really answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from drf_spectacular.validation import validate_schema

from invitations.api import serializers as s
from invitations.models import Call
from invitations.selectors import user_snapshots
from invitations.snapshots import call_snapshot, participant_snapshot
from tests.callflow import ok, start_call

pytestmark = pytest.mark.django_db

# API.md's REST section: every path and method a client may call.
CONTRACT = {
    "/api/auth/token/": {"post", "delete"},
    "/api/auth/tokens/": {"delete"},
    "/api/ws/ticket/": {"post"},
    "/api/blocks/": {"get"},
    "/api/blocks/{username}/": {"post", "delete"},
    "/api/me/": {"get"},
    "/api/users/": {"get"},
    "/api/calls/": {"get", "post"},
    "/api/calls/{call_id}/": {"get"},
    "/api/calls/{call_id}/invite/": {"post"},
    "/api/calls/{call_id}/cancel/": {"post"},
    "/api/calls/{call_id}/accept/": {"post"},
    "/api/calls/{call_id}/reject/": {"post"},
    "/api/calls/{call_id}/quit/": {"post"},
    "/api/calls/{call_id}/end/": {"post"},
    "/api/calls/{call_id}/ack/": {"post"},
    "/api/rtc/ice-servers/": {"get"},
    # API.md "Push"
    "/api/push/config/": {"get"},
    "/api/push/devices/": {"get", "post"},
    "/api/push/devices/{device_pk}/": {"delete"},
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def schema(client_for: Any) -> dict[str, Any]:
    res = client_for("alice").get("/api/schema/")
    assert res.status_code == 200
    assert res["Content-Type"].startswith("application/vnd.oai.openapi")
    return yaml.safe_load(res.content)


def test_the_schema_is_a_valid_openapi_3_document(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises on any violation of the OpenAPI 3 JSON schema


def test_the_schema_is_also_served_as_json(client_for: Any) -> None:
    res = client_for("alice").get("/api/schema/?format=json")
    assert res.status_code == 200
    validate_schema(json.loads(res.content))


def test_the_schema_needs_no_login(users: dict[str, Any]) -> None:
    from rest_framework.test import APIClient

    assert APIClient().get("/api/schema/").status_code == 200


def test_the_schema_lists_every_endpoint_of_the_contract(schema: dict[str, Any]) -> None:
    listed = {path: set(ops) & METHODS for path, ops in schema["paths"].items()}
    assert listed == CONTRACT


def test_every_operation_documents_its_errors_in_the_envelope(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    assert set(components["Error"]["properties"]) == {"error"}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            codes = set(op["responses"])
            assert {"400", "401", "404"} <= codes, (path, method, codes)
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }


def test_the_call_and_participant_shapes_are_documented(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    call_keys = set(components["Call"]["properties"])
    assert call_keys == set(s.CallSerializer().fields)
    assert set(components["Participant"]["properties"]) == set(s.ParticipantSerializer().fields)
    start = schema["paths"]["/api/calls/"]["post"]["responses"]["201"]
    assert "CallWithErrors" in json.dumps(start)


def test_the_docs_page_renders_from_this_server(client_for: Any) -> None:
    res = client_for("alice").get("/api/docs/")
    assert res.status_code == 200
    page = res.content.decode()
    assert "swagger-ui" in page.lower()
    assert "cdn" not in page.lower()  # served locally (sidecar): no third party needed
    # Its script is a file of its own (the CSP allows no inline script), and loads the schema.
    assert '<script src="/api/docs/?script="></script>' in page
    assert "/api/schema/" in client_for("alice").get("/api/docs/?script=").content.decode()


# --- the declared shapes match what the API really sends ------------------------------------------


def test_call_serializer_keys_match_the_call_snapshot(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob")
    ok(client_for("bob"), call["id"], "reject")
    snapshot = call_snapshot(Call.objects.get(pk=call["id"]))
    assert set(snapshot) == set(s.CallSerializer().fields)
    for p in Call.objects.get(pk=call["id"]).participants.all():
        assert set(participant_snapshot(p)) == set(s.ParticipantSerializer().fields)


def test_user_serializer_keys_match_the_user_snapshot(users: dict[str, Any]) -> None:
    [me] = user_snapshots([users["alice"]])
    assert set(me) == set(s.UserSerializer().fields)


def test_fields_that_can_be_null_are_declared_nullable(client_for: Any) -> None:
    # a ringing call has a null end_reason and ended_at; the inviter a null deadline, reason and
    # invited_by: the serializers must say so, or generated clients crash on real answers
    call = start_call(client_for("alice"), "bob")
    fields = s.CallSerializer().fields
    for key, value in call.items():
        if value is None:
            assert fields[key].allow_null, key
    pfields = s.ParticipantSerializer().fields
    for p in call["participants"]:
        for key, value in p.items():
            if value is None:
                assert pfields[key].allow_null, key


def test_a_real_answer_validates_against_the_documented_call(client_for: Any) -> None:
    call = start_call(client_for("alice"), "bob", extended_data="x")
    ok(client_for("bob"), call["id"], "accept")
    answer = client_for("alice").get(f"/api/calls/{call['id']}/").json()
    checked = s.CallSerializer(data=answer)
    assert checked.is_valid(), checked.errors

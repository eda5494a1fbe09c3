"""Logs (issue 11): one JSON object per line in production, with request id, user, call id and
device id where known; readable text in ``make run``; no token, secret or query string in any
line, Daphne's own lines included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from callsite import logs
from tests.processes import ROOT, Processes, base_env, create_users, free_port, wait_listening

pytestmark = pytest.mark.timeout(120)


def log_format(**env: str) -> str:
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.LOG_FORMAT)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base_env(**env), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_production_logs_json_and_make_run_logs_text(tmp_path: Path) -> None:
    assert log_format(CALLSITE_VAR_DIR=str(tmp_path)) == "text"
    production = {"CALLSITE_ENV": "production", "SECRET_KEY": "k" * 50, "DEBUG": "0"}
    assert log_format(CALLSITE_VAR_DIR=str(tmp_path), **production) == "json"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("GET /ws/?token=9f8e7d6c5b4a39281706f5e4d3c2b1a098765432&device_id=x", "9f8e7d6c5b"),
        ('"GET /api/me/?a=1&access_token=abc123def456 HTTP/1.1" 200', "abc123def456"),
        ("headers: {'Authorization': 'Token 0123456789abcdef0123456789abcdef'}", "0123456789"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-nature_x", "eyJhbGciOiJ"),
        ("connect ws://127.0.0.1:8000/ws/?token=s3cr3tv4lu3 failed", "s3cr3tv4lu3"),
        ("password=hunter2 for alice", "hunter2"),
    ],
)
def test_scrub_removes_tokens_secrets_and_query_strings(line: str, secret: str) -> None:
    assert secret not in logs.scrub(line)


def test_scrub_leaves_ordinary_messages_alone() -> None:
    text = "user alice went offline; timer invitation 42 failed: is it running?"
    assert logs.scrub(text) == text


def test_the_json_formatter_writes_one_object_with_the_bound_context() -> None:
    record = logging.LogRecord("invitations.x", logging.WARNING, "f.py", 1, "%s done", ("a",), None)
    with logs.bound(request_id="r-1", user="alice", call_id="c-1", device_id="d-1"):
        logs.ContextFilter().filter(record)
    line = logs.JSONFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert {k: data[k] for k in ("level", "logger", "message")} == {
        "level": "WARNING",
        "logger": "invitations.x",
        "message": "a done",
    }
    assert (data["request_id"], data["user"], data["call_id"], data["device_id"]) == (
        "r-1",
        "alice",
        "c-1",
        "d-1",
    )


async def websocket_session(port: int, token: str) -> None:
    url = f"ws://127.0.0.1:{port}/ws/?token={token}&device_id=phone-7"
    async with websockets.connect(url) as ws:
        ready = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ready["type"] == "session.ready"
        await ws.send("{not json")  # an error frame back, and no crash
        await asyncio.wait_for(ws.recv(), 5)
    # A wrong token in the query string: closed with 4401, still nothing leaked.
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/?token=wrong{token}") as ws:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)


def test_a_production_server_logs_json_with_context_and_never_a_token(tmp_path: Path) -> None:
    # Given a production server (JSON logs) on a file database
    port = free_port()
    env = base_env(
        CALLSITE_ENV="production",
        SECRET_KEY="s" * 50,
        DEBUG="0",
        SECURE_COOKIES="0",
        SECURE_SSL_REDIRECT="0",  # plain HTTP here; behind nginx TLS ends at the proxy
        CALLSITE_VAR_DIR=str(tmp_path),
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
    )
    procs = Processes(env, tmp_path)
    procs.manage("migrate", "--noinput", "-v", "0")
    tokens = create_users(procs, ["alice", "bob"])
    token = tokens["alice"]
    procs.start_manage("server", "serve", "--port", str(port))
    try:
        wait_listening(port, alive=procs.procs["server"])
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base, timeout=10) as http:
            # When clients send their token in headers and in query strings
            assert http.get(f"/api/me/?token={token}", headers=auth).status_code == 200
            assert http.get(f"/?token={token}&x=1").status_code in (200, 302)
            call = http.post("/api/calls/", json={"invitees": ["bob"]}, headers=auth).json()
            call_id = call["call"]["id"]
            assert http.get(f"/api/calls/{call_id}/?token={token}", headers=auth).status_code == 200
            missing = "00000000-0000-0000-0000-000000000000"
            assert http.get(f"/api/calls/{missing}/?token={token}", headers=auth).status_code == 404
            bad = {"Authorization": f"Token {token[:-1]}x"}
            assert http.get(f"/api/me/?token={token}", headers=bad).status_code == 401
            assert http.post("/api/auth/token/", json={"username": "alice", "password": "nope"})
        asyncio.run(websocket_session(port, token))
    finally:
        procs.stop_all()

    # Then every line is one JSON object, and neither token nor query string appears anywhere
    text = procs.log("server")
    assert token not in text and token[:-1] not in text
    assert "?token" not in text and "token=" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    access = [line for line in lines if line["logger"] == "callsite.access"]
    me = [line for line in access if line.get("path") == "/api/me/" and line["status"] == 200]
    assert me and me[0]["user"] == "alice" and len(me[0]["request_id"]) >= 8
    detail = [line for line in access if line.get("path") == f"/api/calls/{call_id}/"]
    assert detail and detail[0]["call_id"] == call_id and detail[0]["user"] == "alice"
    ws_lines = [line for line in access if line["message"].startswith("WS ")]
    assert any(line.get("device_id") == "phone-7" for line in ws_lines), ws_lines
    not_found = [line for line in lines if line["logger"] == "django.request"]
    assert any(line["message"] == f"Not Found: /api/calls/{missing}/" for line in not_found)


def test_without_the_fix_daphne_would_log_the_query_string() -> None:
    """The control for the test above: Daphne's own access line carries the whole URL."""
    from io import StringIO

    from daphne.access import AccessLogGenerator

    stream = StringIO()
    details: dict[str, Any] = {
        "path": "/api/me/?token=abc",
        "status": 200,
        "method": "GET",
        "client": "127.0.0.1:1",
        "size": 1,
    }
    AccessLogGenerator(stream)("http", "complete", details)
    assert "token=abc" in stream.getvalue()

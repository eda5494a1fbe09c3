"""DATABASE_URL=sqlite:///... runs the project's own SQLite engine, exactly as SQLITE_PATH does.

Issue 11: the URL form went through dj_database_url to Django's stock backend (deferred
transactions, no writer queue), and two racing answers to one call each got a 500 ("database is
locked") on the losing request. The race here runs against a real server process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import ROOT, Processes, base_env, create_users, free_port, wait_listening

pytestmark = pytest.mark.timeout(180)


def database_settings(**env: str) -> dict[str, Any]:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; "
        "print(json.dumps({k: d[k] for k in ('ENGINE', 'NAME', 'OPTIONS')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_sqlite_url_gets_the_same_engine_and_options_as_sqlite_path(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite3")
    by_url = database_settings(DATABASE_URL=f"sqlite:///{path}", CALLSITE_VAR_DIR=str(tmp_path))
    by_path = database_settings(SQLITE_PATH=path, CALLSITE_VAR_DIR=str(tmp_path))
    assert by_url == by_path
    assert by_url["ENGINE"] == "callsite.db.sqlite3"
    assert by_url["NAME"] == path
    assert by_url["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in by_url["OPTIONS"]["init_command"]


def answer(
    start: threading.Barrier,
    answers: dict[str, httpx.Response],
    who: str,
    client: httpx.Client,
    path: str,
) -> None:
    start.wait()
    answers[who] = client.post(path, json={})


def test_racing_accept_and_cancel_through_a_sqlite_url_never_answer_500(tmp_path: Path) -> None:
    # Given a real server on DATABASE_URL=sqlite:///<file> (the embedded default otherwise)
    port = free_port()
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'race.sqlite3'}",
        CALLSITE_VAR_DIR=str(tmp_path),
        THROTTLE_INVITATIONS="100000/min",
        THROTTLE_PAIR="100000/min",  # alice rings bob again and again
    )
    procs = Processes(env, tmp_path)
    procs.manage("migrate", "--noinput", "-v", "0")
    tokens = create_users(procs, ["alice", "bob"])
    procs.start_manage("server", "serve", "--port", str(port))
    try:
        wait_listening(port, alive=procs.procs["server"])
        base = f"http://127.0.0.1:{port}"
        alice = httpx.Client(base_url=base, headers={"Authorization": f"Token {tokens['alice']}"})
        bob = httpx.Client(base_url=base, headers={"Authorization": f"Token {tokens['bob']}"})
        statuses: list[tuple[int, int]] = []
        for _ in range(25):
            call = alice.post("/api/calls/", json={"invitees": ["bob"], "timeout": 60})
            assert call.status_code == 201, call.text
            call_id = call.json()["call"]["id"]
            # When bob accepts while alice cancels, released together
            start = threading.Barrier(2)
            answers: dict[str, httpx.Response] = {}
            threads = [
                threading.Thread(
                    target=answer,
                    args=(start, answers, "bob", bob, f"/api/calls/{call_id}/accept/"),
                ),
                threading.Thread(
                    target=answer,
                    args=(start, answers, "alice", alice, f"/api/calls/{call_id}/cancel/"),
                ),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            # Then exactly one wins and the other is told why (409), never a 500
            pair = (answers["bob"].status_code, answers["alice"].status_code)
            assert 500 not in pair, (answers["bob"].text, answers["alice"].text)
            assert sorted(pair) == [200, 409], pair
            statuses.append(pair)
            if pair[0] == 200:  # the call is on: end it so bob is free for the next round
                assert alice.post(f"/api/calls/{call_id}/end/", json={}).status_code == 200
        log = procs.log("server")
        assert "database is locked" not in log, log[-3000:]
    finally:
        procs.stop_all()

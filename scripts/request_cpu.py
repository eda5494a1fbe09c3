"""CPU of the REST write path in-process: invite one callee, then cancel, through Django's handler.

Usage: python scripts/request_cpu.py [cycles]     (under py-spy: py-spy record -- python ...)

No server, no sockets, no clients: the process's CPU time per invite + cancel cycle through
the whole middleware chain, DRF, the services and SQLite (a fresh file in a temporary folder,
DEBUG off, throttles out of the way). Load on the machine disturbs it far less than wall time,
which makes it the tool for A/B-ing a change to the request path (bench/README.md, issue 9). A
measuring aid, not a benchmark of record (bench/ is).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(tempfile.mkdtemp(prefix="request-cpu-"))
os.environ.update(
    DJANGO_SETTINGS_MODULE="callsite.settings",
    SQLITE_PATH=str(WORK / "db.sqlite3"),
    CALLSITE_VAR_DIR=str(WORK),
    DEBUG="0",
    LOG_LEVEL="WARNING",
    THROTTLE_INVITATIONS="1000000/s",
    THROTTLE_PAIR="1000000/s",
)
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from invitations import tokens  # noqa: E402

PAIRS = 20  # callers ring their own callee, so no callee is ever busy
WARM_UP = 100


def main() -> None:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    call_command("migrate", verbosity=0)
    users = get_user_model().objects
    pairs = [
        (tokens.issue(user=users.create_user(f"caller{i}"))[0], users.create_user(f"callee{i}"))
        for i in range(PAIRS)
    ]
    client = Client()

    def cycle(i: int) -> None:
        token, callee = pairs[i % PAIRS]
        auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
        body = json.dumps({"invitees": [callee.username]})
        invited = client.post("/api/calls/", body, content_type="application/json", **auth)
        assert invited.status_code == 201, invited.content
        call_id = invited.json()["call"]["id"]
        cancelled = client.post(f"/api/calls/{call_id}/cancel/", "{}", "application/json", **auth)
        assert cancelled.status_code == 200, cancelled.content

    layer = get_channel_layer()

    def forget_timers(i: int) -> None:
        # No timer worker runs here: every 1,000 cycles the timers sent so far are thrown away,
        # or the in-memory channel fills at 5,000 and each send then logs a ChannelFull with its
        # traceback (6% of a 4,000-cycle profile, none of it the server's real cost).
        if i % 1000 == 999:
            async_to_sync(layer.flush)()

    for i in range(WARM_UP):  # imports, caches, the first connection
        cycle(i)
    forget_timers(999)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(cycles):
        cycle(i)
        forget_timers(i)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{cycles} invite + cancel cycles: {cpu / cycles * 1000:.2f} ms CPU, "
        f"{wall / cycles * 1000:.2f} ms wall per cycle"
    )


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)

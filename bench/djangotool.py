"""Database chores of the benchmarks, run as a subprocess with a topology's environment.

    python bench/djangotool.py setup --users N
    python bench/djangotool.py seed-timers --count N --start UNIX_TIME --spread SECONDS --users N
    python bench/djangotool.py timer-report

Rows are written in bulk straight through the ORM: going through the API would take minutes for
10,000 users or 100,000 pending invitations. Each command prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callsite.settings")

import django  # noqa: E402

django.setup()

from common import token_for, username_for  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from invitations import tokens  # noqa: E402
from invitations.models import Call, CallEvent, Participant  # noqa: E402

TIMER_TAG = "bench-timer:"
BATCH = 5000


def setup(users: int) -> dict[str, Any]:
    t0 = time.monotonic()
    call_command("migrate", interactive=False, verbosity=0)
    user_model = get_user_model()
    existing = set(
        user_model.objects.filter(username__startswith="b").values_list("username", flat=True)
    )
    todo = [i for i in range(users) if username_for(i) not in existing]
    for start in range(0, len(todo), BATCH):
        chunk = todo[start : start + BATCH]
        with transaction.atomic():
            made = user_model.objects.bulk_create(
                [user_model(username=username_for(i), password="!") for i in chunk]
            )
            if connection.vendor != "postgresql" and made and made[0].pk is None:
                made = list(
                    user_model.objects.filter(username__in=[username_for(i) for i in chunk])
                )
            by_name = {u.username: u for u in made}
            # Hashed like every API token (invitations/tokens.py), under keys the clients know.
            tokens.import_keys((by_name[username_for(i)], token_for(i)) for i in chunk)
    return {"users": users, "created": len(todo), "secs": round(time.monotonic() - t0, 2)}


def seed_timers(count: int, start: float, spread: float, users: int, batch: str) -> dict[str, Any]:
    """``count`` ringing 1:1 calls whose invitee deadlines spread evenly over ``spread`` s."""
    from datetime import UTC, datetime

    t0 = time.monotonic()
    user_model = get_user_model()
    ids = list(
        user_model.objects.filter(username__in=[username_for(i) for i in range(users)])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    made = 0
    for base in range(0, count, BATCH):
        n = min(BATCH, count - base)
        calls: list[Call] = []
        parts: list[Participant] = []
        for k in range(base, base + n):
            at = start + spread * k / count
            deadline = datetime.fromtimestamp(at, tz=UTC)
            inviter, invitee = ids[(2 * k) % len(ids)], ids[(2 * k + 1) % len(ids)]
            call = Call(
                id=uuid.uuid4(),
                inviter_id=inviter,
                type="audio",
                state="ringing",
                timeout=60,
                extended_data=f"{TIMER_TAG}{batch}:{at!r}",
            )
            calls.append(call)
            parts.append(Participant(call=call, user_id=inviter, role="inviter", state="accepted"))
            parts.append(
                Participant(
                    call=call,
                    user_id=invitee,
                    role="invitee",
                    state="inviting",
                    invited_by_id=inviter,
                    deadline=deadline,
                )
            )
        with transaction.atomic():
            Call.objects.bulk_create(calls, batch_size=1000)
            Participant.objects.bulk_create(parts, batch_size=1000)
        made += n
    return {"seeded": made, "secs": round(time.monotonic() - t0, 2)}


def timer_report(batch: str) -> dict[str, Any]:
    """Lateness of each timeout row past its deadline, and how often each call timed out."""
    tag = f"{TIMER_TAG}{batch}:"
    seeded = Call.objects.filter(extended_data__startswith=tag).count()
    rows = CallEvent.objects.filter(
        kind=CallEvent.Kind.TIMEOUT, call__extended_data__startswith=tag
    ).values_list("call_id", "created_at", "call__extended_data")
    per_call: dict[Any, int] = {}
    lateness: list[float] = []
    first_due, last_done = float("inf"), float("-inf")
    for call_id, created, data in rows.iterator(chunk_size=10000):
        per_call[call_id] = per_call.get(call_id, 0) + 1
        due = float(data[len(tag) :])
        lateness.append(created.timestamp() - due)
        first_due, last_done = min(first_due, due), max(last_done, created.timestamp())
    still_ringing = Participant.objects.filter(
        call__extended_data__startswith=tag, role="invitee", state__in=["inviting", "received"]
    ).count()
    return {
        "seeded": seeded,
        "timeout_rows": len(lateness),
        "calls_timed_out": len(per_call),
        "more_than_once": sum(1 for c in per_call.values() if c > 1),
        "still_ringing": still_ringing,
        # From the first deadline to the last timeout row: the wall time the expiries took.
        "drain_secs": round(last_done - first_due, 3) if lateness else None,
        "lateness": lateness,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--users", type=int, required=True)
    p = sub.add_parser("seed-timers")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=float, required=True)
    p.add_argument("--spread", type=float, required=True)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--batch", required=True)
    p = sub.add_parser("timer-report")
    p.add_argument("--batch", required=True)
    args = parser.parse_args()
    if args.cmd == "setup":
        out = setup(args.users)
    elif args.cmd == "seed-timers":
        out = seed_timers(args.count, args.start, args.spread, args.users, args.batch)
    else:
        out = timer_report(args.batch)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

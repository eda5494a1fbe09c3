"""Expiries per second of services.expire_many on the embedded database (SQLite by default).

Usage: python scripts/expiry_rate.py [--calls 20000] [--batch 100] [--invitees 1]
Creates --calls ringing calls whose invitees' deadlines have passed, in a throwaway database
(SQLITE_PATH defaults to a temporary file; set DATABASE_URL for PostgreSQL), then expires them in
batches the way the timer worker does and prints expiries/s and the median batch time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--invitees", type=int, default=1)
    args = ap.parse_args()
    if not os.environ.get("DATABASE_URL"):
        os.environ.setdefault("SQLITE_PATH", os.path.join(tempfile.mkdtemp(), "expiry.sqlite3"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callsite.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from invitations import services
    from invitations.models import Call, Participant, ParticipantState, Role

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    inviter, _ = user_model.objects.get_or_create(username="exp_inviter")
    invitees = []
    for i in range(args.invitees):
        invitees.append(user_model.objects.get_or_create(username=f"exp_invitee{i}")[0])
    past = timezone.now() - timedelta(seconds=1)
    calls = Call.objects.bulk_create(
        [Call(inviter=inviter, timeout=30) for _ in range(args.calls)], batch_size=1000
    )
    rows = []
    for c in calls:
        rows.append(
            Participant(call=c, user=inviter, role=Role.INVITER, state=ParticipantState.ACCEPTED)
        )
        for u in invitees:
            rows.append(
                Participant(
                    call=c,
                    user=u,
                    role=Role.INVITEE,
                    invited_by=inviter,
                    state=ParticipantState.INVITING,
                    deadline=past,
                )
            )
    Participant.objects.bulk_create(rows, batch_size=1000)
    ids = list(
        Participant.objects.filter(role=Role.INVITEE, deadline__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    times = []
    expired = 0
    t0 = time.perf_counter()
    c0 = time.process_time()  # CPU time: steadier than wall time on a shared machine
    for i in range(0, len(ids), args.batch):
        t = time.perf_counter()
        expired += len(services.expire_many(participant_ids=ids[i : i + args.batch]))
        times.append(time.perf_counter() - t)
    took = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert expired == len(ids), (expired, len(ids))
    print(
        json.dumps(
            {
                "expired": expired,
                "expiries_per_s": round(expired / took),
                "expiries_per_cpu_s": round(expired / cpu),
                "median_batch_ms": round(statistics.median(times) * 1000, 1),
                "batch": args.batch,
            }
        )
    )


if __name__ == "__main__":
    main()

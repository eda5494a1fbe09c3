"""Expiries per second of the timer worker's services on the embedded database (SQLite by default).

Usage: python scripts/expiry_rate.py [--calls 20000] [--batch 100] [--invitees 1] [--kind call]
Creates --calls ringing calls whose invitees' deadlines have passed, in a throwaway database
(SQLITE_PATH defaults to a temporary file; set DATABASE_URL for PostgreSQL), then expires them in
batches the way the timer worker does and prints expiries/s and the median batch time.

``--kind presence``: instead, --calls users whose last device left and whose presence grace is
over (a disconnect wave), turned offline by ``expire_presence_many``; ``--batch 1`` runs
``expire_presence`` one user at a time instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--invitees", type=int, default=1)
    ap.add_argument("--kind", choices=("call", "presence"), default="call")
    args = ap.parse_args()
    if not os.environ.get("DATABASE_URL"):
        os.environ.setdefault("SQLITE_PATH", os.path.join(tempfile.mkdtemp(), "expiry.sqlite3"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from invitations import services

    call_command("migrate", verbosity=0)
    if args.kind == "presence":
        ids, expire = _graces_over(args.calls), _presence_expirer(args.batch)
    else:
        ids, expire = (
            _due_invitations(args.calls, args.invitees),
            (lambda ids: services.expire_many(participant_ids=ids)),
        )
    times = []
    expired = 0
    t0 = time.perf_counter()
    c0 = time.process_time()  # CPU time: steadier than wall time on a shared machine
    for i in range(0, len(ids), args.batch):
        t = time.perf_counter()
        expired += len(expire(ids[i : i + args.batch]))
        times.append(time.perf_counter() - t)
    took = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert expired == len(ids), (expired, len(ids))
    print(
        json.dumps(
            {
                "kind": args.kind,
                "expired": expired,
                "expiries_per_s": round(expired / took),
                "expiries_per_cpu_s": round(expired / cpu),
                "median_batch_ms": round(statistics.median(times) * 1000, 1),
                "batch": args.batch,
            }
        )
    )


def _due_invitations(count: int, invitees_per_call: int) -> list[int]:
    """``count`` ringing calls whose invitees are past their deadline; the invitees' ids."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from invitations.models import Call, Participant, ParticipantState, Role

    user_model = get_user_model()
    inviter, _ = user_model.objects.get_or_create(username="exp_inviter")
    invitees = []
    for i in range(invitees_per_call):
        invitees.append(user_model.objects.get_or_create(username=f"exp_invitee{i}")[0])
    past = timezone.now() - timedelta(seconds=1)
    calls = Call.objects.bulk_create(
        [Call(inviter=inviter, timeout=30) for _ in range(count)], batch_size=1000
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
    return list(
        Participant.objects.filter(role=Role.INVITEE, deadline__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _graces_over(count: int) -> list[int]:
    """``count`` users online, with no device and their presence grace over; their ids."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from invitations.models import UserPresence

    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"gone{i}") for i in range(count)], batch_size=1000
    )
    past = timezone.now() - timedelta(seconds=1)
    UserPresence.objects.bulk_create(
        [UserPresence(user=u, online=True, offline_deadline=past) for u in users], batch_size=1000
    )
    return [u.pk for u in users]


def _presence_expirer(batch: int) -> Callable[[list[int]], list[int]]:
    from invitations import services

    if batch == 1:  # the path of one transaction per user, for comparison
        return lambda ids: [pk for pk in ids if services.expire_presence(user_id=pk)]
    return lambda ids: services.expire_presence_many(user_ids=ids)


if __name__ == "__main__":
    main()
